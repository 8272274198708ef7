"""``aar team status``: one row per worker (phase, sessions, submissions, best released PGR, cost, hours,
last activity, detector flags) and team totals, from the trajectories and the eval server's leaderboard.

Detector flags are the eval server's (per submission) plus those the worker's own host side recorded
in its trajectory (``detector`` steps, e.g. the model-API proxy's ``scripted_model_call``)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import BaseModel

from aar.agents.base import Step, usage_from
from aar.config import Settings
from aar.orchestrator.supervisor import trajectory_of
from aar.orchestrator.team import alive, load_state, team_dir


class WorkerStatus(BaseModel):
    worker: str
    direction: str | None
    phase: str
    restarts: int
    sessions: int
    submissions: int
    best_released_pgr: float | None
    dollars: float
    tokens: int
    hours: float
    last_activity: datetime | None
    flags: dict[str, int]


class TeamStatus(BaseModel):
    team: str
    phase: str
    reason: str | None
    supervisor_alive: bool
    testbed: str
    workers: list[WorkerStatus]
    submissions: int
    dollars: float
    tokens: int
    hours: float
    dollars_per_aar_hour: float | None
    best_released_pgr: float | None
    leaderboard_error: str | None = None


def team_status(settings: Settings, team: str) -> TeamStatus:
    state = load_state(settings, team)
    flags, released, error = _leaderboard(settings, team, state.spec.eval_url, state.spec.testbed)
    rows = []
    for ws in state.workers.values():
        steps = trajectory_of(settings, team, ws.worker)
        u = usage_from(steps)
        pgrs = [s.data.get("released_pgr", {}).get("combined") for s in steps if s.type == "submission"]
        best = max((p for p in pgrs if isinstance(p, int | float)), default=None)
        rows.append(WorkerStatus(
            worker=ws.worker, direction=ws.direction, phase=ws.phase, restarts=ws.restarts, sessions=u.sessions,
            submissions=u.submissions, best_released_pgr=released.get(ws.worker, best), dollars=u.dollars,
            tokens=u.tokens, hours=u.wall_s / 3600, last_activity=steps[-1].t if steps else None,
            flags=dict(Counter(flags.get(ws.worker, {})) + Counter(trajectory_flags(steps)))))
    hours = sum(r.hours for r in rows)
    dollars = sum(r.dollars for r in rows)
    bests = [r.best_released_pgr for r in rows if r.best_released_pgr is not None]
    return TeamStatus(team=team, phase=state.phase, reason=state.reason, testbed=state.spec.testbed,
                      supervisor_alive=alive(state.supervisor_pid, state.supervisor_start), workers=rows,
                      submissions=sum(r.submissions for r in rows), dollars=dollars,
                      tokens=sum(r.tokens for r in rows), hours=hours,
                      dollars_per_aar_hour=dollars / hours if hours > 0 else None,
                      best_released_pgr=max(bests, default=None), leaderboard_error=error)


def trajectory_flags(steps: list[Step]) -> dict[str, int]:
    """Detector events a worker's host side recorded in its trajectory, counted by name."""
    return dict(Counter(str(s.data.get("detector")) for s in steps if s.type == "detector"))


def team_trajectory_flags(settings: Settings, team: str) -> dict[str, dict[str, int]]:
    """:func:`trajectory_flags` of every worker of a team launched from this AAR_HOME (empty otherwise)."""
    if not (team_dir(settings, team) / "team.json").exists():
        return {}
    return {w: trajectory_flags(trajectory_of(settings, team, w)) for w in load_state(settings, team).workers}


def _leaderboard(settings: Settings, team: str, eval_url: str,
                 testbed: str) -> tuple[dict[str, dict[str, int]], dict[str, float], str | None]:
    """Detector flags and released best combined PGR per worker (admin view); empty when unreachable."""
    from aar.evalserver.client import EvalClient, EvalError

    token = (team_dir(settings, team) / "admin.token").read_text().strip()
    client = EvalClient(eval_url)
    try:
        board = client.leaderboard(token, testbed)
    except (EvalError, OSError) as exc:
        return {}, {}, str(exc)
    finally:
        client.close()
    flags: dict[str, dict[str, int]] = {}
    released: dict[str, float] = {}
    for b in board.boards:
        for row in b.workers:
            flags[row.worker_id] = row.flags
            if row.best is not None and row.best.pgr.combined is not None:
                released[row.worker_id] = row.best.pgr.combined
    return flags, released, None
