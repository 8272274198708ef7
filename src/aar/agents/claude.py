"""The ``claude`` researcher: Claude Code through the Claude Agent SDK, as in the published system.

The SDK (host side) drives the Claude Code CLI, whose process runs **inside the worker's sandbox**:
the SDK's ``cli_path`` is a launcher (:mod:`aar.agents.claude_launch`) that execs the CLI under bwrap
with the worker's sandbox config. The CLI and its tools (Bash, Read, Write, Edit, Glob, Grep) see
the workspace only, with permission mode ``bypassPermissions`` inside the sandbox. Two host-side
unix sockets are bound in, and nothing else leaves the sandbox:

* the model-API proxy (:mod:`aar.agents.proxy`), reached through an in-sandbox TCP forwarder at
  ``ANTHROPIC_BASE_URL=http://127.0.0.1:PORT``; it injects the real key (the CLI holds a placeholder)
  and forwards only the model routes upstream, for the pinned models only, counting what every call
  costs and refusing calls once the worker's dollar budget is spent (an agent that calls the proxy
  itself, bypassing the CLI, is counted and capped the same way);
* the worker's MCP endpoint (:class:`aar.agents.forward.CommandSocket` running ``aar mcp`` with the
  worker's token), which the CLI reaches through a stdio bridge configured as its ``aar`` MCP server.

Each session starts a fresh CLI conversation from the shared Jinja prompt (appended to Claude Code's
own system prompt). Cost and tokens are the proxy's count (:class:`aar.agents.proxy.Meter`); the SDK's
own figures (``total_cost_usd``) are recorded next to them for comparison.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from aar.agents.base import Budget, Researcher, jsonable, read_trajectory
from aar.agents.forward import CommandSocket
from aar.agents.llm import KICKOFF, render_prompt
from aar.agents.providers.base import DEFAULT_PRICES, Price, price_for
from aar.agents.proxy import Meter, ModelProxy, usage_tokens
from aar.agents.session_guard import SessionGuard
from aar.agents.tools import shorten, truncate
from aar.sandbox import Sandbox, get_sandbox
from aar.sandbox.bwrap import BwrapSandbox
from aar.sandbox.files import disk_usage
from aar.sandbox.policy import prlimit_argv

PLACEHOLDER_KEY = "sk-ant-placeholder-the-proxy-adds-the-real-key"
log = logging.getLogger(__name__)


class SessionRefused(Exception):
    """A session cannot start (e.g. the workspace is over its quota)."""


class ClaudeConfig(BaseModel):
    """Model, limits and upstream of a ``claude`` researcher."""

    model_config = ConfigDict(extra="forbid")

    model: str = "claude-sonnet-4-5"
    max_turns: int = Field(default=60, ge=1, description="CLI turns per session.")
    upstream: str = Field(default="https://api.anthropic.com", description="Where the proxy forwards model calls.")
    api_key_env: str = "ANTHROPIC_API_KEY"
    port: int = Field(default=18080, ge=1024, le=65535, description="The forwarder's port inside the sandbox.")
    cli_path: Path | None = Field(default=None, description="Claude Code binary (default: the SDK's bundled one).")
    allowed_models: list[str] = Field(default_factory=list, description="Models allowed besides `model`.")
    prices: dict[str, Price] = Field(default_factory=dict, description="USD per million tokens, by model id or prefix "
                                     "(added to the defaults; needed for a model they do not price).")
    allow_scripted_calls: bool = Field(default=False, description="Serve model calls that do not come from the "
                                       "CLI's own turns (scripts in the sandbox); metered and flagged either way.")

    def model_prices(self) -> dict[str, Price | None]:
        """Each allowed model with its price (None where neither the config nor the defaults price it)."""
        table = {**DEFAULT_PRICES, **self.prices}
        return {m: price_for(m, table) for m in dict.fromkeys([self.model, *self.allowed_models])}


def bundled_cli() -> Path:
    """The Claude Code binary that ships inside the ``claude-agent-sdk`` wheel."""
    try:
        import claude_agent_sdk
    except ImportError as exc:
        raise RuntimeError("the claude researcher needs the Agent SDK: pip install 'aar[claude]'") from exc
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not path.exists():
        raise RuntimeError(f"no bundled Claude Code CLI at {path}; set claude.cli_path")
    return path


class ClaudeResearcher(Researcher):
    """See the module docstring."""

    kind = "claude"

    def __init__(self, *, trajectory_path: Path, budget: Budget, sandbox: Sandbox, sandbox_kind: str, testbed: str,
                 config: ClaudeConfig, mcp_argv: list[str], mcp_env: dict[str, str], api_key: str,
                 direction: str | None = None, brief: str = "", worker_id: str = "") -> None:
        super().__init__(trajectory_path, budget, {"testbed": testbed, "direction": direction, "worker": worker_id,
                                                   "model": config.model})
        if not api_key:
            raise ValueError(f"no API key for the claude researcher: set {config.api_key_env}")
        Meter(config.model_prices(), budget.dollars)  # fails now, not mid-run, if a budgeted model has no price
        self.sandbox, self.sandbox_kind, self.testbed, self.config = sandbox, sandbox_kind, testbed, config
        self.mcp_argv, self.mcp_env, self.api_key = mcp_argv, mcp_env, api_key
        self.direction, self.brief = direction, brief
        self.home = trajectory_path.parent  # outside the workspace: sockets and the launcher live here
        self.record_file = self.home / "mcp-submissions.jsonl"  # the MCP server's record of submissions
        self._record_offset = 0  # read from the start: a run killed before it recorded one catches up
        self._recorded = {s.submission_id for s in read_trajectory(trajectory_path) if s.type == "submission"}
        self.proxy_seconds: list[float] = []

    def session(self, number: int) -> bool:
        return anyio.run(self._session, number)

    def _launcher(self, sandbox: Sandbox, model_sock: Path, fsize: int | None) -> Path:
        """Write the launch spec and the ``cli_path`` script that execs the CLI inside the sandbox."""
        cli = self.config.cli_path or bundled_cli()
        inner = [sys.executable, "-m", "aar.agents.forward", "tcp", str(self.config.port), str(model_sock), "--",
                 str(cli)]
        command = [*inner, "__AAR_CLI_ARGS__"]
        argv = (sandbox.argv(command, fsize) if isinstance(sandbox, BwrapSandbox)  # local: no isolation
                else prlimit_argv(sandbox.config.limits, fsize) + command if shutil.which("prlimit") else command)
        spec = {"argv": argv, "pidfile": str(self.home / "claude-session.pid"),
                "env": sandbox_env(sandbox, {
                    "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{self.config.port}",
                    "ANTHROPIC_API_KEY": PLACEHOLDER_KEY, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                    # the CLI's background calls use the pinned model too (the proxy refuses others)
                    "ANTHROPIC_SMALL_FAST_MODEL": self.config.model,
                    "ANTHROPIC_DEFAULT_HAIKU_MODEL": self.config.model,
                    "DISABLE_AUTOUPDATER": "1", "IS_SANDBOX": "1"})}
        launch = self.home / "claude-launch.json"
        launch.write_text(json.dumps(spec))
        os.chmod(launch, 0o600)
        script = self.home / "claude-in-sandbox"
        script.write_text(f"#!/bin/sh\nexec {sys.executable} -m aar.agents.claude_launch {launch} \"$@\"\n")
        os.chmod(script, 0o700)
        return script

    async def _session(self, number: int) -> bool:
        model_sock, mcp_sock = self.home / "model.sock", self.home / "mcp.sock"
        left = None if self.budget.dollars is None else max(0.0, self.budget.dollars - self.usage().dollars)
        # the proxy's count is the charge, whatever the CLI reports: each call lands in the trajectory as
        # it settles, so a worker killed mid-session (SIGKILL, OOM) comes back with its spend on disk
        meter = Meter(self.config.model_prices(), limit=left, on_charge=self._charge_call,
                      marker=f"aar-session-{secrets.token_hex(12)}", allow_scripted=self.config.allow_scripted_calls,
                      on_scripted=self._flag_scripted)
        try:
            await self._converse(number, model_sock, mcp_sock, meter)
        except SessionRefused as exc:
            self.trajectory.append("error", error=f"session not started: {exc}")
            return False
        finally:
            self.trajectory.append("message", role="proxy", calls=meter.calls, refused=meter.refused,
                                   betas_dropped=meter.betas_dropped, scripted=meter.scripted,
                                   session_tokens=meter.tokens, session_cost_usd=round(meter.dollars, 6))
        return True

    def _flag_scripted(self, model: str, allowed: bool) -> None:
        self.trajectory.append("detector", detector="scripted_model_call", model=model, allowed=allowed)

    def _charge_call(self, model: str, usage: dict[str, int], dollars: float) -> None:
        self.charge(tokens=usage_tokens(usage), dollars=dollars, role="proxy_call", model=model)

    async def _converse(self, number: int, model_sock: Path, mcp_sock: Path, meter: Meter) -> None:
        from claude_agent_sdk import ClaudeAgentOptions, query

        cfg = self.sandbox.config
        owner = (cfg.uid, cfg.gid) if os.geteuid() == 0 else None  # as root the sandbox runs as cfg.uid
        quota = cfg.limits.disk_bytes
        used = disk_usage(self.sandbox.workspace) if quota is not None else 0
        if quota is not None and used >= quota:
            raise SessionRefused(f"workspace uses {used} bytes, over its quota of {quota}")
        wall = None if self.budget.wall_s is None else max(1.0, self.budget.wall_s - self.usage().wall_s)
        with ModelProxy(model_sock, self.config.upstream, self.api_key, meter, owner) as proxy, \
                CommandSocket(mcp_sock, self.mcp_argv, {**self.mcp_env, "AAR_MCP_RECORD": str(self.record_file)},
                              owner), \
                SessionGuard(self.home / "claude-session.pid", self.sandbox.workspace, quota, wall) as guard:
            sandbox = get_sandbox(self.sandbox_kind, cfg.model_copy(update={"sockets": [model_sock, mcp_sock]}))
            options = ClaudeAgentOptions(
                cli_path=str(self._launcher(sandbox, model_sock, None if quota is None else quota - used)),
                cwd=str(sandbox.workspace),
                permission_mode="bypassPermissions", model=self.config.model, max_turns=self.config.max_turns,
                system_prompt={"type": "preset", "preset": "claude_code",
                               "append": render_prompt(sandbox, number, self.testbed, self.direction, self.brief)
                               + f"\n\n(session marker, for the host: {meter.marker})"},
                mcp_servers={"aar": {"type": "stdio", "command": sys.executable,
                                     "args": ["-m", "aar.agents.forward", "stdio", str(mcp_sock)]}},
                max_budget_usd=meter.limit, stderr=lambda line: None)
            names: dict[str, str] = {}
            try:
                async for message in query(prompt=KICKOFF, options=options):
                    self.record(message, names)
                    self.collect_submissions()
            except Exception as exc:  # the guard killed the CLI: say why instead of the SDK's broken pipe
                if guard.reason is None:
                    raise
                log.debug("session ended by the guard: %s", exc)
            finally:
                self.proxy_seconds += proxy.stats
                self.collect_submissions()
                if guard.reason:
                    self.trajectory.append("error", error=f"session stopped: {guard.reason}")

    def collect_submissions(self) -> None:
        """Record the submissions the host-side MCP server accepted since the last call (its own record,
        never the CLI's transcript, which a process in the sandbox could write to)."""
        try:
            with self.record_file.open("rb") as f:
                f.seek(self._record_offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._record_offset += len(complete)
        for line in complete.splitlines():
            entry = json.loads(line)
            if entry["submission_id"] not in self._recorded:
                self._recorded.add(entry["submission_id"])
                self.record_submission(entry["submission_id"], released_pgr=entry.get("released_pgr"),
                                       snapshot_id=entry.get("snapshot_id"))

    def record(self, message: Any, names: dict[str, str]) -> None:
        """One SDK message into the trajectory (and submissions, cost and tokens where it carries them)."""
        kind = type(message).__name__
        if kind == "AssistantMessage":
            for block in message.content:
                if type(block).__name__ == "TextBlock" and block.text:
                    self.trajectory.append("message", role="assistant", text=truncate(block.text, 4000))
                elif type(block).__name__ == "ToolUseBlock":
                    names[block.id] = block.name
                    self.trajectory.append("tool_call", name=block.name, arguments=jsonable(shorten(block.input)))
        elif kind == "UserMessage" and isinstance(message.content, list):
            for block in message.content:
                if type(block).__name__ != "ToolResultBlock":
                    continue
                name = names.get(block.tool_use_id, "?")
                text = _text(block.content)
                self.trajectory.append("tool_result", name=name, ok=not block.is_error, result=truncate(text, 4000))
        elif kind == "ResultMessage":
            usage = message.usage or {}
            tokens = sum(int(usage.get(k) or 0) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                                           "cache_creation_input_tokens"))
            self.trajectory.append("message", role="result", sdk_tokens=tokens,  # not a charge: see "proxy"
                                   sdk_cost_usd=float(message.total_cost_usd or 0.0), turns=message.num_turns,
                                   stop_reason=getattr(message, "stop_reason", None), is_error=message.is_error,
                                   duration_ms=message.duration_ms)
        elif kind == "SystemMessage" and message.subtype == "api_retry":
            self.trajectory.append("error", error=f"model API retry: {message.data.get('error_status')} "
                                                  f"{message.data.get('error')}", attempt=message.data.get("attempt"))


def sandbox_env(sandbox: Sandbox, extra: dict[str, str]) -> dict[str, str]:
    """The environment of an exec in ``sandbox`` (the allow-list, the config's variables, ``extra``)."""
    from aar.sandbox.policy import build_env

    return build_env(sandbox.config, dict(os.environ), extra, home=sandbox.workspace)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") if isinstance(c, dict) else str(c) for c in content)
    return "" if content is None else str(content)
