"""The hub's HTTP API: ``create_app(settings)`` builds the app that ``aar serve`` runs (127.0.0.1:8711).

Every route but ``/healthz`` needs a bearer token from the token store shared with the eval server.
A worker sees and writes its own team's state; an admin token sees every team. Routes:

- ``POST /v1/findings`` · ``GET /v1/findings`` (change feed, long-poll with ``wait``) ·
  ``GET /v1/findings/search`` · ``GET /v1/findings/{id}`` · ``POST /v1/findings/{id}/comments`` ·
  ``POST /v1/findings/{id}/votes``
- ``POST /v1/snapshots`` (raw gzipped tar body) · ``GET /v1/snapshots`` · ``GET /v1/snapshots/{id}`` ·
  ``GET /v1/snapshots/{id}/download``
- ``POST /v1/workers/register`` · ``POST /v1/workers/heartbeat`` · ``GET /v1/workers`` ·
  ``POST /v1/events`` · ``GET /v1/events`` · ``GET /v1/whoami``
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from aar.auth import TokenStore
from aar.config import Settings, get_settings
from aar.db import make_engine
from aar.evalserver.client import EvalClient, EvalError
from aar.hub.blobs import BlobStore
from aar.hub.routes import HubContext, findings_router, ops_router, snapshots_router
from aar.hub.snapshots import SnapshotError, SnapshotLimits
from aar.hub.store import HubQuotas, HubStore, Invalid, NotFound, QuotaExceeded
from aar.servicekit import add_health, error_handlers


class HubConfig(BaseSettings):
    """Hub service options (environment ``AAR_HUB_*``; the eval URL also from ``AAR_EVAL_URL``)."""

    model_config = SettingsConfigDict(env_prefix="AAR_HUB_", extra="ignore")

    eval_url: str = Field(default="http://127.0.0.1:8710",
                          validation_alias=AliasChoices("eval_url", "AAR_HUB_EVAL_URL", "AAR_EVAL_URL"))
    snapshot_url: str | None = Field(default=None, description="fsspec URL; AAR_HOME/snapshots when unset.")
    max_upload_bytes: int = 64 * 2**20
    max_unpacked_bytes: int = 256 * 2**20
    max_file_bytes: int = 32 * 2**20
    max_members: int = 20_000
    max_json_bytes: int = 2 * 2**20
    max_findings_per_worker: int = Field(default=2_000, ge=1)
    max_comments_per_worker: int = Field(default=10_000, ge=1)
    max_snapshot_bytes_per_worker: int = Field(default=4 * 2**30, ge=1, description="Compressed bytes stored.")
    heartbeat_timeout_s: float = 120.0
    token_cache_s: float = Field(default=30.0, gt=0, description="Unused: a revocation applies on the next "
                                 "request (kept so older settings load).")

    def limits(self) -> SnapshotLimits:
        return SnapshotLimits(self.max_upload_bytes, self.max_unpacked_bytes, self.max_file_bytes,
                              self.max_members)


class Notifier:
    """Wakes long-polling readers when a write commits (called from worker threads)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._event = loop, asyncio.Event()

    def current(self) -> asyncio.Event:
        if self._event is None:
            self.bind(asyncio.get_running_loop())
        assert self._event is not None
        return self._event

    def _fire(self) -> None:
        if self._event is not None:
            self._event.set()
        self._event = asyncio.Event()

    def notify(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._fire)


def create_app(settings: Settings | None = None, config: HubConfig | None = None,
               eval_client: EvalClient | None = None) -> FastAPI:
    """Build the hub app over ``settings`` (AAR_HOME / DATABASE_URL) and ``config`` (hub options)."""
    settings = settings or get_settings()
    config = config or HubConfig()
    notifier = Notifier()
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    store = HubStore(make_engine(settings.sqlite_url("hub")), on_change=notifier.notify,
                     heartbeat_timeout_s=config.heartbeat_timeout_s,
                     quotas=HubQuotas(config.max_findings_per_worker, config.max_comments_per_worker,
                                      config.max_snapshot_bytes_per_worker))
    blobs = BlobStore(config.snapshot_url or Path(settings.home).resolve() / "snapshots")
    evals = eval_client or EvalClient(config.eval_url)
    ctx = HubContext(store=store, blobs=blobs, evals=evals, tokens=tokens, limits=config.limits(),
                     notifier=notifier)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        notifier.bind(asyncio.get_running_loop())
        try:
            yield
        finally:
            if eval_client is None:
                evals.close()

    app = FastAPI(title="aar hub", version="1", lifespan=lifespan, max_body_size=config.max_json_bytes)
    app.state.ctx = ctx
    app.state.tokens = tokens
    error_handlers(app, {NotFound: 404, Invalid: 400, QuotaExceeded: 429, SnapshotError: 400, EvalError: 502},
                   prefix={SnapshotError: "snapshot rejected: "})
    add_health(app)
    app.include_router(findings_router(ctx))
    app.include_router(snapshots_router(ctx, config.max_upload_bytes))
    app.include_router(ops_router(ctx))
    return app
