"""Route handlers of the hub, grouped in three routers over one shared ``HubContext``."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from aar.auth import Principal, TokenStore, require_admin
from aar.evalserver.client import EvalClient, EvalError
from aar.hub.blobs import BlobStore
from aar.hub.models import (
    FINDING_KINDS,
    Comment,
    CommentIn,
    Event,
    EventIn,
    Finding,
    FindingIn,
    FindingPage,
    Heartbeat,
    SearchHit,
    SearchResult,
    SnapshotMeta,
    VoteIn,
    WorkerInfo,
    WorkerRegister,
    check_snapshot_id,
)
from aar.hub.snapshots import SnapshotLimits, check_tarball
from aar.hub.store import HubStore, Invalid
from aar.servicekit import Caller, bearer_token

SHA = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the snapshot")]
FindingId = Annotated[int, Path(ge=1, le=2**31 - 1)]
WorkerFilter = Annotated[str | None, Query(max_length=128)]


P = Caller  # the kit's dependency: the caller's principal from app.state.tokens (401 otherwise)


class _Notifier(Protocol):
    def current(self) -> asyncio.Event: ...


@dataclass
class HubContext:
    store: HubStore
    blobs: BlobStore
    evals: EvalClient
    tokens: TokenStore
    limits: SnapshotLimits
    notifier: _Notifier


def scope(p: Principal, team: str | None = None) -> str | None:
    """The team a caller may see: its own; an admin sees all (or the team it asks for)."""
    return team if p.is_admin else p.team


def bearer(authorization: str | None) -> str:
    return bearer_token(authorization) or ""


def released_scores(evals: EvalClient, token: str, submission_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Fetch each cited submission's released scores from the eval server with the caller's token."""
    scores: dict[str, dict[str, Any]] = {}
    for sid in submission_ids:
        try:
            scores[sid] = evals.released_scores(token, sid)
        except EvalError as exc:
            if exc.status in (400, 403, 404, 422):
                raise Invalid(f"submission {sid!r} is not one of your submissions "
                              "on the eval server") from None
            raise
    return scores


