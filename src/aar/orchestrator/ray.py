"""The ``ray`` backend: each worker a Ray actor with its CPU / GPU share, on a cluster or a local instance.

The actor (named ``aar:<team>:<worker>``, detached, in namespace ``aar``) starts ``aar worker run``
on its node in its own process group and reports whether it runs; stopping it sends SIGTERM to that
group, then SIGKILL. Services are reached over HTTP (the team's ``hub_url`` / ``eval_url``), and the
worker's node must see the same ``AAR_HOME`` runs folder (a shared filesystem) or use PostgreSQL and
an fsspec snapshot store for the shared state. Detached actors outlive a supervisor that dies while
connected to a cluster (``ray_address``), and the next supervisor adopts them by name; with a local
instance started by the supervisor itself, they end with it and are restarted like crashed workers.
"""

from __future__ import annotations

from typing import Any

from aar.config import Settings
from aar.orchestrator.backends import WorkerBackend, worker_argv, worker_env
from aar.orchestrator.team import TeamSpec, WorkerState, team_dir

NAMESPACE = "aar"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("the ray backend needs Ray: pip install 'aar[ray]'") from exc
    return ray


class _WorkerProcess:
    """Runs inside the actor: one worker process in its own session."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: str) -> None:
        import subprocess

        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)

    def poll(self) -> int | None:
        return self.proc.poll()

    def stop(self, grace_s: float) -> int | None:
        import os
        import signal
        import subprocess

        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:  # SIGTERM to the worker (it ends cleanly), then SIGKILL to its whole group
                if sig == signal.SIGTERM:
                    os.kill(self.proc.pid, sig)
                else:
                    os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                return self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.poll()


class RayBackend(WorkerBackend):
    """Workers as detached Ray actors (see the module docstring)."""

    def __init__(self, settings: Settings, team: str, spec: TeamSpec) -> None:
        super().__init__(settings, team, spec)
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=spec.ray_address, namespace=NAMESPACE, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        self.actor_cls = ray.remote(_WorkerProcess)
        self.codes: dict[str, int | None] = {}

    def _name(self, worker: str) -> str:
        return f"aar:{self.team}:{worker}"

    def _actor(self, worker: str) -> Any:
        try:
            return _ray().get_actor(self._name(worker), namespace=NAMESPACE)
        except ValueError:
            return None

    def start(self, ws: WorkerState) -> None:
        old = self._actor(ws.worker)
        if old is not None:
            _ray().kill(old)
        log = str(team_dir(self.settings, self.team) / "workers" / ws.worker / "worker.log")
        self.actor_cls.options(name=self._name(ws.worker), namespace=NAMESPACE, lifetime="detached",
                               num_cpus=self.spec.cpus_per_worker, num_gpus=self.spec.gpus_per_worker,
                               max_restarts=0).remote(worker_argv(self.settings, self.team, ws.worker),
                                                      worker_env(self.settings), log)
        ws.pid = ws.pid_start = None
        self.codes.pop(ws.worker, None)

    def running(self, ws: WorkerState) -> bool:
        actor = self._actor(ws.worker)
        if actor is None:
            return False
        try:
            code = _ray().get(actor.poll.remote(), timeout=30)
        except Exception:  # the actor died with its node or its process
            return False
        if code is None:
            return True
        self.codes[ws.worker] = code
        _ray().kill(actor)
        return False

    def exit_code(self, ws: WorkerState) -> int | None:
        return self.codes.get(ws.worker)

    def terminate(self, ws: WorkerState, grace_s: float = 20.0) -> None:
        actor = self._actor(ws.worker)
        if actor is None:
            return
        try:
            self.codes[ws.worker] = _ray().get(actor.stop.remote(grace_s), timeout=grace_s + 30)
        finally:
            _ray().kill(actor)

    def close(self) -> None:
        if self.spec.ray_address is None:  # our own local instance: its actors end with it
            _ray().shutdown()
