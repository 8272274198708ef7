"""A scripted Anthropic Messages API on loopback: streaming SSE with text and tool-use turns, plus queued
errors (429, 529 overloaded). Every request is recorded (headers and body) for the test to inspect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


class Script:
    """Turns for the main agent loop (requests that offer tools; a turn may be a function of the request
    body); side requests get a short text; ``errors`` are statuses returned first (429, 529)."""

    def __init__(self, turns: list[dict[str, Any]], errors: list[int] | None = None) -> None:
        self.turns = list(turns)
        self.errors = list(errors or [])
        self.requests: list[dict[str, Any]] = []
        self.served = 0


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def _stream(turn: dict[str, Any], model: str, n: int) -> Iterator[str]:
    usage = {"input_tokens": int(turn.get("input_tokens", 1000)), "output_tokens": 1,
             "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    yield _sse("message_start", {"type": "message_start", "message": {
        "id": f"msg_{n}", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}})
    index = 0
    if turn.get("text"):
        yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "text_delta", "text": turn["text"]}})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    for k, call in enumerate(turn.get("tool_calls", [])):
        yield _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": f"toolu_{n}_{k}", "name": call["name"], "input": {}}})
        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
            "type": "input_json_delta", "partial_json": json.dumps(call["input"])}})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    stop = "tool_use" if turn.get("tool_calls") else "end_turn"
    yield _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": int(turn.get("output_tokens", 50))}})
    yield _sse("message_stop", {"type": "message_stop"})


def fake_messages_api(script: Script) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    def root() -> dict[str, str]:
        return {"ok": "fake anthropic"}

    @app.head("/")
    def head() -> dict[str, str]:
        return {}

    @app.post("/v1/messages")
    async def messages(request: Request) -> Any:
        body = await request.json()
        script.requests.append({"headers": dict(request.headers), "body": body, "path": str(request.url)})
        if script.errors:
            status = script.errors.pop(0)
            kind = "overloaded_error" if status == 529 else "rate_limit_error"
            return JSONResponse({"type": "error", "error": {"type": kind, "message": kind}}, status_code=status,
                                headers={"retry-after-ms": "50", "retry-after": "0"})
        tool_names = {t.get("name") for t in body.get("tools") or []}
        main = "Bash" in tool_names and script.turns
        turn = script.turns.pop(0) if main else {"text": "ok", "output_tokens": 2, "input_tokens": 50}
        turn = turn(body) if callable(turn) else turn  # a turn may depend on the conversation so far
        script.served += 1
        model = body.get("model", "claude-test")
        if not body.get("stream"):
            return JSONResponse({"id": f"msg_{script.served}", "type": "message", "role": "assistant", "model": model,
                                 "content": [{"type": "text", "text": turn.get("text", "ok")}],
                                 "stop_reason": "end_turn", "stop_sequence": None,
                                 "usage": {"input_tokens": 50, "output_tokens": 2}})
        return StreamingResponse(_stream(turn, model, script.served), media_type="text/event-stream")

    @app.post("/v1/messages/count_tokens")
    async def count(request: Request) -> dict[str, int]:
        return {"input_tokens": 100}

    return app
