"""Hold a ``claude`` session to the limits every exec has, and leave nothing running when it ends.

The Claude Code CLI is one long-lived process tree inside the sandbox, started by the Agent SDK
through :mod:`aar.agents.claude_launch`, which writes its pid to ``pidfile`` and becomes the leader of
a new session before it execs the sandbox (bwrap, whose PID namespace dies with it). The guard:

* polls the workspace quota (the same :func:`aar.sandbox.files.disk_usage` as an exec, apparent
  sizes) and the session's wall-clock deadline, and kills the whole tree when either is passed;
* kills the tree when the session ends for any reason (budget spent, stop, error), after a short
  grace: a command the agent left running in the background does not outlive its session.

File size is capped by ``RLIMIT_FSIZE`` in the sandbox's command line, as for an exec. What the guard
does not do: stop a quota overrun within one poll interval (as for an exec), or kill processes that
escaped the sandbox (they cannot: see :mod:`aar.sandbox.base`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from aar.sandbox.files import disk_usage


class SessionGuard:
    """Watch one CLI session (see the module docstring); ``reason`` says why it was stopped, if it was."""

    def __init__(self, pidfile: Path, workspace: Path, quota: int | None, wall_s: float | None,
                 poll_s: float = 0.5) -> None:
        self.pidfile, self.workspace, self.quota, self.poll_s = pidfile, workspace, quota, poll_s
        self.deadline = None if wall_s is None else time.monotonic() + wall_s
        self.reason: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="claude-session-guard")
        pidfile.unlink(missing_ok=True)

    def __enter__(self) -> SessionGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)
        self.end(grace_s=2.0)

    def _watch(self) -> None:
        while not self._done.wait(self.poll_s):
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._stop("the worker's wall-clock budget ran out during the session")
            elif self.quota is not None and disk_usage(self.workspace) > self.quota:
                self._stop(f"the workspace went over its quota of {self.quota} bytes")

    def _stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.end(grace_s=0.0)

    def pid(self) -> int | None:
        """The session leader's pid while it runs (checked: it still leads its own session)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        return pid if fields[0] != "Z" and int(fields[3]) == pid else None  # state; session id

    def end(self, grace_s: float) -> None:
        """Let the tree exit for up to ``grace_s``, then SIGKILL its whole process group."""
        until = time.monotonic() + grace_s
        while (pid := self.pid()) is not None and time.monotonic() < until:
            time.sleep(0.1)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
