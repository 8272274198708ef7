"""The team supervisor (``aar team supervise TEAM``, started detached by ``aar team launch``).

Each second it: honours a stop request (``STOP`` file) or an exhausted team budget by stopping every
worker gracefully; classifies workers that exited (``run_end`` in their trajectory: finished or
stopped; anything else: a crash, restarted with exponential backoff from the worker's notebook and
memory snapshot, up to ``max_restarts``); starts pending workers up to the concurrency; posts
heartbeats for running workers to the hub; and saves the team state atomically. A supervisor that
is killed leaves its workers running; the next one adopts them (pid + start time) and goes on.
"""

from __future__ import annotations

import logging
import os
import time

from aar.agents.base import Step, read_trajectory, usage_from
from aar.config import Settings
from aar.orchestrator.backends import WorkerBackend, log_tail, make_backend
from aar.orchestrator.team import (
    TeamState,
    WorkerState,
    alive,
    load_state,
    process_start,
    save_state,
    team_dir,
)

log = logging.getLogger("aar.orchestrator")
HEARTBEAT_S = 15.0
MAX_BACKOFF_S = 300.0
DONE = ("finished", "stopped", "failed")


def trajectory_of(settings: Settings, team: str, worker: str) -> list[Step]:
    return read_trajectory(team_dir(settings, team) / "workers" / worker / "trajectory.jsonl")


def last_run_end(steps: list[Step]) -> Step | None:
    """The ``run_end`` of the latest run, or None when that run never ended (a crash)."""
    for s in reversed(steps):
        if s.type == "run_end":
            return s
        if s.type == "run_start":
            return None
    return None


def team_budget_reason(settings: Settings, state: TeamState) -> str | None:
    """Why the team budget is exhausted, or None."""
    b = state.spec.team_budget
    usages = [usage_from(trajectory_of(settings, state.team, w)) for w in state.workers]
    totals = {"worker_hours": sum(u.wall_s for u in usages) / 3600, "dollars": sum(u.dollars for u in usages),
              "tokens": sum(u.tokens for u in usages), "submissions": sum(u.submissions for u in usages),
              "wall_s": time.time() - state.created_at.timestamp()}
    for name, value in totals.items():
        limit = getattr(b, name)
        if limit is not None and value >= limit:
            return f"team {name} budget reached ({value:g} of {limit:g})"
    return None


class Supervisor:
    """Runs one team to completion (see the module docstring)."""

    def __init__(self, settings: Settings, team: str, poll_s: float = 1.0) -> None:
        self.settings, self.team, self.poll_s = settings, team, poll_s
        self.state = load_state(settings, team)
        if alive(self.state.supervisor_pid, self.state.supervisor_start) and self.state.supervisor_pid != os.getpid():
            raise ValueError(f"team {team!r} already has a running supervisor (pid {self.state.supervisor_pid})")
        self.state.supervisor_pid, self.state.supervisor_start = os.getpid(), process_start(os.getpid())
        save_state(settings, self.state)
        self.backend: WorkerBackend = make_backend(settings, team, self.state.spec)
        self._beat = 0.0

    def run(self) -> TeamState:
        try:
            while self.state.phase == "running":
                self.step()
                time.sleep(self.poll_s)
            if self.state.phase == "stopping":
                self.stop_all()
        finally:
            self.backend.close()
        return self.state

    def step(self) -> None:
        stop = team_dir(self.settings, self.team) / "STOP"
        if stop.exists():
            reason: str | None = stop.read_text().strip() or "stopped"
        else:
            reason = team_budget_reason(self.settings, self.state)
        if reason:
            self.state.phase, self.state.reason = "stopping", reason
            save_state(self.settings, self.state)
            return
        now = time.time()
        for ws in self.state.workers.values():
            if ws.phase == "running" and not self.backend.running(ws):
                self.on_exit(ws, now)
        limit = self.state.spec.concurrency or len(self.state.workers)
        running = sum(ws.phase == "running" for ws in self.state.workers.values())
        for ws in self.state.workers.values():
            if running >= limit:
                break
            if ws.phase in ("pending", "backoff") and (ws.next_start or 0) <= now:
                self.backend.start(ws)
                ws.phase, ws.next_start = "running", None
                running += 1
                log.info("started %s (pid %s, restarts %d)", ws.worker, ws.pid, ws.restarts)
        if all(ws.phase in DONE for ws in self.state.workers.values()):
            self.state.phase, self.state.reason = "finished", "every worker finished"
        save_state(self.settings, self.state)
        if now - self._beat > HEARTBEAT_S:
            self._beat = now
            self.heartbeat()

    def on_exit(self, ws: WorkerState, now: float) -> None:
        """A worker's process ended: finished, stopped, or crashed (restart with backoff, or give up)."""
        code = self.backend.exit_code(ws)
        end = last_run_end(trajectory_of(self.settings, self.team, ws.worker))
        ws.last_exit, ws.pid, ws.pid_start = code, None, None
        if end is not None and code in (0, None):
            ws.phase = "stopped" if end.data.get("reason") == "stopped" else "finished"
            return
        ws.restarts += 1
        tail = log_tail(team_dir(self.settings, self.team) / "workers" / ws.worker / "worker.log")
        self.post_event(ws.worker, "crash", {"exit": code, "restarts": ws.restarts, "log_tail": tail[-1500:]})
        if ws.restarts > self.state.spec.max_restarts:
            ws.phase = "failed"
            log.warning("%s failed after %d restarts", ws.worker, ws.restarts - 1)
            return
        ws.phase = "backoff"
        ws.next_start = now + min(MAX_BACKOFF_S, self.state.spec.backoff_s * 2 ** (ws.restarts - 1))
        log.warning("%s crashed (exit %s); restart %d at +%.0fs", ws.worker, code, ws.restarts, ws.next_start - now)

    def stop_all(self) -> None:
        for ws in self.state.workers.values():
            if ws.phase == "running":
                self.backend.terminate(ws)
                ws.phase, ws.pid, ws.pid_start = "stopped", None, None
            elif ws.phase in ("pending", "backoff"):
                ws.phase = "stopped"
        self.state.phase = "stopped"
        save_state(self.settings, self.state)
        self.heartbeat()

    def _hub(self):  # type: ignore[no-untyped-def]
        from aar.hub.client import HubClient

        token = (team_dir(self.settings, self.team) / "admin.token").read_text().strip()
        return HubClient(self.state.spec.hub_url, token)

    def heartbeat(self) -> None:
        from aar.hub.client import HubError

        try:
            with self._hub() as hub:
                for ws in self.state.workers.values():
                    hub.heartbeat(status=ws.phase, worker_id=ws.worker)
        except (HubError, OSError) as exc:
            log.warning("heartbeat failed: %s", exc)

    def post_event(self, worker: str, kind: str, data: dict) -> None:
        from aar.hub.client import HubError

        try:
            with self._hub() as hub:
                hub.post_event(kind, data, worker_id=worker)
        except (HubError, OSError) as exc:
            log.warning("event %s for %s not posted: %s", kind, worker, exc)
