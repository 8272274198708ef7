"""The ``llm`` researcher: an own tool-use loop over a :class:`~aar.agents.providers.ChatProvider`.

Each session starts with a fresh context built from the shared Jinja prompt (problem, direction,
notebook, findings index) and loops: model turn → tool calls → results, until the model stops
calling tools, the session's turn cap, the context limit (the session ends and the next one starts
from the notebook) or a budget ends it. Tools: ``shell`` and ``edit_file`` run inside the worker's
sandbox; the research tools go through the worker's MCP server. The agent process holds the API
key; tools never see it. Every model turn is charged (tokens, and dollars from the price table) in
the trajectory, so token and dollar budgets stop the worker cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from aar.agents.base import Budget, Researcher, Trajectory, jsonable
from aar.agents.providers import DEFAULT_PRICES, ChatProvider, Price, ProviderError, ToolSpec, price_for
from aar.agents.tools import (
    EDIT_SPEC,
    SHELL_SPEC,
    McpTools,
    ToolCallError,
    edit_file,
    run_shell,
    shorten,
    truncate,
)
from aar.sandbox import Sandbox, SandboxError

PROMPT = Path(__file__).parent / "prompts" / "researcher.md.j2"
KICKOFF = "Begin. Read your workspace, decide what to do, and use your tools."


class LlmConfig(BaseModel):
    """Provider, model and limits of an ``llm`` researcher."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["anthropic", "openai", "scripted"] = "anthropic"
    model: str = "claude-sonnet-4-5"
    base_url: str | None = Field(default=None, description="API base URL (a proxy, vLLM, Ollama, a test server).")
    api_key_env: str | None = Field(default=None, description="Variable holding the key (default per provider).")
    max_turns: int = Field(default=40, ge=1, description="Model turns per session.")
    max_context_tokens: int = Field(default=150_000, ge=1000, description="A session ends past this context.")
    max_output_tokens: int = Field(default=4096, ge=16)
    shell_timeout_s: float = Field(default=600.0, gt=0)
    script: Path | None = Field(default=None, description="scripted provider: JSON list of turns.")
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))


def make_provider(cfg: LlmConfig, environ: dict[str, str]) -> ChatProvider:
    """The configured provider; the key comes from the environment of this (host-side) process."""
    if cfg.provider == "scripted":
        from aar.agents.providers.scripted import ScriptedProvider

        return ScriptedProvider(cfg.model, cfg.script)
    env = cfg.api_key_env or {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}[cfg.provider]
    key = environ.get(env, "")
    if cfg.provider == "anthropic":
        if not key:
            raise ProviderError(f"no API key: set {env}")
        from aar.agents.providers.anthropic import AnthropicProvider

        return AnthropicProvider(cfg.model, key, cfg.base_url)
    from aar.agents.providers.openai import OpenAIProvider

    return OpenAIProvider(cfg.model, key, cfg.base_url)


def render_prompt(sandbox: Sandbox, number: int, testbed: str, direction: str | None, brief: str) -> str:
    """The shared researcher prompt (``prompts/researcher.md.j2``) for session ``number``."""
    from jinja2 import Environment, StrictUndefined

    try:
        notebook = sandbox.read_file("NOTEBOOK.md").decode(errors="replace")
    except SandboxError:
        notebook = "(empty)"
    findings = [f"findings/{p.name}" for p in sorted((sandbox.workspace / "findings").glob("f*.md"))[-50:]]
    template = Environment(undefined=StrictUndefined, autoescape=False).from_string(PROMPT.read_text())
    return template.render(session=number, testbed=testbed, direction=direction, brief=brief,
                           notebook=truncate(notebook, 8000), findings=findings)


