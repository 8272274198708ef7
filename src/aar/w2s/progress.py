"""Rich progress bars that stay quiet when nobody is watching (no TTY, tests, --json)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class _Quiet:
    def advance(self, n: float = 1) -> None:
        pass


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: float = 1) -> None:
        self.progress.advance(self.task, n)


def progress_enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("AAR_QUIET", "") == ""


@contextmanager
def progress_bar(description: str, total: float) -> Iterator[_Bar | _Quiet]:
    """A progress bar on stderr for work that may take more than a couple of seconds."""
    if not progress_enabled() or total < 200:
        yield _Quiet()
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
