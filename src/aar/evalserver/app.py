"""The eval server's HTTP API: ``create_app()`` builds the app that ``aar serve`` runs (127.0.0.1:8710).

Every route but ``/healthz`` needs a bearer token from the token store shared with the hub. Errors are
``{"detail": message}``: 400 unreadable body, 401 no / bad token, 403 not yours or not admin, 404
unknown, 413 too large, 415 not JSON, 422 invalid, 429 over budget (with ``Retry-After``), 503 not
recorded. Routes:

- ``POST /v1/submissions`` · ``GET /v1/submissions`` · ``GET /v1/submissions/{id}``
- ``GET /v1/leaderboard`` · ``GET /v1/testbeds`` · ``GET /v1/whoami``
- admin: ``GET|PUT /v1/teams/{team}/config`` · ``POST /v1/teams/{team}/finalize`` ·
  ``GET /v1/audit``
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from aar.auth import TokenStore
from aar.config import Settings, ensure_private_dir, get_settings
from aar.db import make_engine
from aar.evalserver.budget import BudgetExceeded
from aar.evalserver.config import EvalServerConfig, load_config
from aar.evalserver.routes import boards_router, submissions_router, teams_router
from aar.evalserver.service import EvalService, Forbidden, NotFound, Unavailable
from aar.evalserver.store import Store, server_lock
from aar.evalserver.validate import Invalid
from aar.servicekit import BodyTooLarge, add_health, error_handlers

log = logging.getLogger("aar.evalserver")


def create_app(settings: Settings | None = None, config: EvalServerConfig | None = None) -> FastAPI:
    """Build the eval server over ``settings`` (AAR_HOME / DATABASE_URL) and ``config``.

    With no arguments (``uvicorn --factory``) the config file is taken from ``AAR_EVAL_CONFIG``.
    The service object exists while the app runs (its lifespan holds the database's server lock).
    """
    settings = settings or get_settings()
    if config is None:
        path = os.environ.get("AAR_EVAL_CONFIG")
        config = load_config(Path(path) if path else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(make_engine(settings.sqlite_url("evalserver")))
        with server_lock(store.engine):
            svc = EvalService(settings, config, store)
            svc.loop = asyncio.get_running_loop()
            app.state.service = svc
            cfg_dir = ensure_private_dir(settings.home / "evalserver")
            (cfg_dir / "config.json").write_text(config.model_dump_json(indent=2))
            # Everything imported so far (numpy, pydantic, torch via aar.w2s...) lives for the whole process:
            # keep it out of the cyclic GC, whose full passes over it took ~50 ms and set the p99 latency.
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                svc.close()

    app = FastAPI(title="aar eval server", version="1", lifespan=lifespan)
    app.state.tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    app.state.config = config
    error_handlers(app, {Invalid: 422, BodyTooLarge: 413, BudgetExceeded: 429, Forbidden: 403, NotFound: 404,
                         Unavailable: 503},
                   headers={BudgetExceeded: lambda e: {"Retry-After": str(getattr(e, "retry_after", 1))},
                            Unavailable: lambda e: {"Retry-After": "1"}},
                   own_status=(Invalid, BodyTooLarge))
    add_health(app)
    app.include_router(submissions_router())
    app.include_router(boards_router())
    app.include_router(teams_router())
    return app
