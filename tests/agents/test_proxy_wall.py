"""The model-API proxy is a wall and a meter: server tools, unknown body keys, headers and betas never go
upstream; a gzipped reply is charged its worst case; calls whose worst case exceeds the budget left are
refused; bodies are capped; every charge is handed on as it settles; long-context and 1-hour cache rates."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_anthropic import Script, fake_messages_api
from fastapi import FastAPI, Request
from fastapi.responses import Response

from aar.agents.providers.base import Price
from aar.agents.proxy import MAX_REQUEST_BYTES, Meter, ModelProxy, call_cost
from aar.servicekit import serve_in_thread

PRICE = Price(input=3.0, output=15.0)


def post(sock: Path, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://proxy", timeout=30) as client:
        return client.post("/v1/messages", content=content, headers=headers or {})


def turn(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.fixture()
def upstream():  # type: ignore[no-untyped-def]
    script = Script([])
    with serve_in_thread(fake_messages_api(script)) as url:
        yield script, url


def test_server_tools_unknown_keys_headers_and_betas_never_go_upstream(upstream, tmp_path: Path) -> None:
    script, url = upstream
    meter = Meter({"m": PRICE})
    sock = tmp_path / "m.sock"
    exits = [
        turn(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]),
        turn(tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}]),
        turn(tools=[{"type": "code_execution_20250522", "name": "code_execution"}]),
        turn(tools=[{"name": "Bash", "input_schema": {}, "url": "https://evil.example"}]),  # smuggled key
        turn(mcp_servers=[{"type": "url", "url": "https://evil.example/mcp", "name": "x"}]),
        turn(container="container_123"),
        turn(service_tier="priority"),
        turn(max_tokens=-1),
    ]
    with ModelProxy(sock, url, "sk-real", meter):
        for body in exits:
            r = post(sock, body)
            assert r.status_code in (400, 403), body
            assert "aar proxy" in r.json()["error"]["message"]
        ok = post(sock, turn(tools=[{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]),
                  headers={"anthropic-beta": "mcp-client-2025-04-04,prompt-caching-2024-07-31,files-api-2025-04-14",
                           "anthropic-version": "2023-06-01", "x-forwarded-host": "evil.example",
                           "cookie": "a=b", "authorization": "Bearer sk-agent", "x-stainless-retry-count": "0"})
        assert ok.status_code == 200
    assert len(script.requests) == 1  # only the client-tool turn left the host
    sent = script.requests[0]["headers"]
    assert sent["anthropic-beta"] == "prompt-caching-2024-07-31"  # the MCP-connector and files betas dropped
    assert sent["accept-encoding"] == "identity" and sent["x-api-key"] == "sk-real"
    assert not {"x-forwarded-host", "cookie", "authorization"} & set(sent)
    assert meter.betas_dropped == 2 and meter.refused == len(exits) and meter.calls == 1


def gzipping_upstream() -> FastAPI:
    """A Messages API that gzips its reply whatever the client asked (usage unreadable as sent)."""
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        await request.body()
        data = json.dumps({"type": "message", "content": [{"type": "text", "text": "x" * 500}],
                           "usage": {"input_tokens": 100, "output_tokens": 400}}).encode()
        return Response(gzip.compress(data), headers={"content-encoding": "gzip", "content-type": "application/json"})

    return app


def test_a_reply_whose_usage_cannot_be_read_is_charged_its_worst_case(tmp_path: Path) -> None:
    """Before: a gzipped reply read as $0. Now it is charged max_tokens and the input estimate."""
    charges: list[float] = []
    meter = Meter({"m": PRICE}, on_charge=lambda model, usage, dollars: charges.append(dollars))
    with serve_in_thread(gzipping_upstream()) as url, ModelProxy(tmp_path / "m.sock", url, "k", meter):
        r = post(tmp_path / "m.sock", turn(max_tokens=1000))
        assert r.status_code == 200
    assert meter.calls == 1 and meter.dollars >= 1000 * 15.0 / 1e6  # at least max_tokens of output
    assert charges == [pytest.approx(meter.dollars)]  # handed on as it settled


def test_calls_whose_worst_case_exceeds_the_budget_are_refused(upstream, tmp_path: Path) -> None:
    """Before: 8 parallel 200k-token calls on a $2 budget got one through and $3.00 was charged."""
    script, url = upstream
    meter = Meter({"m": PRICE}, limit=2.0)
    big = turn(max_tokens=200_000)  # worst case $3.00 of output alone
    with ModelProxy(tmp_path / "m.sock", url, "k", meter):
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(8) as pool:
            codes = [r.status_code for r in pool.map(lambda _: post(tmp_path / "m.sock", big), range(8))]
        assert codes == [400] * 8
        assert "lower max_tokens" in post(tmp_path / "m.sock", big).json()["error"]["message"]
        assert post(tmp_path / "m.sock", turn(max_tokens=64)).status_code == 200  # a call that fits is served
    assert len(script.requests) == 1 and meter.dollars < 2.0 and meter.reserved == 0


def test_request_bodies_are_capped_before_they_are_read(upstream, tmp_path: Path) -> None:
    script, url = upstream
    meter = Meter({"m": PRICE})
    huge = json.dumps(turn(messages=[{"role": "user", "content": "x" * (MAX_REQUEST_BYTES + 10)}])).encode()
    with ModelProxy(tmp_path / "m.sock", url, "k", meter):
        assert post(tmp_path / "m.sock", huge).status_code == 413

        def chunks():  # no content-length: the cap is counted as the body streams in
            for i in range(0, len(huge), 1 << 20):
                yield huge[i:i + (1 << 20)]

        transport = httpx.HTTPTransport(uds=str(tmp_path / "m.sock"))
        with httpx.Client(transport=transport, base_url="http://proxy", timeout=30) as client:
            assert client.post("/v1/messages", content=chunks()).status_code == 413
    assert script.requests == []


def test_long_context_one_hour_cache_and_server_tool_fees_are_priced() -> None:
    base = call_cost(PRICE, {"input_tokens": 1000, "output_tokens": 100})
    assert base == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    five_min = call_cost(PRICE, {"cache_creation_input_tokens": 1000, "ephemeral_5m_input_tokens": 1000})
    one_hour = call_cost(PRICE, {"cache_creation_input_tokens": 1000, "ephemeral_1h_input_tokens": 1000})
    assert five_min == pytest.approx(1.25 * 1000 * 3 / 1e6) and one_hour == pytest.approx(2 * 1000 * 3 / 1e6)
    long = call_cost(PRICE, {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000})
    assert long == pytest.approx(((150_000 + 0.1 * 60_000) * 6 + 1000 * 22.5) / 1e6)  # past 200k prompt tokens
    assert call_cost(PRICE, {"web_search_requests": 3}) == pytest.approx(0.03)


def test_calls_without_the_session_marker_are_refused_or_flagged(upstream, tmp_path: Path) -> None:
    """A script in the sandbox calling the forwarder (no marker in its system prompt) is a scripted call."""
    script, url = upstream
    seen: list[tuple[str, bool]] = []
    for allow in (False, True):
        meter = Meter({"m": PRICE}, marker="aar-session-abc123", allow_scripted=allow,
                      on_scripted=lambda model, allowed: seen.append((model, allowed)))
        with ModelProxy(tmp_path / "m.sock", url, "k", meter):
            own = post(tmp_path / "m.sock", turn(system=[{"type": "text", "text": "You are... aar-session-abc123"}]))
            scripted = post(tmp_path / "m.sock", turn(system="label these items"))
            bare = post(tmp_path / "m.sock", turn())
        assert own.status_code == 200
        assert [scripted.status_code, bare.status_code] == ([200, 200] if allow else [403, 403])
        assert meter.scripted == 2
    assert seen == [("m", False), ("m", False), ("m", True), ("m", True)]
    assert len(script.requests) == 1 + 3  # the CLI's own turn twice, the scripted ones only when allowed
