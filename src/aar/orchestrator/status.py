"""``aar team status``: one row per worker (phase, sessions, submissions, best released PGR, cost, hours,
last activity, detector flags) and team totals, from the trajectories and the eval server's leaderboard.

Detector flags are the eval server's (per submission) plus those the worker's own host side recorded
in its trajectory (``detector`` steps, e.g. the model-API proxy's ``scripted_model_call``). Dollars are
"unknown" (``dollars_known`` false), never $0, when a charge of tokens came without a price.

The terminal table labels workers ``w01`` (their ids repeat the team's), fits a terminal's width by
dropping the lowest-priority columns first (:data:`COLUMNS`), and prints a plain aligned layout with
every column in full when stdout is not a terminal (:func:`plain_status`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
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
    dollars_known: bool = True
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
    dollars_known: bool = True
    tokens: int
    hours: float
    dollars_per_aar_hour: float | None
    best_released_pgr: float | None
    leaderboard_error: str | None = None


def team_status(settings: Settings, team: str, steps_of: Callable[[str], list[Step]] | None = None) -> TeamStatus:
    """Each worker's row and the team's totals; ``steps_of(worker)`` reads a trajectory (default: the whole
    file; the dashboard passes its incremental cache)."""
    state = load_state(settings, team)
    flags, released, error = _leaderboard(settings, team, state.spec.eval_url, state.spec.testbed)
    read = steps_of or (lambda w: trajectory_of(settings, team, w))
    rows = []
    for ws in state.workers.values():
        steps = read(ws.worker)
        u = usage_from(steps)
        pgrs = [s.data.get("released_pgr", {}).get("combined") for s in steps if s.type == "submission"]
        best = max((p for p in pgrs if isinstance(p, int | float)), default=None)
        rows.append(WorkerStatus(
            worker=ws.worker, direction=ws.direction, phase=ws.phase, restarts=ws.restarts, sessions=u.sessions,
            submissions=u.submissions, best_released_pgr=released.get(ws.worker, best), dollars=u.dollars,
            dollars_known=not any(s.tokens and not s.cost_usd for s in steps),  # tokens at $0: no known price
            tokens=u.tokens, hours=u.wall_s / 3600, last_activity=steps[-1].t if steps else None,
            flags=dict(Counter(flags.get(ws.worker, {})) + Counter(trajectory_flags(steps)))))
    hours = sum(r.hours for r in rows)
    dollars = sum(r.dollars for r in rows)
    bests = [r.best_released_pgr for r in rows if r.best_released_pgr is not None]
    known = all(r.dollars_known for r in rows)
    return TeamStatus(team=team, phase=state.phase, reason=state.reason, testbed=state.spec.testbed,
                      supervisor_alive=alive(state.supervisor_pid, state.supervisor_start), workers=rows,
                      submissions=sum(r.submissions for r in rows), dollars=dollars,
                      dollars_known=known,
                      tokens=sum(r.tokens for r in rows), hours=hours,
                      dollars_per_aar_hour=dollars / hours if hours > 0 and known else None,
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


# ------------------------------------------------------------------ the terminal table (aar team status)

#: (header, priority: lower is kept longer when the terminal is narrow, right-aligned)
COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("worker", 0, False), ("phase", 0, False), ("best PGR", 0, True), ("subs", 1, True), ("$", 1, True),
    ("last", 2, False), ("flags", 3, False), ("sess", 4, True), ("rst", 4, True), ("tokens", 5, True),
    ("hours", 5, True), ("direction", 6, False),
)


def short_label(team: str, worker: str) -> str:
    """``w01`` for ``<team>-w01`` (worker ids repeat the team's name); other ids unchanged."""
    return worker[len(team) + 1:] if worker.startswith(f"{team}-") and len(worker) > len(team) + 1 else worker


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def status_cells(st: TeamStatus) -> list[dict[str, str]]:
    """One dict of display strings per worker (keys: the headers of :data:`COLUMNS`)."""
    return [{
        "worker": short_label(st.team, w.worker), "phase": w.phase, "best PGR": _fmt(w.best_released_pgr),
        "subs": str(w.submissions), "$": _fmt(w.dollars, 2) if w.dollars_known else "unknown",
        "last": w.last_activity.strftime("%H:%M:%S") if w.last_activity else "-",
        "flags": ", ".join(f"{k} x{v}" for k, v in sorted(w.flags.items())) or "-", "sess": str(w.sessions),
        "rst": str(w.restarts), "tokens": str(w.tokens), "hours": _fmt(w.hours, 2),
        "direction": w.direction or "open brief"} for w in st.workers]


def fit_columns(cells: list[dict[str, str]], width: int) -> list[str]:
    """The headers that fit in ``width`` characters (each at its widest cell; ``direction`` and ``flags``
    may wrap down to 16), dropping the lowest-priority columns first; never fewer than the priority-0 ones."""
    def need(h: str) -> int:
        widest = max([len(h)] + [len(c[h]) for c in cells])
        return (min(widest, 16) if h in ("direction", "flags") else widest) + 3  # padding and a border

    keep = [h for h, _, _ in COLUMNS]
    for h, prio, _ in sorted(COLUMNS, key=lambda c: -c[1]):
        if sum(need(k) for k in keep) + 1 <= width or prio == 0:
            break
        keep.remove(h)
    return keep


def summary_line(st: TeamStatus) -> str:
    dollars = f"${st.dollars:.2f}" if st.dollars_known else "$ unknown (a model without a price)"
    return (f"supervisor {'alive' if st.supervisor_alive else 'not running'}; {st.submissions} submissions; "
            f"{dollars}, {st.tokens} tokens, {st.hours:.2f} AAR-hours"
            + (f", ${st.dollars_per_aar_hour:.2f}/AAR-hour" if st.dollars_per_aar_hour is not None else "")
            + f"; best released PGR {_fmt(st.best_released_pgr)}"
            + (f"\n(leaderboard unavailable: {st.leaderboard_error})" if st.leaderboard_error else ""))


def plain_status(st: TeamStatus) -> str:
    """The status as plain aligned text (stdout is not a terminal): every column, nothing cut; directions
    listed below the table, one per worker."""
    cells = status_cells(st)
    headers = [h for h, _, _ in COLUMNS if h != "direction"]
    right = {h for h, _, r in COLUMNS if r}
    widths = {h: max([len(h)] + [len(c[h]) for c in cells]) for h in headers}

    def row(values: dict[str, str]) -> str:
        return "  ".join(values[h].rjust(widths[h]) if h in right else values[h].ljust(widths[h])
                         for h in headers).rstrip()

    title = f"team {st.team} on {st.testbed}: {st.phase}" + (f" ({st.reason})" if st.reason else "")
    lines = [title, row({h: h for h in headers}), *(row(c) for c in cells), "directions:"]
    lines += [f"  {c['worker']}: {c['direction']}" for c in cells]
    return "\n".join([*lines, summary_line(st)])
