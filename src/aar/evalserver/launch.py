"""``aar serve``: run the eval server and the hub as two processes and supervise them.

Each service is its own process so that only the eval server ever holds labels in memory. If one exits,
the other is stopped and ``serve`` returns that exit code; SIGINT / SIGTERM stop both.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aar.servicekit import wait_healthy


@dataclass
class Service:
    name: str
    url: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def hub_problem() -> str | None:
    """None when the hub app can be imported, else why not."""
    try:
        importlib.import_module("aar.hub.app")
    except Exception as exc:  # any import failure means "no hub here"
        return f"{type(exc).__name__}: {exc}"
    return None


def plan(host: str, eval_port: int, hub_port: int, config: Path | None, with_hub: bool,
         dashboard_port: int | None = None) -> list[Service]:
    """The processes ``serve`` starts (the dashboard, reading the other two, when ``dashboard_port`` is set)."""
    argv = [sys.executable, "-m", "aar.evalserver", "--host", host, "--port", str(eval_port)]
    if config is not None:
        argv += ["--config", str(config)]
    services = [Service("eval server", f"http://{host}:{eval_port}", argv)]
    if with_hub:
        services.append(Service("hub", f"http://{host}:{hub_port}", [
            sys.executable, "-m", "uvicorn", "--factory", "aar.hub.app:create_app", "--host", host,
            "--port", str(hub_port), "--log-level", "warning", "--no-access-log"]))
    if dashboard_port is not None:
        services.append(Service("dashboard", f"http://{host}:{dashboard_port}", [
            sys.executable, "-m", "uvicorn", "--factory", "aar.dashboard.app:create_app", "--host", host,
            "--port", str(dashboard_port), "--log-level", "warning", "--no-access-log"],
            env={"AAR_DASH_EVAL_URL": services[0].url, "AAR_DASH_HUB_URL": f"http://{host}:{hub_port}"}))
    return services


def port_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now, else why not (a second ``aar serve``, another program)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return f"{host}:{port} is not free ({exc.strerror}); is another server running there?"
    return None


def _stop(services: list[Service]) -> None:
    for s in services:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.terminate()
    for s in services:
        if s.proc is not None:
            try:
                s.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                s.proc.kill()


@contextlib.contextmanager
def started(services: list[Service]) -> Iterator[list[Service]]:
    """Start the services, wait until each answers its health check, and stop them all on exit."""
    env = dict(os.environ)
    evals = [s for s in services if s.name == "eval server"]
    if evals:
        env.setdefault("AAR_EVAL_URL", evals[0].url)
    for s in services:  # a busy port would be answered by the *other* server's health check
        host, _, port = s.url.removeprefix("http://").rpartition(":")
        problem = port_problem(host.strip("[]"), int(port))
        if problem:
            raise RuntimeError(f"{s.name} not started: {problem}")
    try:
        for s in services:
            s.proc = subprocess.Popen(s.argv, env={**env, **s.env})
        for s in services:
            assert s.proc is not None
            if not wait_healthy(s.url, lambda p=s.proc: p.poll() is None):  # type: ignore[misc]
                raise RuntimeError(f"{s.name} did not start at {s.url} (see its output above)")
        yield services
    finally:
        _stop(services)


def run(services: list[Service], on_ready: Callable[[list[Service]], None] | None = None) -> int:
    """Start the services, wait until healthy, then supervise until one exits or a signal arrives."""

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with started(services):
            if on_ready is not None:
                on_ready(services)
            while True:
                for s in services:
                    assert s.proc is not None
                    code = s.proc.poll()
                    if code is not None:
                        return code or 1
                time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
