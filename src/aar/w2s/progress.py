"""Progress for long work: a rich bar on a terminal, a line every 30 s in a log, nothing under AAR_QUIET.

Both show the time left, estimated from the pace so far. ``counted=False`` shows a percentage instead
of "done/total", for work measured in estimated cost rather than in items.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Quiet:
    def advance(self, n: float = 1) -> None:
        pass


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: float = 1) -> None:
        self.progress.advance(self.task, n)


class _Lines:
    """For logs (stderr is not a terminal): one line every ``every`` seconds, and one at the end."""

    def __init__(self, description: str, total: float, counted: bool = True, every: float = 30.0) -> None:
        self.description, self.total, self.counted, self.every = description, total, counted, every
        self.done, self.start = 0.0, time.monotonic()
        self.last = self.start

    def advance(self, n: float = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            print(f"{self.description}: {self.line(now - self.start)}", file=sys.stderr)

    def line(self, elapsed: float) -> str:
        """"done/total" (or a percentage), the seconds so far and, while unfinished, about how many are left."""
        share = self.done / self.total if self.total else 1.0
        done = f"{self.done:.0f}/{self.total:.0f}" if self.counted else f"{100 * share:.0f}%"
        left = f", about {elapsed * (1 - share) / share:.0f} s left" if 0 < share < 1 else ""
        return f"{done} ({elapsed:.0f} s{left})"


def progress_enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("AAR_QUIET", "") == ""


@contextmanager
def progress_bar(description: str, total: float, counted: bool = True) -> Iterator[_Bar | _Quiet | _Lines]:
    """Progress on stderr for work that may take more than a couple of seconds."""
    if total < 200 or os.environ.get("AAR_QUIET", ""):
        yield _Quiet()
        return
    if not progress_enabled():
        yield _Lines(description, total, counted)
        return
    done = MofNCompleteColumn() if counted else TaskProgressColumn()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), done, TimeElapsedColumn(), TimeRemainingColumn(),
        transient=True,
    ) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
