"""The ``anthropic`` provider: the Messages API through the official ``anthropic`` SDK.

Tool use, prompt caching (the system prompt and the tool list are marked ``cache_control``, so every
turn of a session re-reads them from the cache), and the SDK's retries with exponential backoff on
429, 5xx and ``overloaded`` (529) responses. ``base_url`` points it at a proxy or a test server.
"""

from __future__ import annotations

from typing import Any

from aar.agents.providers.base import ChatProvider, ProviderError, ToolCall, ToolSpec, Turn, import_sdk


class AnthropicProvider(ChatProvider):
    name = "anthropic"

    def __init__(self, model: str, api_key: str, base_url: str | None = None, max_retries: int = 4,
                 timeout: float = 600.0) -> None:
        super().__init__(model)
        self._sdk = import_sdk("anthropic")
        self.client = self._sdk.Anthropic(api_key=api_key, base_url=base_url, max_retries=max_retries,
                                              timeout=timeout)

    def complete(self, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                 max_tokens: int = 4096) -> Turn:
        wire_tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools]
        if wire_tools:
            wire_tools[-1]["cache_control"] = {"type": "ephemeral"}
        try:
            resp = self.client.messages.create(
                model=self.model, max_tokens=max_tokens, tools=wire_tools,  # type: ignore[arg-type]
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                messages=to_anthropic(messages))  # type: ignore[arg-type]
        except self._sdk.APIError as exc:
            raise ProviderError(f"Anthropic API: {exc}") from None
        text = "".join(b.text for b in resp.content if b.type == "text")
        calls = [ToolCall(id=b.id, name=b.name, arguments=dict(b.input)) for b in resp.content if b.type == "tool_use"]
        u = resp.usage
        read = (getattr(u, "cache_read_input_tokens", 0) or 0) + (getattr(u, "cache_creation_input_tokens", 0) or 0)
        return Turn(text=text, tool_calls=calls, input_tokens=u.input_tokens + read, output_tokens=u.output_tokens,
                    stop_reason=resp.stop_reason or "end_turn")


def to_anthropic(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provider-neutral messages as Messages-API messages (tool results go in a user turn)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "user":
            out.append({"role": "user", "content": m["content"]})
        elif m["role"] == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["text"]}] if m.get("text") else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                       for c in m.get("tool_calls", [])]
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "(no output)"}]})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": r["id"], "content": r["content"], "is_error": r["is_error"]}
                for r in m["results"]]})
    return out
