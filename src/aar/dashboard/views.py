"""What the pages show, read from the stores through the models the rest of aar uses.

Teams: ``runs/<team>/team.json`` (:class:`~aar.orchestrator.team.TeamState`) and
:func:`~aar.orchestrator.status.team_status` (the leaderboard from the eval server, usage from the
trajectories through the dashboard's incremental :class:`~aar.dashboard.journal.StepCache`). Costs:
:func:`~aar.analysis.progress.cost_of` (unknown prices stay unknown). Plots: the report's own PNGs when
``aar report`` has written them, and an inline SVG of :func:`~aar.analysis.progress.team_progress`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aar.agents.base import Step
from aar.analysis.progress import Cost, Progress, cost_of, team_cost, team_progress
from aar.config import Settings
from aar.dashboard.journal import StepCache, size_of
from aar.orchestrator.status import TeamStatus, short_label, team_status
from aar.orchestrator.team import TeamState, load_state, team_dir

REPORT_PLOTS = ("pgr", "entropy", "complexity", "cost", "vendi")


def team_names(settings: Settings) -> list[str]:
    """Teams launched from this AAR_HOME (folders with a ``team.json``), newest first."""
    root = settings.runs_dir
    if not root.is_dir():
        return []
    found = [(p.stat().st_mtime, p.parent.name) for p in root.glob("*/team.json") if not p.parent.is_symlink()]
    return [name for _, name in sorted(found, reverse=True)]


def trajectory_path(settings: Settings, team: str, worker: str) -> Path:
    return team_dir(settings, team) / "workers" / worker / "trajectory.jsonl"


def version(settings: Settings, teams: list[str]) -> str:
    """A cheap fingerprint of what the team pages show: each team.json and trajectory's size and mtime."""
    h = hashlib.sha256()
    for team in teams:
        root = team_dir(settings, team)
        paths = [root / "team.json", root / "report" / "report.json", *sorted(root.glob("workers/*/trajectory.jsonl"))]
        for path in paths:
            try:
                st = path.stat()
                h.update(f"{path}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{path}:-;".encode())
    return h.hexdigest()[:20]


@dataclass
class Bar:
    """One budget bar: spent of limit (``fraction`` in 0..1, ``None`` when unlimited)."""

    label: str
    spent: str
    limit: str | None
    fraction: float | None


@dataclass
class WorkerRow:
    worker: str
    label: str
    direction: str | None
    phase: str
    stale: bool
    restarts: int
    sessions: int
    submissions: int
    best_pgr: float | None
    cost: Cost
    tokens: int
    hours: float
    last_activity: datetime | None
    flags: dict[str, int]
    bars: list[Bar] = field(default_factory=list)


@dataclass
class TeamView:
    state: TeamState
    status: TeamStatus
    workers: list[WorkerRow]
    cost: Cost
    bars: list[Bar]
    progress: Progress
    steps: dict[str, list[Step]]


def _bar(label: str, spent: float, limit: float | None, fmt: Callable[[float], str]) -> Bar:
    return Bar(label, fmt(spent), None if limit is None else fmt(limit),
               None if not limit else max(0.0, min(1.0, spent / limit)))


def _money(v: float) -> str:
    return f"${v:,.2f}"


def _hours(v: float) -> str:
    return f"{v:.2f} h"


