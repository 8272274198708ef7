"""What the eval server and the hub share: bearer auth, error handlers, capped bodies, health, test servers.

Both services have the same shape: a service object (or store) built in ``create_app``, routers per
resource, ``{"detail": message}`` errors, ``GET /healthz``, a token store shared through the database.
Nothing here knows about labels, findings or snapshots.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from aar.auth import Principal, TokenStore, require_admin


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None when absent or another scheme)."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def authenticate(tokens: TokenStore, authorization: str | None) -> Principal:
    """The caller of a request (401 when the token is missing, unknown or revoked)."""
    found = tokens.verify(bearer_token(authorization))
    if found is None:
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found


async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """FastAPI dependency: the caller, checked against ``app.state.tokens``."""
    return authenticate(request.app.state.tokens, authorization)


async def admin_caller(p: Annotated[Principal, Depends(caller)]) -> Principal:
    """FastAPI dependency: the caller if it holds an admin token (403 otherwise)."""
    return require_admin(p)


Caller = Annotated[Principal, Depends(caller)]
Admin = Annotated[Principal, Depends(admin_caller)]


def error_handlers(app: FastAPI, statuses: dict[type[Exception], int],
                   headers: dict[type[Exception], Callable[[Exception], dict[str, str]]] | None = None,
                   prefix: dict[type[Exception], str] | None = None,
                   own_status: tuple[type[Exception], ...] = ()) -> None:
    """Answer each exception type with ``{"detail": str(exc)}`` and its status (HTTPException too).

    Types in ``own_status`` carry their HTTP status in ``exc.status`` (the mapping is their default).
    """
    for exc_type, status in statuses.items():
        def handler(_: Request, exc: Exception, status: int = status, exc_type: type = exc_type) -> JSONResponse:
            detail = getattr(exc, "message", None) or str(exc.args[0] if exc.args else exc)
            extra = (headers or {}).get(exc_type)
            code = int(getattr(exc, "status", status)) if exc_type in own_status else status
            return JSONResponse({"detail": (prefix or {}).get(exc_type, "") + detail},
                                status_code=code, headers=extra(exc) if extra else None)

        app.add_exception_handler(exc_type, handler)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(HTTPException, http_error)


class BodyTooLarge(Exception):
    """Answered 413 (or 400 for a malformed Content-Length): ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def read_capped_body(request: Request, limit: int) -> bytes:
    """The request body, refused (``BodyTooLarge``) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyTooLarge(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def add_health(app: FastAPI) -> None:
    """``GET /healthz``: liveness only (no data, no auth), for ``aar serve`` and load balancers."""

    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)


# ---------------------------------------------------------------------------------- running servers
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on ``host:port`` (``TimeoutError`` otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def wait_healthy(url: str, alive: Callable[[], bool] = lambda: True, timeout: float = 60.0) -> bool:
    """Poll ``url/healthz`` until it answers 200, ``alive()`` turns false, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread until the block ends; yields its base URL."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
