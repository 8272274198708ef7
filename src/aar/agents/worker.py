"""Run one researcher (``aar worker run``): the entry point for people and the orchestrator alike.

``run_worker`` builds (or refreshes) the worker's workspace under
``AAR_HOME/runs/<team>/workers/<worker>/``, saves its config verbatim beside it (never the token),
opens its sandbox (the testbed's public folder shown read-only, everything else under AAR_HOME and
every declared label source hidden), registers with the hub, and runs the researcher against the
live services with the worker's token until its budget ends. The trajectory is written beside the
workspace, outside the sandbox's reach.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aar.agents.base import OPEN_BRIEF, Budget, Researcher, StopRequested, Trajectory, Usage
from aar.agents.claude import ClaudeConfig, ClaudeResearcher
from aar.agents.evolve import EvolveConfig, EvolveResearcher
from aar.agents.llm import LlmConfig, LlmResearcher, make_provider
from aar.agents.tools import McpTools, mcp_command
from aar.config import Settings, get_settings
from aar.sandbox import Limits, Sandbox, get_sandbox, worker_config
from aar.sandbox.policy import sandbox_uid
from aar.w2s.testbeds import DEFAULT_TESTBED
from aar.w2s.workspace import build_workspace

log = logging.getLogger("aar.agents")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class WorkerConfig(BaseModel):
    """Everything that defines one worker's run (saved as ``worker.json``; the token is not part of it)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["evolve", "llm", "claude"] = "evolve"
    team: str = Field(pattern=NAME.pattern)
    worker: str = Field(pattern=NAME.pattern)
    testbed: str = Field(default=DEFAULT_TESTBED, pattern=NAME.pattern)
    direction: str | None = Field(default=None, max_length=4000, description="Research direction (directed mode).")
    budget: Budget = Field(default_factory=Budget)
    sandbox: str = "bwrap"
    limits: Limits = Field(default_factory=Limits)
    hub_url: str = "http://127.0.0.1:8711"
    eval_url: str = "http://127.0.0.1:8710"
    evolve: EvolveConfig = Field(default_factory=EvolveConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    claude: ClaudeConfig = Field(default_factory=ClaudeConfig)
    gpus: list[int] = Field(default_factory=list, description="GPU indices passed into the sandbox.")


class WorkerResult(BaseModel):
    team: str
    worker: str
    kind: str
    usage: Usage
    workspace: Path
    trajectory: Path


def worker_dir(settings: Settings, team: str, worker: str) -> Path:
    return settings.runs_dir / team / "workers" / worker


def open_sandbox(config: WorkerConfig, workspace: Path, ro_paths: list[Path], settings: Settings) -> Sandbox:
    """The worker's sandbox: its workspace writable, the testbed's public folder read-only."""
    env = {"AAR_HOME": str(settings.home.resolve()), "AAR_QUIET": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    cfg = worker_config(workspace, aar_home=settings.home, ro_paths=ro_paths, env=env, limits=config.limits,
                        gpu_devices=[Path(f"/dev/nvidia{i}") for i in config.gpus],
                        uid=sandbox_uid(config.team, config.worker))  # its own NPROC count
    return get_sandbox(config.sandbox, cfg)


def make_researcher(config: WorkerConfig, token: str, settings: Settings, sandbox: Sandbox,
                    trajectory: Path) -> Researcher:
    """The researcher of ``config.kind``: ``evolve`` (no model), ``llm`` (a chat model and tools) or ``claude``
    (Claude Code through the Agent SDK)."""
    mcp = mcp_command(sandbox.workspace, config.hub_url, config.eval_url, token, settings.home.resolve())

    def tools(trajectory: Trajectory) -> McpTools:
        return McpTools(trajectory, sandbox.workspace, config.hub_url, config.eval_url, token, settings.home.resolve())

    factories: dict[str, Callable[[], Researcher]] = {
        "evolve": lambda: EvolveResearcher(trajectory_path=trajectory, budget=config.budget, sandbox=sandbox,
                                           testbed=config.testbed, tools_factory=tools, direction=config.direction,
                                           config=config.evolve, worker_id=config.worker),
        "llm": lambda: LlmResearcher(trajectory_path=trajectory, budget=config.budget, sandbox=sandbox,
                                     testbed=config.testbed, tools_factory=tools,
                                     provider=make_provider(config.llm, dict(os.environ)), config=config.llm,
                                     direction=config.direction, brief=OPEN_BRIEF, worker_id=config.worker),
        "claude": lambda: ClaudeResearcher(
            trajectory_path=trajectory, budget=config.budget, sandbox=sandbox, sandbox_kind=config.sandbox,
            testbed=config.testbed, config=config.claude,
            mcp_argv=mcp[0], mcp_env=mcp[1], api_key=os.environ.get(config.claude.api_key_env, ""),
            direction=config.direction, brief=OPEN_BRIEF, worker_id=config.worker),
    }
    return factories[config.kind]()


def _stop_on_sigterm() -> Any:
    """SIGTERM (``aar team stop``, the supervisor) ends the run cleanly: ``StopRequested`` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, _frame: object) -> None:
        raise StopRequested(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def run_worker(config: WorkerConfig, token: str, settings: Settings | None = None) -> WorkerResult:
    """Build the workspace, open the sandbox, register, and run the researcher until its budget ends."""
    from aar.hub.client import HubClient, HubError

    settings = settings or get_settings()
    if not token:
        raise ValueError("no worker token: pass --token-file or set AAR_WORKER_TOKEN")
    wdir = worker_dir(settings, config.team, config.worker)
    info = build_workspace(wdir / "workspace", config.testbed, settings)
    (wdir / "worker.json").write_text(config.model_dump_json(indent=2))
    trajectory = wdir / "trajectory.jsonl"
    sandbox = open_sandbox(config, info.root, info.sandbox_paths, settings)
    with HubClient(config.hub_url, token) as hub:
        try:
            hub.register({"kind": config.kind, "testbed": config.testbed, "direction": config.direction})
            hub.post_event("worker_started", {"kind": config.kind, "testbed": config.testbed})
        except HubError as exc:
            log.warning("hub registration failed: %s", exc)
        researcher = make_researcher(config, token, settings, sandbox, trajectory)
        previous = _stop_on_sigterm()
        try:
            usage = researcher.run()
        finally:
            sandbox.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        try:
            hub.heartbeat(status="stopped")
            hub.post_event("stop", {"usage": usage.model_dump()})
        except HubError as exc:
            log.warning("hub update failed: %s", exc)
    return WorkerResult(team=config.team, worker=config.worker, kind=config.kind, usage=usage,
                        workspace=info.root, trajectory=trajectory)
