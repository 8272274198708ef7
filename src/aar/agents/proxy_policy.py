"""What the model-API proxy lets through: the wall half of the proxy (:mod:`aar.agents.proxy` is the meter).

Every forwarded request is rebuilt from allow-lists, so the key the proxy injects buys model turns and
nothing else:

* body keys: the Messages API's own generation fields (``ALLOWED_BODY_KEYS``: what the pinned CLI
  sends, checked by the real-CLI test); ``mcp_servers`` (MCP
  connectors at URLs the agent chooses), ``container`` (code execution), ``service_tier`` and any key
  not listed are refused;
* tools: client tools only (a name and an input schema, executed by the CLI inside the sandbox);
  server tools (``web_search``, ``web_fetch``, ``code_execution``, any typed tool) are refused: each is
  a way out to the network or a sandbox the proxy cannot see, and costs fees of its own;
* headers: ``ALLOWED_HEADERS`` and the SDK's ``x-stainless-*`` telemetry; ``anthropic-beta`` keeps only
  the values in ``ALLOWED_BETAS`` (others are dropped and counted); credentials are never forwarded;
  upstream is asked for ``Accept-Encoding: identity`` so the usage in every reply can be read.

It does not judge the *content* of a turn: a script that sends CLI-shaped turns is a model call like
any other (see the README's "model-API proxy" section for the scripted-call check).
"""

from __future__ import annotations

from typing import Any

ALLOWED_BODY_KEYS = frozenset({
    "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream", "temperature",
    "top_k", "top_p", "tools", "tool_choice", "thinking", "context_management", "output_config",
})
ALLOWED_HEADERS = frozenset({"anthropic-version", "content-type", "accept", "user-agent", "x-app"})
ALLOWED_HEADER_PREFIXES = ("x-stainless-",)
ALLOWED_BETAS = frozenset({
    "claude-code-20250219", "interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14",
    "context-management-2025-06-27", "prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19",
    "output-128k-2025-02-19", "extended-cache-ttl-2025-04-11", "context-1m-2025-08-07", "effort-2025-11-24",
    "advanced-tool-use-2025-11-20", "mid-conversation-tool-changes-2026-07-01", "thinking-token-count-2026-05-13",
    "thinking-display-updates-2026-08-18",
})
TOOL_KEYS = frozenset({"name", "description", "input_schema", "cache_control", "type", "defer_loading"})


class Refused(Exception):
    """A request the proxy will not forward; ``status`` and ``kind`` shape the API-style error."""

    def __init__(self, message: str, status: int = 403, kind: str = "permission_error") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def check_body(payload: Any) -> dict[str, Any]:
    """The request body if every key and tool is allowed; raises :class:`Refused` naming what is not."""
    if not isinstance(payload, dict):
        raise Refused("the request body is not a JSON object", 400, "invalid_request_error")
    extra = sorted(set(payload) - ALLOWED_BODY_KEYS)
    if extra:
        raise Refused(f"body keys not allowed through the proxy: {extra[:5]}")
    max_tokens = payload.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)
                                   or max_tokens < 1):
        raise Refused("max_tokens must be a positive integer", 400, "invalid_request_error")
    tools = payload.get("tools", [])
    if not isinstance(tools, list):
        raise Refused("tools must be a list", 400, "invalid_request_error")
    for tool in tools:
        if not isinstance(tool, dict):
            raise Refused("each tool must be an object", 400, "invalid_request_error")
        kind = tool.get("type", "custom")
        if kind != "custom" or set(tool) - TOOL_KEYS:
            raise Refused(f"server tools are not allowed through the proxy (tool {str(tool.get('name'))[:64]!r}, "
                          f"type {str(kind)[:64]!r}): only client tools run, inside the sandbox")
    return payload


def forward_headers(headers: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The headers to send upstream (allow-listed, betas filtered, identity encoding) and the betas dropped."""
    out: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in headers.items():
        low = name.lower()
        if low == "anthropic-beta":
            betas = [b.strip() for b in value.split(",") if b.strip()]
            kept = [b for b in betas if b in ALLOWED_BETAS]
            dropped += [b[:64] for b in betas if b not in ALLOWED_BETAS]
            if kept:
                out[low] = ",".join(kept)
        elif low in ALLOWED_HEADERS or low.startswith(ALLOWED_HEADER_PREFIXES):
            out[low] = value
    out["accept-encoding"] = "identity"
    return out, dropped
