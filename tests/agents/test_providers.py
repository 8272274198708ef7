"""The anthropic and openai providers through their real SDK clients against loopback servers speaking each
wire format: tool calls, usage, prompt caching marks, the key header, and retries on 429 / 529 / 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from aar.agents.providers import ProviderError, ToolCall, ToolSpec
from aar.servicekit import serve_in_thread

pytest.importorskip("anthropic", reason="the provider tests need the agents extra")
pytest.importorskip("openai", reason="the provider tests need the agents extra")

TOOLS = [ToolSpec("shell", "Run a command.", {"type": "object", "properties": {"command": {"type": "string"}}})]
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Begin."},
    {"role": "assistant", "text": "Looking.", "tool_calls": [ToolCall("t1", "shell", {"command": "ls"})]},
    {"role": "tool", "results": [{"id": "t1", "content": "README.md", "is_error": False}]},
]


def fake_api(failures: list[tuple[int, dict]], success: dict, seen: list[dict], path: str) -> FastAPI:
    """Answers ``path``: the queued failures first (status, body), then ``success``; records every request."""
    app = FastAPI()

    @app.post(path)
    async def handle(request: Request) -> JSONResponse:
        seen.append({"headers": dict(request.headers), "body": await request.json()})
        if failures:
            status, body = failures.pop(0)
            return JSONResponse(body, status_code=status, headers={"retry-after-ms": "10", "retry-after": "0"})
        return JSONResponse(success)

    return app


def test_anthropic_provider_tool_use_caching_and_retries() -> None:
    from aar.agents.providers.anthropic import AnthropicProvider

    seen: list[dict] = []
    success = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": "tool_use",
               "content": [{"type": "text", "text": "I will look."},
                           {"type": "tool_use", "id": "toolu_9", "name": "shell", "input": {"command": "pwd"}}],
               "usage": {"input_tokens": 50, "output_tokens": 12, "cache_read_input_tokens": 400,
                         "cache_creation_input_tokens": 0}}
    failures = [(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
                (529, {"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}})]
    with serve_in_thread(fake_api(failures, success, seen, "/v1/messages")) as url:
        turn = AnthropicProvider("claude-test", "sk-test-key", base_url=url).complete("system prompt", HISTORY, TOOLS)
    assert turn.text == "I will look." and turn.stop_reason == "tool_use"
    assert turn.tool_calls == [ToolCall("toolu_9", "shell", {"command": "pwd"})]
    assert turn.input_tokens == 450 and turn.output_tokens == 12  # cached input counts
    assert len(seen) == 3  # 429, 529, then success: the SDK retried twice
    req = seen[-1]
    sent = req["headers"].get("x-api-key") or req["headers"].get("authorization", "").removeprefix("Bearer ")
    assert sent == "sk-test-key"  # (this SDK version sends the key as a bearer token)
    body = req["body"]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"][1] == {"type": "tool_use", "id": "t1", "name": "shell",
                                                 "input": {"command": "ls"}}
    assert body["messages"][2]["content"][0]["type"] == "tool_result"


def test_anthropic_provider_gives_up_with_a_clear_error() -> None:
    from aar.agents.providers.anthropic import AnthropicProvider

    seen: list[dict] = []
    overloaded = (529, {"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}})
    with serve_in_thread(fake_api([overloaded] * 10, {}, seen, "/v1/messages")) as url:
        with pytest.raises(ProviderError, match="Anthropic API"):
            AnthropicProvider("claude-test", "k", base_url=url, max_retries=2).complete("s", HISTORY, TOOLS)
    assert len(seen) == 3


def test_openai_provider_tool_calls_and_retries() -> None:
    from aar.agents.providers.openai import OpenAIProvider

    seen: list[dict] = []
    success = {"id": "c1", "object": "chat.completion", "created": 0, "model": "qwen-test",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": None, "tool_calls": [{
                       "id": "call_7", "type": "function",
                       "function": {"name": "shell", "arguments": json.dumps({"command": "ls -la"})}}]}}],
               "usage": {"prompt_tokens": 70, "completion_tokens": 9, "total_tokens": 79}}
    with serve_in_thread(fake_api([(500, {"error": {"message": "boom"}})], success, seen,
                                  "/v1/chat/completions")) as url:
        turn = OpenAIProvider("qwen-test", "sk-local", base_url=f"{url}/v1").complete("sys", HISTORY, TOOLS)
    assert turn.tool_calls == [ToolCall("call_7", "shell", {"command": "ls -la"})]
    assert (turn.input_tokens, turn.output_tokens, turn.stop_reason) == (70, 9, "tool_use")
    assert len(seen) == 2 and seen[-1]["headers"]["authorization"] == "Bearer sk-local"
    msgs = seen[-1]["body"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2]["tool_calls"][0]["function"] == {"name": "shell", "arguments": json.dumps({"command": "ls"})}
    assert msgs[3] == {"role": "tool", "tool_call_id": "t1", "content": "README.md"}
    assert seen[-1]["body"]["tools"][0]["function"]["name"] == "shell"
