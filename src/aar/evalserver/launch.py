"""``aar serve``: run the eval server and the hub as two processes and supervise them.

Each service is its own process so that only the eval server ever holds labels in memory. If one exits,
the other is stopped and ``serve`` returns that exit code; SIGINT / SIGTERM stop both.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aar.servicekit import wait_healthy


@dataclass
class Service:
    name: str
    url: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def hub_problem() -> str | None:
    """None when the hub app can be imported, else why not."""
    try:
        importlib.import_module("aar.hub.app")
    except Exception as exc:  # any import failure means "no hub here"
        return f"{type(exc).__name__}: {exc}"
    return None


def plan(host: str, eval_port: int, hub_port: int, config: Path | None, with_hub: bool) -> list[Service]:
    """The processes ``serve`` starts."""
    argv = [sys.executable, "-m", "aar.evalserver", "--host", host, "--port", str(eval_port)]
    if config is not None:
        argv += ["--config", str(config)]
    services = [Service("eval server", f"http://{host}:{eval_port}", argv)]
    if with_hub:
        services.append(Service("hub", f"http://{host}:{hub_port}", [
            sys.executable, "-m", "uvicorn", "--factory", "aar.hub.app:create_app", "--host", host,
            "--port", str(hub_port), "--log-level", "warning", "--no-access-log"]))
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


def run(services: list[Service], on_ready: Callable[[list[Service]], None] | None = None) -> int:
    """Start the services, wait until healthy, then supervise until one exits or a signal arrives."""
    env = dict(os.environ)
    evals = [s for s in services if s.name == "eval server"]
    if evals:
        env.setdefault("AAR_EVAL_URL", evals[0].url)

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for s in services:  # a busy port would be answered by the *other* server's health check
        host, _, port = s.url.removeprefix("http://").rpartition(":")
        problem = port_problem(host.strip("[]"), int(port))
        if problem:
            raise RuntimeError(f"{s.name} not started: {problem}")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for s in services:
            s.proc = subprocess.Popen(s.argv, env=env)
        for s in services:
            assert s.proc is not None
            if not wait_healthy(s.url, lambda p=s.proc: p.poll() is None):  # type: ignore[misc]
                _stop(services)
                raise RuntimeError(f"{s.name} did not start at {s.url} (see its output above)")
        if on_ready is not None:
            on_ready(services)
        while True:
            for s in services:
                assert s.proc is not None
                code = s.proc.poll()
                if code is not None:
                    _stop(services)
                    return code or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        _stop(services)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
