"""The eval server's routes, one router per resource (submissions, leaderboard, teams, audit).

Each handler is a thin layer over ``EvalService`` (``request.app.state.service``) and ``reports``; the
service object, the token store and the error contract come from ``app`` and ``aar.servicekit``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from aar.evalserver.audit import audit_record
from aar.evalserver.config import TeamConfig
from aar.evalserver.models import (
    AuditRecord,
    FinalReport,
    Leaderboard,
    SubmissionList,
    SubmissionOut,
    TestbedInfo,
)
from aar.evalserver.reports import finalize_team, leaderboard
from aar.evalserver.service import EvalService, NotFound, own_or_admin
from aar.servicekit import Admin, Caller, authenticate, read_capped_body

SUBMISSION_SCHEMA = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["testbed", "predictions"], "properties": {
        "testbed": {"type": "string"},
        "predictions": {"type": "object", "additionalProperties": {"type": "number"}},
        "seed": {"type": "integer"}, "note": {"type": "string"}, "snapshot_id": {"type": "string"}}}}}}}


def json_response(model: BaseModel | list[Any], status: int = 200) -> Response:
    """Serialise with pydantic directly (faster than FastAPI's response validation on the hot path)."""
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        body = model.model_dump_json()
    return Response(body, status_code=status, media_type="application/json")


def service(request: Request) -> EvalService:
    svc: EvalService = request.app.state.service
    return svc


def submissions_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["submissions"])

    @r.post("/submissions", response_model=SubmissionOut, openapi_extra=SUBMISSION_SCHEMA)
    async def submit(request: Request) -> Response:
        """Score predictions {item_id: P(label 1)} for every test item; returns released scores only."""
        p = authenticate(request.app.state.tokens, request.headers.get("authorization"))  # hot path: no DI
        body = await read_capped_body(request, request.app.state.config.max_body_bytes)
        return json_response(await service(request).submit(p, body, request.headers.get("content-type")))

    @r.get("/submissions", response_model=SubmissionList)
    async def list_submissions(request: Request, p: Caller, worker: str | None = None, testbed: str | None = None,
                               after: Annotated[int, Query(ge=0)] = 0,
                               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        """The caller's own submissions (admins: anyone's, ``?worker=``), oldest first."""
        return json_response(service(request).list_submissions(p, worker, testbed, after, limit))

    @r.get("/submissions/{sub_id}", response_model=SubmissionOut)
    async def get_submission(request: Request, sub_id: str, p: Caller) -> Response:
        return json_response(service(request).get_submission(p, sub_id))

    @r.get("/testbeds", response_model=list[TestbedInfo])
    async def testbeds(request: Request, p: Caller) -> Response:
        return json_response(service(request).testbeds(p))

    @r.get("/whoami")
    async def whoami(p: Caller) -> dict[str, str]:
        return {"worker_id": p.worker_id, "team": p.team, "role": p.role}

    return r


def boards_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["leaderboard"])

    @r.get("/leaderboard", response_model=Leaderboard)
    async def get_leaderboard(request: Request, p: Caller, testbed: str | None = None,
                              team: str | None = None) -> Response:
        """Released best per worker of the caller's team; admins also get true public, private and gap."""
        team = team or p.team
        own_or_admin(p, team)
        svc = service(request)
        return json_response(await run_in_threadpool(leaderboard, svc.store, team, testbed, p.is_admin,
                                                      svc.labels))

    return r


def teams_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["teams (admin)"])

    @r.get("/teams/{team}/config", response_model=TeamConfig)
    async def get_team_config(request: Request, team: str, p: Admin) -> Response:
        """A team's release, budget and detector settings (admin only: thresholds help an attacker)."""
        return json_response(service(request).team_config(team))

    @r.put("/teams/{team}/config", response_model=TeamConfig)
    async def put_team_config(request: Request, team: str, cfg: TeamConfig, p: Admin) -> Response:
        """Set a team's release mechanism, budgets and detector thresholds (appended to the audit log)."""
        return json_response(service(request).set_team_config(team, cfg, p))

    @r.post("/teams/{team}/finalize", response_model=FinalReport)
    async def finalize(request: Request, team: str, p: Admin, testbed: str | None = None) -> Response:
        """Private-split scores of each worker's selected submission (recorded in the audit log)."""
        svc = service(request)
        try:
            report = await run_in_threadpool(finalize_team, svc.store, team, svc.labels, p.worker_id, testbed)
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        return json_response(report)

    @r.get("/audit", response_model=list[AuditRecord])
    async def audit(request: Request, p: Admin, team: str | None = None, after: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> Response:
        """Audit records (true public scores, flags, hashes; never predictions) in log order."""
        rows = service(request).store.list(team=team, after=after, limit=limit)
        return json_response([audit_record(row) for row in rows])

    return r
