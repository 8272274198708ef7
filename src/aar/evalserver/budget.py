"""Submission budgets: per worker per rolling hour, per worker in total, optionally per team in total.

Counts come from the audit log the first time a worker is seen (so a restart forgets nothing) and are
kept in memory after that. Only stored submissions count; a refused or malformed one costs nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aar.evalserver.config import TeamConfig
from aar.evalserver.models import Budget

HOUR = 3600.0


class BudgetExceeded(Exception):
    """Answered 429 with ``Retry-After: retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Usage:
    total: int
    recent: deque[float] = field(default_factory=deque)


#: Loads (total submissions, timestamps within the last hour) of (team, worker) from the audit log.
WorkerLoader = Callable[[str, str, float], tuple[int, list[float]]]
TeamLoader = Callable[[str], int]


class Budgets:
    """In-memory budget counters backed by the audit log."""

    def __init__(self, load_worker: WorkerLoader, load_team: TeamLoader) -> None:
        self._load_worker, self._load_team = load_worker, load_team
        self._workers: dict[tuple[str, str], _Usage] = {}
        self._teams: dict[str, int] = {}

    def _usage(self, team: str, worker: str, now: float) -> _Usage:
        key = (team, worker)
        if key not in self._workers:
            total, recent = self._load_worker(team, worker, now - HOUR)
            self._workers[key] = _Usage(total, deque(sorted(recent)))
        usage = self._workers[key]
        while usage.recent and usage.recent[0] <= now - HOUR:
            usage.recent.popleft()
        return usage

    def check(self, team: str, worker: str, cfg: TeamConfig, now: float) -> Budget:
        """Raise ``BudgetExceeded`` if one more submission is over budget; else the usage after it."""
        usage = self._usage(team, worker, now)
        if usage.total >= cfg.max_total:
            raise BudgetExceeded(f"worker {worker!r} has used its total budget of {cfg.max_total} "
                                 "submissions; ask an admin to raise max_total", int(HOUR))
        if len(usage.recent) >= cfg.max_per_hour:
            wait = max(1, math.ceil(usage.recent[0] + HOUR - now))
            raise BudgetExceeded(f"worker {worker!r} has used its budget of {cfg.max_per_hour} "
                                 f"submissions per hour; retry in {wait} s", wait)
        if cfg.team_max_total is not None:
            if team not in self._teams:
                self._teams[team] = self._load_team(team)
            if self._teams[team] >= cfg.team_max_total:
                raise BudgetExceeded(f"team {team!r} has used its total budget of {cfg.team_max_total} "
                                     "submissions", int(HOUR))
        return Budget(used_last_hour=len(usage.recent) + 1, max_per_hour=cfg.max_per_hour,
                      used_total=usage.total + 1, max_total=cfg.max_total)

    def record(self, team: str, worker: str, now: float) -> None:
        """Count a submission that is being stored."""
        usage = self._usage(team, worker, now)
        usage.total += 1
        usage.recent.append(now)
        if team in self._teams:
            self._teams[team] += 1

    def forget(self) -> None:
        """Drop every counter (they reload from the audit log), e.g. after a failed commit."""
        self._workers.clear()
        self._teams.clear()