def findings_router(ctx: HubContext) -> APIRouter:
    r = APIRouter(prefix="/v1/findings", tags=["findings"])
    store = ctx.store

    @r.post("", status_code=201, response_model=Finding)
    def post_finding(fin: FindingIn, p: P, authorization: Annotated[str | None, Header()] = None) -> Finding:
        """Post a finding; a ``result`` must cite the caller's eval-server submissions (scores fetched)."""
        if fin.kind == "result" and not fin.submission_ids:
            raise Invalid("a result finding must cite at least one eval-server submission id")
        store.check_finding_refs(fin, scope(p))
        scores = released_scores(ctx.evals, bearer(authorization), fin.submission_ids)
        return store.create_finding(fin, team=p.team, author=p.worker_id, scores=scores)

    @r.get("", response_model=FindingPage)
    async def list_findings(
        request: Request,
        p: P,
        since_rev: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        kind: Annotated[str | None, Query(pattern="^(" + "|".join(FINDING_KINDS) + ")$")] = None,
        author: WorkerFilter = None,
        family: Annotated[str | None, Query(max_length=32)] = None,
        tag: Annotated[str | None, Query(max_length=48)] = None,
        comments: bool = False,
        wait: Annotated[float, Query(ge=0, le=30, description="Long-poll seconds when nothing changed.")] = 0,
        team: WorkerFilter = None,
    ) -> FindingPage:
        """Findings changed after ``since_rev`` in change order (the local sync's feed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            event = ctx.notifier.current()
            rows = await run_in_threadpool(store.list_findings, scope(p, team), since_rev, limit, kind,
                                           author, family, tag, comments)
            remaining = deadline - loop.time()
            if rows or remaining <= 0 or await request.is_disconnected():
                return FindingPage(findings=rows, cursor=max([f.rev for f in rows], default=since_rev))
            try:  # wake on a local write, or re-check each second (other hub processes)
                await asyncio.wait_for(event.wait(), timeout=min(1.0, remaining))
            except TimeoutError:
                pass

    @r.get("/search", response_model=SearchResult)
    def search(p: P, q: Annotated[str, Query(min_length=1, max_length=500)],
               limit: Annotated[int, Query(ge=1, le=100)] = 20, team: WorkerFilter = None) -> SearchResult:
        """Full-text search (all words, prefix match; falls back to any word), best first."""
        hits = store.search(q, scope(p, team), limit)
        return SearchResult(query=q, hits=[SearchHit(finding=f, rank=rank, snippet=snip)
                                           for f, rank, snip in hits])

    @r.get("/{finding_id}", response_model=Finding)
    def get_finding(finding_id: FindingId, p: P) -> Finding:
        return store.get_finding(finding_id, scope(p), viewer=p.worker_id)

    @r.post("/{finding_id}/comments", status_code=201, response_model=Comment)
    def comment(finding_id: FindingId, body: CommentIn, p: P) -> Comment:
        return store.add_comment(finding_id, scope(p), p.worker_id, body.body)

    @r.post("/{finding_id}/votes", response_model=Finding)
    def vote(finding_id: FindingId, body: VoteIn, p: P) -> Finding:
        return store.vote(finding_id, scope(p), p.worker_id, body.value)

    return r


def snapshots_router(ctx: HubContext, max_upload_bytes: int) -> APIRouter:
    r = APIRouter(prefix="/v1/snapshots", tags=["snapshots"])
    uploading: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def _store(spool: Any, p: Principal, note: str, parent_id: str | None,
               finding_id: int | None) -> SnapshotMeta:
        spool.seek(0)
        info = check_tarball(spool, ctx.limits)
        meta = SnapshotMeta(id=info.sha256, team=p.team, worker_id=p.worker_id, note=note,
                            parent_id=parent_id, finding_id=finding_id, size=info.size,
                            unpacked_size=info.unpacked_size,
                            n_files=info.n_files, created_at=datetime.now(UTC))
        # one upload per worker at a time: the quota is checked before the blob is written (a refused
        # upload stores nothing) and holds when the record is added (racing uploads cannot pass it)
        with uploading[(p.team, p.worker_id)]:
            ctx.store.check_snapshot_quota(meta)
            if not ctx.blobs.exists(info.sha256):
                ctx.blobs.put(info.sha256, spool)
            return ctx.store.add_snapshot(meta)

    @r.post("", status_code=201, response_model=SnapshotMeta, max_body_size=max_upload_bytes)
    async def upload(
        request: Request, response: Response, p: P,
        note: Annotated[str, Query(max_length=2000)] = "",
        parent_id: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
        finding_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    ) -> SnapshotMeta:
        """Upload a gzipped tarball (request body); identical content is stored once (200, created=false)."""
        with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_upload_bytes:
                    raise HTTPException(413, f"snapshot is over the {max_upload_bytes}-byte upload cap")
                spool.write(chunk)
            if size == 0:
                raise HTTPException(400, "empty body: send the gzipped tarball as the request body")
            meta = await run_in_threadpool(_store, spool, p, note, parent_id, finding_id)
        if not meta.created:
            response.status_code = 200
        return meta

    @r.get("", response_model=list[SnapshotMeta])
    def list_snapshots(p: P, worker: WorkerFilter = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       team: WorkerFilter = None) -> list[SnapshotMeta]:
        return ctx.store.list_snapshots(scope(p, team), worker, limit)

    @r.get("/{snapshot_id}", response_model=SnapshotMeta)
    def get_snapshot(snapshot_id: SHA, p: P) -> SnapshotMeta:
        return ctx.store.get_snapshot(snapshot_id, scope(p))

    @r.get("/{snapshot_id}/download")
    def download(snapshot_id: SHA, p: P) -> StreamingResponse:
        meta = ctx.store.get_snapshot(snapshot_id, scope(p))
        try:
            fh = ctx.blobs.open(check_snapshot_id(meta.id))
        except FileNotFoundError:
            raise HTTPException(500, f"snapshot {snapshot_id} has a record but its blob is missing") from None

        def chunks() -> Iterator[bytes]:
            with fh:
                while data := fh.read(1 << 20):
                    yield data

        return StreamingResponse(chunks(), media_type="application/gzip", headers={
            "Content-Length": str(meta.size), "X-Snapshot-Sha256": meta.id,
            "Content-Disposition": f'attachment; filename="{meta.id[:12]}.tar.gz"'})

    return r


def ops_router(ctx: HubContext) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["workers and events"])
    store = ctx.store

    def _subject(p: Principal, worker_id: str | None) -> tuple[str, str]:
        """(worker, team) a request acts for: the caller, or for an admin any registered worker."""
        if worker_id is None or worker_id == p.worker_id:
            return p.worker_id, p.team
        require_admin(p)
        for w in store.list_workers(None):
            if w.worker_id == worker_id:
                return w.worker_id, w.team
        raise Invalid(f"worker {worker_id!r} is not registered")

    @r.get("/whoami")
    def whoami(p: P) -> dict[str, str]:
        return {"worker_id": p.worker_id, "team": p.team, "role": p.role}

    @r.post("/workers/register", status_code=201, response_model=WorkerInfo)
    def register(body: WorkerRegister, p: P) -> WorkerInfo:
        """Register (or re-register after a restart) a worker; logs ``worker_started``."""
        if body.worker_id is not None and body.worker_id != p.worker_id:
            require_admin(p)
            known = {w.worker_id: w.team for w in store.list_workers(None)}
            team = body.team or known.get(body.worker_id)
            if team is None:
                raise Invalid("registering a new worker for someone else needs its team")
            return store.register_worker(body.worker_id, team, body.info)
        if body.team is not None and body.team != p.team:
            require_admin(p)
        return store.register_worker(p.worker_id, p.team, body.info)

    @r.post("/workers/heartbeat", response_model=WorkerInfo)
    def heartbeat(body: Heartbeat, p: P) -> WorkerInfo:
        worker, team = _subject(p, body.worker_id)
        return store.heartbeat(worker, team, body.status)

    @r.get("/workers", response_model=list[WorkerInfo])
    def workers(p: P, team: WorkerFilter = None) -> list[WorkerInfo]:
        return store.list_workers(scope(p, team))

    @r.post("/events", status_code=201, response_model=Event)
    def post_event(body: EventIn, p: P, authorization: Annotated[str | None, Header()] = None) -> Event:
        """Append a lifecycle event; a ``submission`` event stores the eval server's released scores."""
        worker, team = _subject(p, body.worker_id)
        data = dict(body.data)
        if body.kind == "submission":
            sid = data.get("submission_id")
            if not isinstance(sid, str) or not sid:
                raise Invalid("a submission event needs data.submission_id")
            scores = released_scores(ctx.evals, bearer(authorization), [sid])
            data = {"submission_id": sid, "scores": scores[sid]}
        return store.post_event(team, worker, body.kind, data)

    @r.get("/events", response_model=list[Event])
    def events(p: P, since: Annotated[int, Query(ge=0)] = 0,
               limit: Annotated[int, Query(ge=1, le=5000)] = 500,
               kind: Annotated[str | None, Query(max_length=32)] = None, worker: WorkerFilter = None,
               team: WorkerFilter = None) -> list[Event]:
        """The append-only event log after ``since`` (a seq), oldest first."""
        return store.list_events(scope(p, team), since, limit, kind, worker)

    return r
