"""The model-API proxy: host side, on a unix socket bound into the sandbox, it injects the API key.

The Claude Code CLI inside a sandbox holds only a placeholder key; its requests reach this proxy
(through the in-sandbox TCP forwarder), which drops whatever credentials they carry, adds the real
key, and forwards **only** the model routes (``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
and ``GET /`` for the CLI's reachability check) to the configured upstream, streaming the response
back. Anything else is refused with 403, so a sandboxed agent cannot use the key for other APIs.
Each forwarded call is timed, so the closing note can report the proxy's overhead per turn.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

ALLOWED = {("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/"), ("HEAD", "/")}
DROP = {"host", "authorization", "x-api-key", "content-length", "connection", "accept-encoding"}


def proxy_app(upstream: str, api_key: str, stats: list[float]) -> FastAPI:
    """The proxy's ASGI app: forwards allowed routes to ``upstream`` with ``api_key``."""
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream.rstrip("/"), timeout=httpx.Timeout(600.0, connect=30.0))

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    async def forward(request: Request, path: str) -> Any:
        route = (request.method, "/" + path)
        if route not in ALLOWED:
            return JSONResponse({"error": f"{request.method} /{path} is not a model route"}, status_code=403)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP}
        headers["x-api-key"] = api_key
        start = time.perf_counter()
        upstream_req = client.build_request(request.method, "/" + path, params=request.query_params,
                                            headers=headers, content=await request.body())
        resp = await client.send(upstream_req, stream=True)
        stats.append(time.perf_counter() - start)  # time to upstream headers (the proxy's own share is tiny)
        out_headers = {k: v for k, v in resp.headers.items()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
        if request.method == "HEAD":
            await resp.aclose()
            return Response(status_code=resp.status_code, headers=out_headers)
        return StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, headers=out_headers,
                                 background=_closer(resp))

    return app


def _closer(resp: httpx.Response) -> Any:
    from starlette.background import BackgroundTask

    return BackgroundTask(resp.aclose)


class ModelProxy:
    """Serve :func:`proxy_app` on the unix socket ``path`` in a background thread (context manager)."""

    def __init__(self, path: Path, upstream: str, api_key: str, owner: tuple[int, int] | None = None) -> None:
        import uvicorn

        self.path, self.owner = path, owner
        self.stats: list[float] = []
        config = uvicorn.Config(proxy_app(upstream, api_key, self.stats), uds=str(path), log_level="warning",
                                lifespan="off")
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
