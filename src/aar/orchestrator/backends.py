"""Where worker processes run: the ``WorkerBackend`` contract and the ``local`` backend (processes here).

A backend starts ``aar worker run --config worker.json --token-file token`` for one worker, tells
whether it still runs, and stops it: SIGTERM to the worker, which ends its session cleanly, then
SIGKILL to its whole process group after a grace period, so its MCP server and sandboxed
experiments go with it. It records the pid and the process start time
in the worker's state, so a restarted supervisor can adopt processes it did not start. The ``ray``
backend (``aar.orchestrator.ray``) meets the same contract with Ray actors.
"""

from __future__ import annotations

import abc
import os
import signal
import subprocess
import time
from pathlib import Path

from aar.agents.tools import aar_command
from aar.config import Settings
from aar.orchestrator.team import TeamSpec, WorkerState, alive, process_start, team_dir


def worker_argv(settings: Settings, team: str, worker: str) -> list[str]:
    wdir = team_dir(settings, team) / "workers" / worker
    return [aar_command(), "worker", "run", "--config", str(wdir / "worker.json"), "--token-file", str(wdir / "token")]


def worker_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "AAR_HOME": str(settings.home.resolve()), "AAR_QUIET": "1"}


class WorkerBackend(abc.ABC):
    """Starts, watches and stops worker processes (see the module docstring)."""

    def __init__(self, settings: Settings, team: str, spec: TeamSpec) -> None:
        self.settings, self.team, self.spec = settings, team, spec

    @abc.abstractmethod
    def start(self, ws: WorkerState) -> None:
        """Start the worker; sets ``ws.pid`` / ``ws.pid_start`` where there is a local process."""

    @abc.abstractmethod
    def running(self, ws: WorkerState) -> bool: ...

    @abc.abstractmethod
    def exit_code(self, ws: WorkerState) -> int | None:
        """The exit code of a worker that stopped, when known (None for an adopted process)."""

    @abc.abstractmethod
    def terminate(self, ws: WorkerState, grace_s: float = 20.0) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources (not the workers: they may outlive a supervisor)."""


class LocalBackend(WorkerBackend):
    """Worker processes on this machine, each in its own session (process group)."""

    def __init__(self, settings: Settings, team: str, spec: TeamSpec) -> None:
        super().__init__(settings, team, spec)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, ws: WorkerState) -> None:
        log = (team_dir(self.settings, self.team) / "workers" / ws.worker / "worker.log").open("ab")
        proc = subprocess.Popen(worker_argv(self.settings, self.team, ws.worker), env=worker_env(self.settings),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.procs[ws.worker] = proc
        ws.pid, ws.pid_start = proc.pid, process_start(proc.pid)

    def running(self, ws: WorkerState) -> bool:
        proc = self.procs.get(ws.worker)
        if proc is not None and proc.pid == ws.pid:
            return proc.poll() is None
        return alive(ws.pid, ws.pid_start)

    def exit_code(self, ws: WorkerState) -> int | None:
        proc = self.procs.get(ws.worker)
        return proc.poll() if proc is not None and proc.pid == ws.pid else None

    def terminate(self, ws: WorkerState, grace_s: float = 20.0) -> None:
        if ws.pid is None or not self.running(ws):
            return
        try:  # the worker alone first: it ends its session and closes its MCP server itself
            os.kill(ws.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self.running(ws):
            time.sleep(0.2)
        kill_group(ws.pid, signal.SIGKILL)
        proc = self.procs.get(ws.worker)
        if proc is not None:
            proc.wait(timeout=10)


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (the worker, its MCP server, its sandboxed commands)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def make_backend(settings: Settings, team: str, spec: TeamSpec) -> WorkerBackend:
    if spec.backend == "ray":
        from aar.orchestrator.ray import RayBackend

        return RayBackend(settings, team, spec)
    return LocalBackend(settings, team, spec)


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
