"""The researcher protocol: budgets, the trajectory journal, and the ``Researcher`` base class.

A researcher runs sessions until its budget ends (wall clock, tokens, dollars, submissions) and
appends every step to the worker's ``trajectory.jsonl``: schema-versioned JSON lines, a ``run_start``
header first for each run (a resumed worker appends a new one), then ``session_start``, the steps
(``decision``, ``message``, ``tool_call``, ``tool_result``, ``submission``, ``error``), ``session_end``,
and a ``run_end`` summary. Usage already spent is read back from the journal, so a restarted worker
keeps its budget instead of getting a fresh one. LLM researchers (next issue) and ``evolve`` share it.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The brief every undirected researcher gets (directed ones get a direction instead).
OPEN_BRIEF = ("Open brief: find methods that make the strong student recover as much of the gap between the "
              "weak supervisor and the ground-truth ceiling as possible, in and out of distribution. Any "
              "approach is fair except probing for labels.")
TRAJECTORY_SCHEMA = 1
StepType = Literal["run_start", "session_start", "decision", "message", "tool_call", "tool_result", "submission",
                   "error", "budget_stop", "session_end", "run_end", "detector"]

log = logging.getLogger(__name__)


class StopRequested(BaseException):
    """Raised (from a signal handler) to end a run cleanly: the current session ends, ``run_end`` is written."""


class Budget(BaseModel):
    """Limits for one worker (``None``: unlimited); all of them are totals over every run of the worker."""

    model_config = ConfigDict(extra="forbid")

    wall_s: float | None = Field(default=3600.0, gt=0, description="Wall-clock seconds of research.")
    tokens: int | None = Field(default=None, gt=0, description="Model tokens (input + output).")
    dollars: float | None = Field(default=None, gt=0, description="Model spend in dollars.")
    submissions: int | None = Field(default=50, gt=0, description="Eval-server submissions.")
    sessions: int | None = Field(default=None, gt=0, description="Sessions (fresh contexts).")


class Usage(BaseModel):
    """What a worker has spent so far."""

    wall_s: float = 0.0
    tokens: int = 0
    dollars: float = 0.0
    submissions: int = 0
    sessions: int = 0

    def exhausted(self, budget: Budget) -> str | None:
        """The first budget this usage has reached, as a reason, or None."""
        for name in ("wall_s", "tokens", "dollars", "submissions", "sessions"):
            limit = getattr(budget, name)
            if limit is not None and getattr(self, name) >= limit:
                return f"{name} budget reached ({getattr(self, name):g} of {limit:g})"
        return None


class Step(BaseModel):
    """One trajectory line; ``data`` depends on ``type`` (e.g. ``tool_call``: name and arguments)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = TRAJECTORY_SCHEMA
    type: StepType
    t: datetime
    session: int = Field(ge=0)
    elapsed_s: float = Field(ge=0, description="Seconds since this run started.")
    tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    submission_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


MAX_TRAJECTORY_BYTES = 256 << 20
#: Steps kept past the size cap: the run's skeleton, submissions, detector events (and every charge).
ESSENTIAL: frozenset[str] = frozenset({"run_start", "session_start", "session_end", "submission", "budget_stop",
                                        "run_end", "detector"})


class Trajectory:
    """Append-only JSONL journal of one run of a worker; every line is a validated :class:`Step`; nothing is
    written after the run's ``run_end``. Past ``max_bytes`` (all runs together) only essential steps and
    charges are written (one ``error`` step says so): an agent that floods its transcript cannot fill the
    host's disk or make every reader of the file slow."""

    def __init__(self, path: Path, max_bytes: int = MAX_TRAJECTORY_BYTES) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.session = 0
        self.closed = False
        self.max_bytes = max_bytes
        self.size = path.stat().st_size if path.exists() else 0
        self.truncated = False
        self._lock = threading.Lock()

    def append(self, type: StepType, *, tokens: int = 0, cost_usd: float = 0.0, submission_id: str | None = None,
               **data: Any) -> Step:
        step = Step(type=type, t=datetime.now(UTC), session=self.session, elapsed_s=time.monotonic() - self.started,
                    tokens=tokens, cost_usd=cost_usd, submission_id=submission_id, data=data)
        with self._lock:
            if self.closed:  # a straggling thread after run_end (e.g. an exec finishing during a stop)
                return step
            line = step.model_dump_json() + "\n"
            if self.size + len(line) > self.max_bytes and type not in ESSENTIAL and not (tokens or cost_usd):
                if self.truncated:
                    return step
                self.truncated = True
                line = Step(type="error", t=step.t, session=self.session, elapsed_s=step.elapsed_s, data={
                    "error": f"trajectory over {self.max_bytes} bytes: transcript lines are no longer kept "
                             "(submissions, charges and the run's steps still are)"}).model_dump_json() + "\n"
            with self.path.open("a") as f:
                f.write(line)
            self.size += len(line.encode())
            self.closed = type == "run_end"
        return step


