"""Submission budgets: a team's budget per rolling hour and in total, and each worker's share of it.

The team budget is what bounds what a team can learn (K colluding workers share it; they do not get K
budgets). The per-worker share keeps one worker from spending the whole team budget. Counts come from
the audit log the first time a worker or team is seen (so a restart forgets nothing) and are kept in
memory after that. Only stored submissions count; a refused or malformed one costs nothing. A
submission committed just before a crash (``kill -9``) but never acknowledged still counts: the audit
log is the truth, and the client retries with a fresh submission.
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

    def trim(self, now: float) -> _Usage:
        while self.recent and self.recent[0] <= now - HOUR:
            self.recent.popleft()
        return self

    def check(self, who: str, max_per_hour: int | None, max_total: int | None, now: float) -> None:
        if max_total is not None and self.total >= max_total:
            raise BudgetExceeded(f"{who} has used its total budget of {max_total} submissions; "
                                 "ask an admin to raise it", int(HOUR))
        if max_per_hour is not None and len(self.recent) >= max_per_hour:
            wait = max(1, math.ceil(self.recent[0] + HOUR - now))
            raise BudgetExceeded(f"{who} has used its budget of {max_per_hour} submissions per hour; "
                                 f"retry in {wait} s", wait)


#: Loads (total submissions, timestamps within the last hour) of (team, worker) from the audit log;
#: ``worker`` None means the whole team.
UsageLoader = Callable[[str, str | None, float], tuple[int, list[float]]]


class Budgets:
    """In-memory budget counters backed by the audit log."""

    def __init__(self, load: UsageLoader) -> None:
        self._load = load
        self._usage: dict[tuple[str, str | None], _Usage] = {}

    def _get(self, team: str, worker: str | None, now: float) -> _Usage:
        key = (team, worker)
        if key not in self._usage:
            total, recent = self._load(team, worker, now - HOUR)
            self._usage[key] = _Usage(total, deque(sorted(recent)))
        return self._usage[key].trim(now)

    def check(self, team: str, worker: str, cfg: TeamConfig, now: float) -> Budget:
        """Raise ``BudgetExceeded`` if one more submission is over budget; else the usage after it."""
        mine, ours = self._get(team, worker, now), self._get(team, None, now)
        mine.check(f"worker {worker!r}", cfg.max_per_hour, cfg.max_total, now)
        ours.check(f"team {team!r}", cfg.team_max_per_hour, cfg.team_max_total, now)
        return Budget(used_last_hour=len(mine.recent) + 1, max_per_hour=cfg.max_per_hour,
                      used_total=mine.total + 1, max_total=cfg.max_total,
                      team_used_last_hour=len(ours.recent) + 1, team_max_per_hour=cfg.team_max_per_hour,
                      team_used_total=ours.total + 1, team_max_total=cfg.team_max_total)

    def record(self, team: str, worker: str, now: float) -> None:
        """Count a submission that is being stored."""
        for usage in (self._get(team, worker, now), self._get(team, None, now)):
            usage.total += 1
            usage.recent.append(now)

    def forget(self) -> None:
        """Drop every counter (they reload from the audit log), e.g. after a failed commit."""
        self._usage.clear()
