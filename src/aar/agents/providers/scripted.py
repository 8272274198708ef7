"""The ``scripted`` provider: plays a fixed list of turns (tests and demos; no model, no network).

A script is a JSON list of turns ``{"text", "tool_calls": [{"name", "arguments"}], "input_tokens",
"output_tokens"}``. Each turn may reference the previous tool results with ``{{last_result}}`` in a
string argument (e.g. a submission id to cite). When the script ends, the provider says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aar.agents.providers.base import ChatProvider, ToolCall, ToolSpec, Turn


class ScriptedProvider(ChatProvider):
    name = "scripted"

    def __init__(self, model: str = "scripted", script: list[dict[str, Any]] | Path | None = None) -> None:
        super().__init__(model)
        turns = json.loads(script.read_text()) if isinstance(script, Path) else script
        self.turns: list[dict[str, Any]] = list(turns or [])
        self.calls = 0
        self.seen: list[dict[str, Any]] = []

    def complete(self, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                 max_tokens: int = 4096) -> Turn:
        self.seen.append({"system": system, "messages": messages, "tools": [t.name for t in tools]})
        if self.calls >= len(self.turns):
            return Turn(text="(script finished)", exhausted=True)
        step = self.turns[self.calls]
        self.calls += 1
        last = _last_result(messages)
        calls = [ToolCall(id=f"call_{self.calls}_{k}", name=c["name"], arguments=_fill(c.get("arguments", {}), last))
                 for k, c in enumerate(step.get("tool_calls", []))]
        return Turn(text=step.get("text", ""), tool_calls=calls, input_tokens=int(step.get("input_tokens", 100)),
                    output_tokens=int(step.get("output_tokens", 20)),
                    stop_reason="tool_use" if calls else "end_turn")


def _last_result(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "tool" and m.get("results"):
            return str(m["results"][-1]["content"])
    return ""


def _fill(value: Any, last: str) -> Any:
    """Replace ``{{last_result}}`` / ``{{last_result.KEY}}`` in strings with the previous tool result."""
    if isinstance(value, str) and "{{last_result" in value:
        if "{{last_result." in value:
            key = value.split("{{last_result.", 1)[1].split("}}", 1)[0]
            try:
                return value.replace(f"{{{{last_result.{key}}}}}", str(json.loads(last)[key]))
            except (ValueError, KeyError, TypeError):
                return value
        return value.replace("{{last_result}}", last)
    if isinstance(value, dict):
        return {k: _fill(v, last) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, last) for v in value]
    return value
