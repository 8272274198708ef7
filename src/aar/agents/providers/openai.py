"""The ``openai`` provider: chat completions with tools through the official ``openai`` SDK.

Works with any OpenAI-compatible server through ``base_url`` (vLLM, Ollama, llama.cpp, hosted APIs);
the SDK retries 429 and 5xx responses with exponential backoff.
"""

from __future__ import annotations

import json
from typing import Any

from aar.agents.providers.base import ChatProvider, ProviderError, ToolCall, ToolSpec, Turn, import_sdk


class OpenAIProvider(ChatProvider):
    name = "openai"

    def __init__(self, model: str, api_key: str, base_url: str | None = None, max_retries: int = 4,
                 timeout: float = 600.0) -> None:
        super().__init__(model)
        self._sdk = import_sdk("openai")
        self.client = self._sdk.OpenAI(api_key=api_key or "none", base_url=base_url, max_retries=max_retries,
                                         timeout=timeout)

    def complete(self, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                 max_tokens: int = 4096) -> Turn:
        wire_tools = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                        "parameters": t.input_schema}} for t in tools]
        try:
            resp = self.client.chat.completions.create(
                model=self.model, max_tokens=max_tokens, tools=wire_tools or self._sdk.NOT_GIVEN,  # type: ignore[arg-type]
                messages=[{"role": "system", "content": system}, *to_openai(messages)])  # type: ignore[list-item]
        except self._sdk.APIError as exc:
            raise ProviderError(f"OpenAI-compatible API: {exc}") from None
        choice = resp.choices[0]
        calls = []
        for c in choice.message.tool_calls or []:
            try:
                args = json.loads(c.function.arguments or "{}")  # type: ignore[union-attr]
            except ValueError:
                args = {"_unparsed": c.function.arguments}  # type: ignore[union-attr]
            calls.append(ToolCall(id=c.id, name=c.function.name, arguments=args))  # type: ignore[union-attr]
        usage = resp.usage
        return Turn(text=choice.message.content or "", tool_calls=calls,
                    input_tokens=usage.prompt_tokens if usage else 0,
                    output_tokens=usage.completion_tokens if usage else 0,
                    stop_reason="tool_use" if calls else (choice.finish_reason or "stop"))


def to_openai(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provider-neutral messages as chat-completions messages (one ``tool`` message per result)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "user":
            out.append({"role": "user", "content": m["content"]})
        elif m["role"] == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.get("text") or None}
            if m.get("tool_calls"):
                msg["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                    "name": c.name, "arguments": json.dumps(c.arguments)}} for c in m["tool_calls"]]
            out.append(msg)
        elif m["role"] == "tool":
            out += [{"role": "tool", "tool_call_id": r["id"],
                     "content": ("ERROR: " if r["is_error"] else "") + r["content"]} for r in m["results"]]
    return out
