"""The model-API proxy: host side, on a unix socket bound into the sandbox, it injects the API key.

The Claude Code CLI inside a sandbox holds only a placeholder key; its requests reach this proxy
(through the in-sandbox TCP forwarder), which drops whatever credentials they carry, adds the real
key, and forwards **only** the model routes (``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
and ``GET /`` for the CLI's reachability check) to the configured upstream, streaming the response
back. Anything else is refused with 403, so a sandboxed agent cannot use the key for other APIs.
What a forwarded request may carry (body keys, client tools only, headers, betas) is the allow-list
of :mod:`aar.agents.proxy_policy`; the body forwarded is the one checked, re-encoded. Request bodies
are capped before they are read, and the server takes at most ``MAX_CONNECTIONS`` at once.

The proxy is also where spending is counted, because an agent can call it directly (``curl`` from
its shell reaches the same forwarder as the CLI). A :class:`Meter` pins the models a worker may use
(others get 403 before anything leaves the host), admits a call only when its **worst case** (its
input, estimated from the body, at the dearest input rate, plus ``max_tokens`` at the output price)
fits in what is left of the cap after the calls already in flight, reads the token usage of every
response (the ``message_start`` / ``message_delta`` events of a stream, or a JSON body's ``usage``),
prices it (prompt-cache writes at 1.25x or 2x for the 1-hour cache, reads at 0.1x, long-context
rates past 200k prompt tokens), and hands each charge to ``on_charge`` as it settles, so a worker
killed mid-session has its spend on disk. A reply whose usage cannot be read, or a stream cut off
before its final usage event, is charged its worst case. At most ``MAX_IN_FLIGHT`` calls run at once.

Scripted calls: the session's system prompt carries a per-session marker the host put there; a call
without it did not come from the CLI's own turns (a script in the sandbox calling the forwarder). Such
calls are refused by default and reported either way (a ``detector`` step in the trajectory, shown by
``aar team status`` and ``aar team finalize``); a team may allow them (``claude.allow_scripted_calls``),
and then they are metered and flagged the same way. This is a tripwire, not a wall: the marker is in
the CLI's command line and in the model's context, so an agent that looks for it can copy it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aar.agents.providers.base import Price
from aar.agents.proxy_policy import Refused, check_body, forward_headers

ALLOWED = {("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/"), ("HEAD", "/")}
MAX_IN_FLIGHT = 4
MAX_CONNECTIONS = 16
MAX_REQUEST_BYTES = 32 << 20  # a Messages request body (a long conversation with images stays below)
MAX_METERED_BYTES = 64 << 20  # a response is buffered up to this size to read its usage
CACHE_WRITE, CACHE_WRITE_1H, CACHE_READ = 1.25, 2.0, 0.1  # prompt-cache tokens, x the input price
LONG_CONTEXT_TOKENS, LONG_INPUT, LONG_OUTPUT = 200_000, 2.0, 1.5  # long-context rates past 200k prompt tokens
SERVER_TOOL_USD = 0.01  # per server-tool request (web search), should upstream ever report one
BYTES_PER_TOKEN = 3  # estimate of a request's input tokens from its size, for the worst case


def call_cost(price: Price, usage: dict[str, int]) -> float:
    """Dollars of one call with ``usage`` (Anthropic's pricing rules; see the module docstring)."""
    inp, out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    write, read = usage.get("cache_creation_input_tokens", 0), usage.get("cache_read_input_tokens", 0)
    write_1h = min(write, usage.get("ephemeral_1h_input_tokens", 0))
    long = inp + write + read > LONG_CONTEXT_TOKENS
    prompt = inp + CACHE_WRITE * (write - write_1h) + CACHE_WRITE_1H * write_1h + CACHE_READ * read
    return ((prompt * price.input * (LONG_INPUT if long else 1.0) + out * price.output * (LONG_OUTPUT if long else 1.0))
            / 1e6 + SERVER_TOOL_USD * (usage.get("web_search_requests", 0) + usage.get("web_fetch_requests", 0)))


def usage_tokens(usage: dict[str, int]) -> int:
    """All tokens of a call's usage: input, output, and prompt-cache writes and reads."""
    return sum(usage.get(k, 0) for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                         "cache_read_input_tokens"))


def worst_usage(body_bytes: int, max_tokens: int) -> dict[str, int]:
    """The dearest usage a request of ``body_bytes`` and ``max_tokens`` can plausibly have."""
    est = math.ceil(body_bytes / BYTES_PER_TOKEN)
    return {"cache_creation_input_tokens": est, "ephemeral_1h_input_tokens": est, "output_tokens": max_tokens}


@dataclass
class Meter:
    """What one session spends through the proxy; see the module docstring.

    ``prices`` maps each allowed model to its price (a model without a price cannot be allowed when a
    cap is set); ``limit`` is the session's dollar cap (None: count, never refuse for money);
    ``on_charge(model, usage, dollars)`` is called for every settled call (to persist it at once).
    With a ``marker``, a Messages call whose system prompt lacks it is a *scripted* call (not the CLI's
    own turn): refused unless ``allow_scripted``, and reported to ``on_scripted(model, allowed)`` either way.
    """

    prices: dict[str, Price | None]
    limit: float | None = None
    on_charge: Callable[[str, dict[str, int], float], None] | None = None
    marker: str | None = None
    allow_scripted: bool = False
    on_scripted: Callable[[str, bool], None] | None = None
    scripted: int = 0
    dollars: float = 0.0
    tokens: int = 0
    calls: int = 0
    refused: int = 0
    in_flight: int = 0
    reserved: float = 0.0
    betas_dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unpriced = sorted(m for m, p in self.prices.items() if p is None)
        if self.limit is not None and unpriced:
            raise ValueError(f"a dollar budget needs a price for every allowed model; none for {unpriced}")

    def allows(self, model: Any) -> bool:
        return isinstance(model, str) and model in self.prices

    def is_scripted(self, payload: dict[str, Any]) -> bool:
        """True when a marker is set and ``payload``'s system prompt does not carry it (counted, reported)."""
        if self.marker is None or self.marker in json.dumps(payload.get("system", "")):
            return False
        with self.lock:
            self.scripted += 1
        if self.on_scripted is not None:
            self.on_scripted(str(payload.get("model")), self.allow_scripted)
        return True

    def cost_of(self, model: str, usage: dict[str, int]) -> float:
        """Dollars of ``usage`` at ``model``'s price (0 for an unpriced model)."""
        price = self.prices.get(model)
        return 0.0 if price is None else call_cost(price, usage)

    def admit(self, model: Any, worst: dict[str, int] | None = None) -> JSONResponse | None:
        """Reserve a slot (and the worst case ``worst``) for a call to ``model``, or the refusal to send."""
        reserve = self.cost_of(model, worst or {}) if self.allows(model) else 0.0
        with self.lock:
            if not self.allows(model):
                refusal = _refusal(403, "permission_error", f"model {model!r} is not allowed for this worker "
                                                            f"(allowed: {sorted(self.prices)})")
            elif self.limit is not None and self.dollars >= self.limit:
                refusal = _refusal(400, "invalid_request_error", f"the worker's dollar budget is spent "
                                                                 f"(${self.dollars:.4f} of ${self.limit:.4f})")
            elif self.limit is not None and self.dollars + self.reserved + reserve > self.limit:
                refusal = _refusal(400, "invalid_request_error", f"this call could cost up to ${reserve:.4f} "
                                   f"(its max_tokens and input); ${self.limit - self.dollars - self.reserved:.4f} "
                                   f"of the worker's budget is left: lower max_tokens")
            elif self.in_flight >= MAX_IN_FLIGHT:
                refusal = _refusal(429, "rate_limit_error", f"at most {MAX_IN_FLIGHT} model calls at once")
            else:
                self.in_flight += 1
                self.reserved += reserve
                return None
            self.refused += 1
            return refusal

    def settle(self, model: str, usage: dict[str, int], worst: dict[str, int] | None = None) -> None:
        """Release the slot and its reservation, and charge ``usage`` at ``model``'s price."""
        cost = self.cost_of(model, usage)
        reserve = self.cost_of(model, worst or {})
        tokens = usage_tokens(usage)
        with self.lock:
            self.in_flight -= 1
            self.reserved = max(0.0, self.reserved - reserve)
            self.calls += 1
            self.tokens += tokens
            self.dollars += cost
        if self.on_charge is not None:
            self.on_charge(model, usage, cost)


def read_usage(body: bytes) -> dict[str, int]:
    """Token usage of a Messages response: a JSON body's ``usage``, or a stream's start and delta events.

    Nested counts (``cache_creation``'s 5-minute / 1-hour split, ``server_tool_use``) are flattened.
    """
    usage: dict[str, int] = {}

    def take(found: Any) -> None:
        if isinstance(found, dict):
            for k, v in found.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    usage[k] = v
                elif isinstance(v, dict):
                    take(v)

    text = body.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        try:
            take(json.loads(text).get("usage"))
        except (ValueError, AttributeError):
            pass
        return usage
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
            take(event["message"].get("usage"))
        elif event.get("type") == "message_delta":
            take(event.get("usage"))  # cumulative: the last delta holds the final output tokens
    return usage


def _refusal(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": f"aar proxy: {message}"}},
                        status_code=status)


async def _capped_body(request: Request) -> bytes:
    """The request body, refused (``Refused``, 413) past ``MAX_REQUEST_BYTES`` before more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise Refused(f"request body over {MAX_REQUEST_BYTES} bytes", 413, "request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise Refused(f"request body over {MAX_REQUEST_BYTES} bytes", 413, "request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def proxy_app(upstream: str, api_key: str, stats: list[float], meter: Meter) -> FastAPI:
    """The proxy's ASGI app: forwards allowed routes to ``upstream`` with ``api_key``, metered by ``meter``."""
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream.rstrip("/"), timeout=httpx.Timeout(600.0, connect=30.0))

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    async def forward(request: Request, path: str) -> Any:
        route = (request.method, "/" + path)
        if route not in ALLOWED:
            return JSONResponse({"error": f"{request.method} /{path} is not a model route"}, status_code=403)
        model, worst, body = None, {}, b""
        metered = request.method == "POST" and path == "v1/messages"
        try:
            if request.method == "POST":
                raw = await _capped_body(request)
                try:
                    payload = check_body(json.loads(raw))
                except ValueError:
                    raise Refused("the request body is not JSON", 400, "invalid_request_error") from None
                model = payload.get("model")
                # forward exactly what was checked: a body with two "model" keys would otherwise let the
                # upstream's JSON parser pick another model than the one priced here
                body = json.dumps(payload).encode()
                if not metered and not meter.allows(model):  # count_tokens is free, but pinned too
                    raise Refused(f"model {model!r} is not allowed for this worker")
                if metered and meter.is_scripted(payload) and not meter.allow_scripted:
                    raise Refused("model calls must come from this worker's Claude Code session; scripted "
                                  "calls are off for this team (this call was recorded)")
                worst = worst_usage(len(body), int(payload.get("max_tokens") or 0))
        except Refused as exc:
            if metered:
                with meter.lock:
                    meter.refused += 1
            return _refusal(exc.status, exc.kind, str(exc))
        if metered:
            refusal = meter.admit(model, worst)
            if refusal is not None:
                return refusal
        headers, dropped = forward_headers(dict(request.headers))
        if dropped:
            with meter.lock:
                meter.betas_dropped += len(dropped)
        headers["x-api-key"] = api_key
        start = time.perf_counter()
        try:
            upstream_req = client.build_request(request.method, "/" + path, params=request.query_params,
                                                headers=headers, content=body)
            resp = await client.send(upstream_req, stream=True)
        except BaseException:
            if metered:
                meter.settle(str(model), {}, worst)
            raise
        stats.append(time.perf_counter() - start)  # time to upstream headers (the proxy's own share is tiny)
        out_headers = {k: v for k, v in resp.headers.items()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
        if request.method == "HEAD":
            await resp.aclose()
            return Response(status_code=resp.status_code, headers=out_headers)
        if metered:
            chunks = _metered(resp, meter, str(model), worst)
        else:
            chunks = _passthrough(resp)
        return StreamingResponse(chunks, status_code=resp.status_code, headers=out_headers)

    return app


async def _passthrough(resp: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    finally:
        await resp.aclose()


async def _metered(resp: httpx.Response, meter: Meter, model: str, worst: dict[str, int]) -> AsyncIterator[bytes]:
    """Stream the response through while keeping a copy; charge its usage when it ends.

    A successful reply is charged its worst case when its usage cannot be read (an encoded or
    malformed body) and its ``max_tokens`` of output when the reader hangs up before the final usage
    event (a client could read the text and leave before it). An error reply is not billed upstream.
    """
    kept = bytearray()
    finished = False
    try:
        async for chunk in resp.aiter_raw():
            if len(kept) < MAX_METERED_BYTES:
                kept += chunk
            yield chunk
        finished = True
    finally:
        usage: dict[str, int] = {}
        if resp.status_code == 200:  # an error reply is not billed upstream
            usage = read_usage(bytes(kept))
            encoded = resp.headers.get("content-encoding", "identity") != "identity"
            if encoded or not {"input_tokens", "output_tokens"} & usage.keys():
                usage = dict(worst)
            elif not finished:
                usage["output_tokens"] = max(usage.get("output_tokens", 0), worst.get("output_tokens", 0))
        meter.settle(model, usage, worst)
        await resp.aclose()


class ModelProxy:
    """Serve :func:`proxy_app` on the unix socket ``path`` in a background thread (context manager)."""

    def __init__(self, path: Path, upstream: str, api_key: str, meter: Meter,
                 owner: tuple[int, int] | None = None) -> None:
        import uvicorn

        self.path, self.owner, self.meter = path, owner, meter
        self.stats: list[float] = []
        config = uvicorn.Config(proxy_app(upstream, api_key, self.stats, meter), uds=str(path),
                                log_level="warning", lifespan="off", limit_concurrency=MAX_CONNECTIONS,
                                h11_max_incomplete_event_size=64 << 10)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="model-proxy")

    def __enter__(self) -> ModelProxy:
        from aar.agents.forward import restrict_socket

        self.path.unlink(missing_ok=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not (self.server.started and self.path.exists()):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the model-API proxy did not start on {self.path}")
            time.sleep(0.05)
        restrict_socket(self.path, self.owner)  # only the sandbox user may use the key
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.path.unlink(missing_ok=True)