class TeamReader:
    """Reads teams for the pages; keeps parsed trajectories and recent statuses between requests."""

    def __init__(self, settings: Settings, stale_s: float = 600.0, status_ttl_s: float = 2.0) -> None:
        self.settings, self.stale_s, self.status_ttl_s = settings, stale_s, status_ttl_s
        self.cache = StepCache()
        self._status: dict[str, tuple[float, str, TeamStatus]] = {}

    def steps(self, team: str, worker: str) -> list[Step]:
        return self.cache.steps(trajectory_path(self.settings, team, worker))

    def status(self, team: str) -> TeamStatus:
        """:func:`team_status` over the step cache, reused for ``status_ttl_s`` while nothing changed."""
        now, ver = time.monotonic(), version(self.settings, [team])
        hit = self._status.get(team)
        if hit and hit[1] == ver and now - hit[0] < self.status_ttl_s:
            return hit[2]
        st = team_status(self.settings, team, lambda w: self.steps(team, w))
        self._status[team] = (now, ver, st)
        return st

    def view(self, team: str) -> TeamView:
        state = load_state(self.settings, team)
        st = self.status(team)
        steps = {w: self.steps(team, w) for w in state.workers}
        progress = team_progress(steps)
        costs = {c.worker: c for c in progress.costs}
        now = datetime.now(UTC)
        b = state.spec.budget
        rows = []
        for w in st.workers:
            cost = costs.get(w.worker) or cost_of(w.worker, [])
            stale = (w.phase == "running" and (w.last_activity is None or
                                                (now - w.last_activity).total_seconds() > self.stale_s))
            bars = [_bar("time", w.hours, b.wall_s / 3600 if b.wall_s else None, _hours),
                    _bar("submissions", w.submissions, b.submissions, lambda v: f"{v:g}")]
            if b.dollars is not None:
                bars.insert(0, _bar("dollars", cost.priced_dollars, b.dollars, _money))
            if b.tokens is not None:
                bars.append(_bar("tokens", w.tokens, b.tokens, lambda v: f"{v:,.0f}"))
            rows.append(WorkerRow(
                worker=w.worker, label=short_label(team, w.worker), direction=w.direction, phase=w.phase, stale=stale,
                restarts=w.restarts, sessions=w.sessions, submissions=w.submissions,
                best_pgr=w.best_released_pgr, cost=cost, tokens=w.tokens, hours=w.hours,
                last_activity=w.last_activity, flags=w.flags, bars=bars))
        total = team_cost(list(costs.values())) if costs else cost_of("team", [])
        tb = state.spec.team_budget
        bars = [_bar("dollars", total.priced_dollars, tb.dollars, _money),
                _bar("AAR-hours", st.hours, tb.worker_hours, _hours),
                _bar("submissions", st.submissions, tb.submissions, lambda v: f"{v:g}")]
        if tb.wall_s:
            bars.append(_bar("wall clock", (now - state.created_at).total_seconds() / 3600, tb.wall_s / 3600, _hours))
        if tb.tokens:
            bars.append(_bar("tokens", st.tokens, tb.tokens, lambda v: f"{v:,.0f}"))
        return TeamView(state=state, status=st, workers=rows, cost=total, bars=bars, progress=progress, steps=steps)

    def summary(self, team: str) -> dict[str, Any]:
        """One row of the teams page: phase, workers, best released PGR, spend (never $0 for unknown)."""
        try:
            state = load_state(self.settings, team)
        except (OSError, ValueError) as exc:
            return {"team": team, "error": str(exc)}
        steps = {w: self.steps(team, w) for w in state.workers}
        costs = [cost_of(w, s) for w, s in steps.items()]
        best = [v for s in steps.values() for x in s if x.type == "submission"
                if isinstance(v := (x.data.get("released_pgr") or {}).get("combined"), int | float)]
        phases: dict[str, int] = {}
        for w in state.workers.values():
            phases[w.phase] = phases.get(w.phase, 0) + 1
        return {"team": team, "state": state, "phases": phases, "best": max(best, default=None),
                "cost": team_cost(costs) if costs else None,
                "submissions": sum(x.type == "submission" for s in steps.values() for x in s)}


def report_dir(settings: Settings, team: str) -> Path:
    return team_dir(settings, team) / "report"


def report_plots(settings: Settings, team: str) -> list[str]:
    """Names of the PNG plots ``aar report`` wrote for the team (in :data:`REPORT_PLOTS` order)."""
    folder = report_dir(settings, team)
    return [n for n in REPORT_PLOTS if size_of(folder / f"{n}.png") > 0]
