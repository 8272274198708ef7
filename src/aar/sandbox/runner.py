"""Run one process tree under a wall clock, capped output and a workspace-quota watchdog.

Shared by every backend. The process is started in its own session (process group); on timeout,
on output past the cap or on a quota overrun the whole group is killed with SIGKILL (for ``bwrap``
that is the launcher, whose death tears down the sandbox's PID namespace). Output is read by two
threads into buffers that never grow past ``max_output_bytes`` each, so a flood cannot exhaust the
host's memory. What it does not do: kill processes that left the process group (only ``local`` has
such processes; under ``bwrap`` they die with the namespace).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

from aar.sandbox.base import ExecResult, LimitHit, SandboxError

POLL_S = 0.05
SIGNAL_LIMITS: dict[int, LimitHit] = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file_size"}
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


class _Capped:
    """Reads one pipe to EOF, keeping at most ``cap`` bytes; calls ``on_overflow`` once past it."""

    def __init__(self, pipe: IO[bytes], cap: int, on_overflow: Callable[[], None]) -> None:
        self.buf = bytearray()
        self.truncated = False
        self._pipe, self._cap, self._on_overflow = pipe, cap, on_overflow
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while chunk := self._pipe.read1(65536):  # type: ignore[attr-defined]
                room = self._cap - len(self.buf)
                if len(chunk) > room:
                    self.buf += chunk[:max(room, 0)]
                    if not self.truncated:
                        self.truncated = True
                        self._on_overflow()
                else:
                    self.buf += chunk
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        return self.buf.decode("utf-8", errors="replace")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of ``proc`` (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_limited(argv: list[str], *, env: dict[str, str], cwd: str | None, timeout: float | None,
                max_output: int, input: bytes | None = None, stream: bool = False,
                over_quota: Callable[[], bool] | None = None, quota_poll_s: float = 0.01) -> ExecResult:
    """Run ``argv`` and return its result; see the module docstring for what is enforced here.

    Args:
        argv: the full command line (launcher included).
        env: the complete environment of the launched process.
        cwd: working directory of the launched process.
        timeout: wall-clock seconds, or None.
        max_output: bytes kept per stream; the tree is killed when a stream goes past it.
        input: bytes for stdin (stdin is /dev/null when None and not streaming).
        stream: inherit stdin/stdout/stderr (no capture, no output cap).
        over_quota: polled every ``quota_poll_s`` (or ten times its own cost, if longer); True kills the
            tree (``limit_hit="disk"``).
    """
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):  # NaN would disable the clock
        raise SandboxError(f"timeout must be a positive number of seconds, not {timeout!r}")
    start = time.monotonic()
    pipe = None if stream else subprocess.PIPE
    stdin = None if stream and input is None else (subprocess.PIPE if input is not None else subprocess.DEVNULL)
    proc = subprocess.Popen(argv, stdin=stdin, stdout=pipe, stderr=pipe, env=env, cwd=cwd,
                            start_new_session=True)
    hit: list[LimitHit] = []

    def stop(reason: LimitHit) -> None:
        if not hit:
            hit.append(reason)
        kill_group(proc)

    readers = [] if stream else [_Capped(p, max_output, lambda: stop("output"))
                                 for p in (proc.stdout, proc.stderr) if p is not None]
    if input is not None and proc.stdin is not None:
        threading.Thread(target=_feed, args=(proc.stdin, input), daemon=True).start()
    deadline = None if timeout is None else start + timeout
    next_quota = start + quota_poll_s
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                stop("wall")
            elif over_quota is not None and now >= next_quota:
                if over_quota():
                    stop("disk")
                cost = time.monotonic() - now  # poll often, but spend at most ~10% of a core on it
                next_quota = time.monotonic() + max(quota_poll_s, 10 * cost)
            try:
                proc.wait(quota_poll_s if over_quota is not None else POLL_S)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:  # interrupted (e.g. KeyboardInterrupt): never leave the tree behind
            kill_group(proc)
            proc.wait()
    kill_group(proc)  # stragglers still in the group (local backend)
    for r in readers:
        r.thread.join(timeout=2.0)
    code = proc.returncode
    sig = -code if code < 0 else (code - 128 if 128 < code < 160 else None)
    code = 128 + sig if code < 0 and sig is not None else code
    out, err = (readers[0], readers[1]) if readers else (None, None)
    stderr = err.text() if err else ""
    limit: LimitHit | None = hit[0] if hit else None
    if limit is None and over_quota is not None and over_quota():
        limit = "disk"
    if limit is None and sig in SIGNAL_LIMITS:
        limit = SIGNAL_LIMITS[sig]
    if limit is None and code != 0 and any(m in stderr for m in MEMORY_MARKERS):
        limit = "memory"
    return ExecResult(exit_code=code, stdout=out.text() if out else "", stderr=stderr,
                      stdout_truncated=bool(out and out.truncated), stderr_truncated=bool(err and err.truncated),
                      timed_out=limit == "wall", limit_hit=limit, signal=sig,
                      duration_s=round(time.monotonic() - start, 3))


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass
