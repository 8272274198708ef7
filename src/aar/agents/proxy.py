"""The model-API proxy: host side, on a unix socket bound into the sandbox, it injects the API key.

The Claude Code CLI inside a sandbox holds only a placeholder key; its requests reach this proxy
(through the in-sandbox TCP forwarder), which drops whatever credentials they carry, adds the real
key, and forwards **only** the model routes (``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
and ``GET /`` for the CLI's reachability check) to the configured upstream, streaming the response
back. Anything else is refused with 403, so a sandboxed agent cannot use the key for other APIs.
Each forwarded call is timed, so the closing note can report the proxy's overhead per turn.

The proxy is also where spending is counted, because an agent can call it directly (``curl`` from
its shell reaches the same forwarder as the CLI). A :class:`Meter` pins the models a worker may use
(others get 403 before anything leaves the host; the body forwarded is the one checked, re-encoded),
reads the token usage of every response (the ``message_start`` / ``message_delta`` events of a
stream, or a JSON body's ``usage``; a response cut off early counts its ``max_tokens``), prices it, and
refuses new calls once the session's dollar cap is spent. At most ``MAX_IN_FLIGHT`` calls run at
once, so the cap is overshot by no more than the calls already running when it is reached.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aar.agents.providers.base import Price

ALLOWED = {("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/"), ("HEAD", "/")}
DROP = {"host", "authorization", "x-api-key", "content-length", "connection", "accept-encoding"}
MAX_IN_FLIGHT = 4
CACHE_WRITE, CACHE_READ = 1.25, 0.1  # prompt-cache tokens, as multiples of the input price (Anthropic's)
MAX_METERED_BYTES = 64 << 20  # a response is buffered up to this size to read its usage


@dataclass
class Meter:
    """What one session spends through the proxy; see the module docstring.

    ``prices`` maps each allowed model to its price (a model without a price cannot be allowed when a
    cap is set); ``limit`` is the session's dollar cap (None: count, never refuse for money).
    """

    prices: dict[str, Price | None]
    limit: float | None = None
    dollars: float = 0.0
    tokens: int = 0
    calls: int = 0
    refused: int = 0
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unpriced = sorted(m for m, p in self.prices.items() if p is None)
        if self.limit is not None and unpriced:
            raise ValueError(f"a dollar budget needs a price for every allowed model; none for {unpriced}")

    def allows(self, model: Any) -> bool:
        return isinstance(model, str) and model in self.prices

    def admit(self, model: Any) -> JSONResponse | None:
        """Reserve a slot for a call to ``model``, or the refusal to send back."""
        with self.lock:
            if not self.allows(model):
                refusal = _refusal(403, "permission_error", f"model {model!r} is not allowed for this worker "
                                                            f"(allowed: {sorted(self.prices)})")
            elif self.limit is not None and self.dollars >= self.limit:
                refusal = _refusal(400, "invalid_request_error", f"the worker's dollar budget is spent "
                                                                 f"(${self.dollars:.4f} of ${self.limit:.4f})")
            elif self.in_flight >= MAX_IN_FLIGHT:
                refusal = _refusal(429, "rate_limit_error", f"at most {MAX_IN_FLIGHT} model calls at once")
            else:
                self.in_flight += 1
                return None
            self.refused += 1
            return refusal

    def settle(self, model: str, usage: dict[str, int]) -> None:
        """Release the slot and charge ``usage`` (input, output and prompt-cache tokens) at ``model``'s price."""
        price = self.prices.get(model)
        inp, out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        write, read = usage.get("cache_creation_input_tokens", 0), usage.get("cache_read_input_tokens", 0)
        cost = 0.0 if price is None else (
            (inp + CACHE_WRITE * write + CACHE_READ * read) * price.input + out * price.output
        ) / 1e6
        with self.lock:
            self.in_flight -= 1
            self.calls += 1
            self.tokens += inp + out + write + read
            self.dollars += cost


def read_usage(body: bytes) -> dict[str, int]:
    """Token usage of a Messages response: a JSON body's ``usage``, or a stream's start and delta events."""
    usage: dict[str, int] = {}

    def take(found: Any) -> None:
        if isinstance(found, dict):
            usage.update({k: int(v) for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool)})

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


def proxy_app(upstream: str, api_key: str, stats: list[float], meter: Meter) -> FastAPI:
    """The proxy's ASGI app: forwards allowed routes to ``upstream`` with ``api_key``, metered by ``meter``."""
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream.rstrip("/"), timeout=httpx.Timeout(600.0, connect=30.0))

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    async def forward(request: Request, path: str) -> Any:
        route = (request.method, "/" + path)
        if route not in ALLOWED:
            return JSONResponse({"error": f"{request.method} /{path} is not a model route"}, status_code=403)
        body = await request.body()
        model, max_output = None, 0
        if request.method == "POST":
            try:
                payload = json.loads(body)
                model = payload.get("model")
            except (ValueError, AttributeError):
                return _refusal(400, "invalid_request_error", "the request body is not a JSON object")
            max_output = payload.get("max_tokens") if isinstance(payload.get("max_tokens"), int) else 0
            # forward exactly what was checked: a body with two "model" keys would otherwise let the
            # upstream's JSON parser pick another model than the one priced here
            body = json.dumps(payload).encode()
            if path == "v1/messages/count_tokens":  # free, but pinned to the allowed models too
                if not meter.allows(model):
                    return _refusal(403, "permission_error", f"model {model!r} is not allowed for this worker")
            else:
                refusal = meter.admit(model)
                if refusal is not None:
                    return refusal
        metered = request.method == "POST" and path == "v1/messages"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP}
        headers["x-api-key"] = api_key
        start = time.perf_counter()
        try:
            upstream_req = client.build_request(request.method, "/" + path, params=request.query_params,
                                                headers=headers, content=body)
            resp = await client.send(upstream_req, stream=True)
        except BaseException:
            if metered:
                meter.settle(str(model), {})
            raise
        stats.append(time.perf_counter() - start)  # time to upstream headers (the proxy's own share is tiny)
        out_headers = {k: v for k, v in resp.headers.items()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
        if request.method == "HEAD":
            await resp.aclose()
            return Response(status_code=resp.status_code, headers=out_headers)
        if metered:
            chunks = _metered(resp, meter, str(model), max_output if resp.status_code == 200 else 0)
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


async def _metered(resp: httpx.Response, meter: Meter, model: str, max_output: int) -> AsyncIterator[bytes]:
    """Stream the response through while keeping a copy; charge its usage when it ends.

    A stream the reader hangs up on before its end lacks the final usage event (a client could read
    the text and leave before it): it is charged for ``max_output`` output tokens, the most the
    request could have produced.
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
        usage = read_usage(bytes(kept))
        if not finished:
            usage["output_tokens"] = max(usage.get("output_tokens", 0), max_output)
        meter.settle(model, usage)
        await resp.aclose()


class ModelProxy:
    """Serve :func:`proxy_app` on the unix socket ``path`` in a background thread (context manager)."""

    def __init__(self, path: Path, upstream: str, api_key: str, meter: Meter,
                 owner: tuple[int, int] | None = None) -> None:
        import uvicorn

        self.path, self.owner, self.meter = path, owner, meter
        self.stats: list[float] = []
        config = uvicorn.Config(proxy_app(upstream, api_key, self.stats, meter), uds=str(path),
                                log_level="warning", lifespan="off")
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
