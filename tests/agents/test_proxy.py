"""The model-API proxy counts and caps spending, whoever calls it: pinned models, metered usage, a
dollar cap, a bound on calls in flight; the key is added on the host and never returned."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fake_anthropic import Script, fake_messages_api
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from aar.agents.providers.base import Price
from aar.agents.proxy import MAX_IN_FLIGHT, Meter, ModelProxy, read_usage
from aar.servicekit import serve_in_thread

PRICE = Price(input=3.0, output=15.0)
TURN_COST = (1000 * 3.0 + 50 * 15.0) / 1e6  # fake_anthropic's default streamed turn: 1,000 in, 50 out


def body(model: str = "m", stream: bool = True) -> dict:
    return {"model": model, "max_tokens": 64, "stream": stream, "tools": [{"name": "Bash"}],
            "messages": [{"role": "user", "content": "hi"}]}


def post(sock: Path, payload: object, path: str = "/v1/messages") -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://proxy") as client:
        return client.post(path, content=content, headers={"x-api-key": "sk-from-the-sandbox"})


@pytest.fixture()
def upstream():  # type: ignore[no-untyped-def]
    script = Script([{"text": "a"}, {"text": "b"}, {"text": "c"}])
    with serve_in_thread(fake_messages_api(script)) as url:
        yield script, url


def test_other_models_and_bad_bodies_are_refused_before_leaving_the_host(upstream, tmp_path: Path) -> None:
    script, url = upstream
    meter = Meter({"m": PRICE})
    with ModelProxy(tmp_path / "m.sock", url, "sk-real", meter):
        refused = post(tmp_path / "m.sock", body("claude-opus-4-1"))
        assert refused.status_code == 403 and "not allowed" in refused.json()["error"]["message"]
        assert post(tmp_path / "m.sock", body("claude-opus-4-1"), "/v1/messages/count_tokens").status_code == 403
        assert post(tmp_path / "m.sock", b"not json").status_code == 400
        assert post(tmp_path / "m.sock", [1, 2]).status_code == 400
    assert script.requests == []  # nothing reached the upstream
    assert meter.refused == 3 and meter.calls == 0 and meter.dollars == 0  # the model, two bad bodies


def test_streamed_and_plain_calls_are_metered_and_the_cap_stops_new_calls(upstream, tmp_path: Path) -> None:
    script, url = upstream
    meter = Meter({"m": PRICE}, limit=1.5 * TURN_COST)
    with ModelProxy(tmp_path / "m.sock", url, "sk-real", meter):
        first = post(tmp_path / "m.sock", body())
        assert first.status_code == 200 and "message_stop" in first.text
        assert meter.dollars == pytest.approx(TURN_COST) and meter.tokens == 1050
        plain = post(tmp_path / "m.sock", {**body(stream=False), "tools": []})  # a side request: 50 in, 2 out
        assert plain.status_code == 200
        assert meter.dollars == pytest.approx(TURN_COST + (50 * 3.0 + 2 * 15.0) / 1e6)
        over = post(tmp_path / "m.sock", body())  # still under the cap before this call: admitted
        assert over.status_code == 200
        stopped = post(tmp_path / "m.sock", body())
        assert stopped.status_code == 400 and "budget is spent" in stopped.json()["error"]["message"]
    assert len(script.requests) == 3  # the refused call never left the host
    assert {r["headers"]["x-api-key"] for r in script.requests} == {"sk-real"}
    assert meter.calls == 3 and meter.refused == 1 and meter.in_flight == 0


def test_calls_in_flight_are_bounded_and_unpriced_models_cannot_carry_a_budget() -> None:
    meter = Meter({"m": PRICE})
    assert all(meter.admit("m") is None for _ in range(MAX_IN_FLIGHT))
    refusal = meter.admit("m")
    assert refusal is not None and refusal.status_code == 429
    meter.settle("m", {"input_tokens": 10})
    assert meter.admit("m") is None
    with pytest.raises(ValueError, match="needs a price"):
        Meter({"unpriced-model": None}, limit=1.0)
    Meter({"unpriced-model": None})  # counting tokens without a cap is fine


def test_usage_is_read_from_streams_and_json_bodies() -> None:
    stream = (
        b'event: message_start\ndata: {"type": "message_start", "message": {"usage": {"input_tokens": 7, '
        b'"cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 1}}}\n\n'
        b'event: message_delta\ndata: {"type": "message_delta", "usage": {"output_tokens": 30}}\n\n'
        b"event: ping\ndata: not json\n\n"
    )
    assert read_usage(stream) == {"input_tokens": 7, "cache_read_input_tokens": 100,
                                  "cache_creation_input_tokens": 20, "output_tokens": 30}
    assert read_usage(b'{"usage": {"input_tokens": 5, "output_tokens": 2}}') == {"input_tokens": 5, "output_tokens": 2}
    assert read_usage(b'{"type": "error"}') == {} and read_usage(b"") == {}
    meter = Meter({"m": PRICE})
    meter.in_flight = 1
    meter.settle("m", read_usage(stream))
    assert meter.dollars == pytest.approx(((7 + 1.25 * 20 + 0.1 * 100) * 3.0 + 30 * 15.0) / 1e6)


def stalling_upstream(received: list[bytes]) -> FastAPI:
    """A Messages API whose stream sends its text at once and its final usage event (30,000 output
    tokens) only after a pause; it records the raw request bodies."""
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> StreamingResponse:
        received.append(await request.body())

        async def stream() -> AsyncIterator[str]:
            yield 'data: {"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}}\n\n'
            for _ in range(20):
                yield 'data: {"type": "content_block_delta", "delta": {"text": "' + "x" * 200 + '"}}\n\n'
            await asyncio.sleep(3)
            yield 'data: {"type": "message_delta", "usage": {"output_tokens": 30000}}\n\n'

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


def test_the_upstream_gets_the_body_that_was_checked_and_a_hang_up_is_charged_in_full(tmp_path: Path) -> None:
    """Two attacks: a second "model" key that another JSON parser might prefer, and reading the text
    then hanging up before the final usage event (which carried the real output count)."""
    received: list[bytes] = []
    meter = Meter({"m": PRICE}, limit=10.0)
    raw = b'{"model": "claude-opus-4-1", "model": "m", "max_tokens": 32000, "stream": true, "messages": []}'
    with serve_in_thread(stalling_upstream(received)) as url, ModelProxy(tmp_path / "m.sock", url, "k", meter):
        transport = httpx.HTTPTransport(uds=str(tmp_path / "m.sock"))
        with httpx.Client(transport=transport, base_url="http://proxy") as client:
            with client.stream("POST", "/v1/messages", content=raw) as resp:
                got = 0
                for chunk in resp.iter_raw():
                    got += len(chunk)
                    if got > 3000:
                        break  # the text is in; leave before the usage event
        deadline = time.monotonic() + 20
        while meter.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert json.loads(received[0]) == {"model": "m", "max_tokens": 32000, "stream": True, "messages": []}
    assert received[0].count(b'"model"') == 1
    assert meter.calls == 1 and meter.in_flight == 0
    assert meter.dollars == pytest.approx((10 * 3.0 + 32000 * 15.0) / 1e6)  # max_tokens, the most it could cost