def read_trajectory(path: Path) -> list[Step]:
    """Every valid step of a trajectory file. A torn last line (a killed writer) is skipped quietly, a bad
    line elsewhere with a warning: a reader (the supervisor, status, the budget) never crashes on one."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    steps = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            steps.append(Step.model_validate_json(line))
        except ValueError:
            if n != len(lines) - 1:
                log.warning("%s: line %d is not a valid step; skipped", path, n + 1)
    return steps


def usage_from(steps: list[Step]) -> Usage:
    """Spent budget according to a trajectory: wall time of every run, tokens, dollars, submissions, sessions."""
    u = Usage()
    run_elapsed = 0.0
    for s in steps:
        if s.type == "run_start":
            u.wall_s += run_elapsed
            run_elapsed = 0.0
        run_elapsed = max(run_elapsed, s.elapsed_s)
        u.tokens += s.tokens
        u.dollars += s.cost_usd
        u.submissions += s.type == "submission"
        u.sessions += s.type == "session_start"
    u.wall_s += run_elapsed
    return u


class Researcher(abc.ABC):
    """Runs sessions until the budget ends; subclasses implement one session.

    Lifecycle: ``run()`` appends ``run_start``, then loops ``session_start`` → :meth:`session` →
    ``session_end`` while no budget is exhausted and :meth:`session` returns True (more to do), then
    ``budget_stop`` (if a budget ended it) and ``run_end`` with the usage. Subclasses call
    :meth:`charge` for tokens and dollars and :meth:`record_submission` for each submission.
    """

    kind = "abstract"

    def __init__(self, trajectory_path: Path, budget: Budget, info: dict[str, Any] | None = None) -> None:
        self.trajectory = Trajectory(trajectory_path)
        self.budget = budget
        self.prior = usage_from(read_trajectory(trajectory_path))
        self.info = info or {}

    def usage(self) -> Usage:
        """Usage over every run so far, this one included."""
        return usage_from(read_trajectory(self.trajectory.path))

    def budget_left(self) -> str | None:
        """Why the worker must stop now, or None."""
        return self.usage().exhausted(self.budget)

    def charge(self, tokens: int = 0, dollars: float = 0.0, **data: Any) -> None:
        self.trajectory.append("message", tokens=tokens, cost_usd=dollars, **data)

    def record_submission(self, submission_id: str, **data: Any) -> None:
        self.trajectory.append("submission", submission_id=submission_id, **data)

    def run(self) -> Usage:
        """Run sessions until the budget ends or the researcher has nothing left to do; returns usage."""
        self.trajectory.append("run_start", kind=self.kind, budget=self.budget.model_dump(),
                               prior=self.prior.model_dump(), **self.info)
        session = self.prior.sessions
        reason = self.budget_left()
        more = True
        try:
            while reason is None and more:
                session += 1
                self.trajectory.session = session
                self.trajectory.append("session_start")
                try:
                    more = self.session(session)
                except StopRequested:
                    raise
                except Exception as exc:
                    self.trajectory.append("error", error=f"{type(exc).__name__}: {exc}")
                    self.trajectory.append("session_end", ok=False)
                    raise
                self.trajectory.append("session_end", ok=True)
                reason = self.budget_left()
        except StopRequested as stop:
            self.trajectory.append("session_end", ok=False, stopped=str(stop))
            reason = "stopped"
        else:
            if reason:
                self.trajectory.append("budget_stop", reason=reason)
        usage = self.usage()
        self.trajectory.append("run_end", usage=usage.model_dump(), reason=reason or "done")
        return usage

    @abc.abstractmethod
    def session(self, number: int) -> bool:
        """One session with a fresh context; return False when there is nothing more to do."""


def jsonable(value: Any) -> Any:
    """``value`` made JSON-safe for a trajectory line (long strings are kept; unknown types become str)."""
    return json.loads(json.dumps(value, default=str))