class LlmResearcher(Researcher):
    """See the module docstring."""

    kind = "llm"

    def __init__(self, *, trajectory_path: Path, budget: Budget, sandbox: Sandbox, testbed: str,
                 tools_factory: Callable[[Trajectory], McpTools], provider: ChatProvider, config: LlmConfig,
                 direction: str | None = None, brief: str = "", worker_id: str = "") -> None:
        super().__init__(trajectory_path, budget, {"testbed": testbed, "direction": direction, "worker": worker_id,
                                                   "provider": provider.name, "model": provider.model})
        self.sandbox, self.testbed, self.tools_factory = sandbox, testbed, tools_factory
        self.provider, self.config, self.direction, self.brief = provider, config, direction, brief
        self.price = price_for(provider.model, config.prices)
        if self.price is None and budget.dollars is not None:
            raise ValueError(f"no price for model {provider.model!r}: add it to the config's prices to budget dollars")
        self.finished = False

    def session(self, number: int) -> bool:
        anyio.run(self._session, number)
        return not self.finished

    async def _session(self, number: int) -> None:
        async with self.tools_factory(self.trajectory) as mcp:
            tools = [ToolSpec(**SHELL_SPEC), ToolSpec(**EDIT_SPEC),  # type: ignore[arg-type]
                     *(ToolSpec(s["name"], s["description"], s["input_schema"]) for s in mcp.specs)]
            system = render_prompt(self.sandbox, number, self.testbed, self.direction, self.brief)
            messages: list[dict[str, Any]] = [{"role": "user", "content": KICKOFF}]
            for _ in range(self.config.max_turns):
                if self.budget_left():
                    return
                turn = await anyio.to_thread.run_sync(
                    lambda: self.provider.complete(system, messages, tools, self.config.max_output_tokens))
                cost = self.price.cost(turn) if self.price else 0.0
                self.charge(tokens=turn.input_tokens + turn.output_tokens, dollars=cost, role="assistant",
                            text=truncate(turn.text, 4000), stop_reason=turn.stop_reason,
                            input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                            tool_calls=[{"id": c.id, "name": c.name} for c in turn.tool_calls])
                if turn.exhausted:
                    self.finished = True
                    return
                if not turn.tool_calls:
                    return  # the model ended its turn: the session is over
                messages.append({"role": "assistant", "text": turn.text, "tool_calls": turn.tool_calls})
                results = [await self.call_tool(mcp, c.name, c.arguments, c.id) for c in turn.tool_calls]
                messages.append({"role": "tool", "results": results})
                if turn.input_tokens > self.config.max_context_tokens:
                    self.trajectory.append("decision", reason="context limit: the next session starts fresh",
                                           input_tokens=turn.input_tokens)
                    return

    async def call_tool(self, mcp: McpTools, name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
        """Run one tool call; failures become error results the model reads (the loop goes on)."""
        try:
            if name in mcp.names:
                data = await mcp.call(name, **args)
                if name == "submit_predictions" and isinstance(data.get("id"), str):
                    self.record_submission(data["id"], released_pgr=(data.get("released") or {}).get("pgr"),
                                           snapshot_id=data.get("snapshot_id"))
                return {"id": call_id, "content": truncate(json.dumps(data, default=str)), "is_error": False}
            self.trajectory.append("tool_call", name=name, arguments=jsonable(shorten(args)))
            if name == "shell":
                out, is_error = await anyio.to_thread.run_sync(
                    lambda: run_shell(self.sandbox, str(args.get("command", "")),
                                      float(args.get("timeout") or self.config.shell_timeout_s)))
            elif name == "edit_file":
                out, is_error = edit_file(self.sandbox, **args), False
            else:
                raise ValueError(f"unknown tool {name!r}")
        except (ToolCallError, ValueError, TypeError, SandboxError) as exc:
            if name not in mcp.names:
                self.trajectory.append("tool_result", name=name, ok=False, error=str(exc)[:2000])
            return {"id": call_id, "content": str(exc)[:4000], "is_error": True}
        self.trajectory.append("tool_result", name=name, ok=not is_error, result=truncate(out, 4000))
        return {"id": call_id, "content": out, "is_error": is_error}
