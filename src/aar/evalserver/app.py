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
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from aar.auth import Principal, TokenStore, require_admin
from aar.config import Settings, ensure_private_dir, get_settings
from aar.db import make_engine
from aar.evalserver.audit import audit_record
from aar.evalserver.budget import BudgetExceeded
from aar.evalserver.config import EvalServerConfig, TeamConfig, load_config
from aar.evalserver.models import (
    AuditRecord,
    FinalReport,
    Leaderboard,
    SubmissionList,
    SubmissionOut,
    TestbedInfo,
)
from aar.evalserver.reports import finalize_team, leaderboard
from aar.evalserver.service import EvalService, Forbidden, NotFound, Unavailable, own_or_admin
from aar.evalserver.store import Store, server_lock
from aar.evalserver.validate import Invalid

log = logging.getLogger("aar.evalserver")


def _json(model: BaseModel | list[Any], status: int = 200) -> Response:
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        body = model.model_dump_json()
    return Response(body, status_code=status, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Invalid(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise Invalid(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Invalid(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller, from its bearer token (401 when missing, unknown or revoked)."""
    token = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
    found = request.app.state.tokens.verify(token)
    if found is None:
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found


async def admin(p: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller if it holds an admin token (403 otherwise)."""
    return require_admin(p)


Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]


def create_app(settings: Settings | None = None, config: EvalServerConfig | None = None) -> FastAPI:
    """Build the eval server over ``settings`` (AAR_HOME / DATABASE_URL) and ``config``.

    With no arguments (``uvicorn --factory``) the config file is taken from ``AAR_EVAL_CONFIG``.
    """
    settings = settings or get_settings()
    if config is None:
        path = os.environ.get("AAR_EVAL_CONFIG")
        config = load_config(Path(path) if path else None)
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    holder: dict[str, EvalService] = {}

    def service() -> EvalService:
        return holder["service"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store = Store(make_engine(settings.sqlite_url("evalserver")))
        with server_lock(store.engine):
            svc = EvalService(settings, config, store)
            svc.loop = asyncio.get_running_loop()
            holder["service"] = svc
            cfg_dir = ensure_private_dir(settings.home / "evalserver")
            (cfg_dir / "config.json").write_text(config.model_dump_json(indent=2))

            async def refresh_tokens() -> None:
                while True:
                    await asyncio.sleep(config.token_cache_s)
                    tokens.clear_cache()

            refresher = asyncio.create_task(refresh_tokens())
            # Everything imported so far (numpy, pydantic, torch via aar.w2s...) lives for the whole process:
            # keep it out of the cyclic GC, whose full passes over it took ~50 ms and set the p99 latency.
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                refresher.cancel()
                svc.close()

    app = FastAPI(title="aar eval server", version="1", lifespan=lifespan)
    app.state.tokens = tokens

    @app.exception_handler(Invalid)
    async def _invalid(_: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(BudgetExceeded)
    async def _budget(_: Request, exc: BudgetExceeded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness only (no data, no auth)."""
        return {"status": "ok"}

    @app.get("/v1/whoami")
    async def whoami(p: Caller) -> dict[str, str]:
        return {"worker_id": p.worker_id, "team": p.team, "role": p.role}

    @app.post("/v1/submissions", response_model=SubmissionOut,
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["testbed", "predictions"], "properties": {
                      "testbed": {"type": "string"},
                      "predictions": {"type": "object", "additionalProperties": {"type": "number"}},
                      "seed": {"type": "integer"}, "note": {"type": "string"},
                      "snapshot_id": {"type": "string"}}}}}}})
    async def submit(request: Request) -> Response:
        """Score predictions {item_id: P(label 1)} for every test item; returns released scores only."""
        p = await principal(request, request.headers.get("authorization"))  # the hot path skips DI
        body = await _read_body(request, config.max_body_bytes)
        return _json(await service().submit(p, body, request.headers.get("content-type")))

    @app.get("/v1/submissions", response_model=SubmissionList)
    async def list_submissions(p: Caller, worker: str | None = None, testbed: str | None = None,
                               after: Annotated[int, Query(ge=0)] = 0,
                               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        """The caller's own submissions (admins: anyone's, ``?worker=``), oldest first."""
        return _json(service().list_submissions(p, worker, testbed, after, limit))

    @app.get("/v1/submissions/{sub_id}", response_model=SubmissionOut)
    async def get_submission(sub_id: str, p: Caller) -> Response:
        return _json(service().get_submission(p, sub_id))

    @app.get("/v1/testbeds", response_model=list[TestbedInfo])
    async def testbeds(p: Caller) -> Response:
        return _json(service().testbeds(p))

    @app.get("/v1/leaderboard", response_model=Leaderboard)
    async def get_leaderboard(p: Caller, testbed: str | None = None, team: str | None = None) -> Response:
        """Released best per worker of the caller's team; admins also get true public, private and gap."""
        team = team or p.team
        own_or_admin(p, team)
        svc = service()
        return _json(await run_in_threadpool(leaderboard, svc.store, team, testbed, p.is_admin, svc.labels))

    @app.get("/v1/teams/{team}/config", response_model=TeamConfig)
    async def get_team_config(team: str, p: Admin) -> Response:
        """A team's release, budget and detector settings (admin only: thresholds help an attacker)."""
        return _json(service().team_config(team))

    @app.put("/v1/teams/{team}/config", response_model=TeamConfig)
    async def put_team_config(team: str, cfg: TeamConfig, p: Admin) -> Response:
        """Set a team's release mechanism, budgets and detector thresholds (appended to the audit log)."""
        return _json(service().set_team_config(team, cfg, p))

    @app.post("/v1/teams/{team}/finalize", response_model=FinalReport)
    async def finalize(team: str, p: Admin, testbed: str | None = None) -> Response:
        """Private-split scores of each worker's selected submission (recorded in the audit log)."""
        svc = service()
        try:
            report = await run_in_threadpool(finalize_team, svc.store, team, svc.labels, p.worker_id, testbed)
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        return _json(report)

    @app.get("/v1/audit", response_model=list[AuditRecord])
    async def audit(p: Admin, team: str | None = None, after: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> Response:
        """Audit records (true public scores, flags, hashes; never predictions) in log order."""
        rows = service().store.list(team=team, after=after, limit=limit)
        return _json([audit_record(r) for r in rows])

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app
