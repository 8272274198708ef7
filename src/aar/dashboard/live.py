"""Live endpoints the pages poll: "what changed" (ETag / 304), HTML fragments, transcript lines by offset.

A page holds a version (an ETag) and asks ``/api/version`` every few seconds with ``If-None-Match``; an
unchanged team costs a few ``stat`` calls and a 304. When the version moves the page fetches one
server-rendered fragment (escaped like every page). A transcript holds the byte offset after its last
line and asks for the lines after it (``204`` when there are none); "earlier" asks for the page before
its first line. Offsets are the file's own, so a page left open for an hour stays exact.
"""

from __future__ import annotations

import zlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from aar.dashboard import journal
from aar.dashboard.app import render
from aar.dashboard.pages import PAGE, Auth, known_team, known_worker, reader, team_live
from aar.dashboard.render import entry
from aar.dashboard.views import team_names, trajectory_path, version

Offset = Annotated[int, Query(ge=0, le=2**62)]


def _etag(value: str) -> str:
    return f'W/"{value}"'


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/api/version")
    async def changed(request: Request, session: Auth, team: Annotated[str, Query(max_length=64)] = "") -> Response:
        """The version of one team's pages (or of the teams list): 304 when ``If-None-Match`` matches."""
        settings = request.app.state.settings
        teams = [known_team(request, team).team] if team else team_names(settings)
        job = request.app.state.jobs.get(team, "") if team else ""
        tag = _etag(version(settings, teams) + f"{zlib.crc32(job.encode()):08x}")
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        return Response('{"changed": true}', media_type="application/json", headers={"ETag": tag})

    @r.get("/fragments/teams")
    async def teams_fragment(request: Request, session: Auth) -> Response:
        settings = request.app.state.settings
        rows = await run_in_threadpool(lambda: [reader(request).summary(t) for t in team_names(settings)])
        return render(request, "_teams.html", rows=rows)

    @r.get("/fragments/teams/{team}")
    async def team_fragment(request: Request, team: str, session: Auth) -> Response:
        live = await run_in_threadpool(team_live, request, known_team(request, team), session)
        return render(request, "_team_live.html", **live)

    @r.get("/fragments/teams/{team}/workers/{worker}")
    async def worker_fragment(request: Request, team: str, worker: str, session: Auth) -> Response:
        known_worker(known_team(request, team), worker)
        view = await run_in_threadpool(reader(request).view, team)
        row = next((w for w in view.workers if w.worker == worker), None)
        return render(request, "_worker_row.html", team=team, row=row)

    @r.get("/api/teams/{team}/workers/{worker}/lines")
    async def lines(request: Request, team: str, worker: str, session: Auth, after: Offset | None = None,
                    before: Offset | None = None) -> Response:
        """Transcript entries after byte ``after`` (live) or the page before byte ``before`` (earlier)."""
        known_worker(known_team(request, team), worker)
        path = trajectory_path(request.app.state.settings, team, worker)
        if after is not None:
            found, nxt = await run_in_threadpool(journal.after, path, after, PAGE)
            if not found:
                return Response(status_code=204, headers={"X-Offset": str(nxt)})
            return render_entries(request, team, found, {"X-Offset": str(nxt)})
        found, start = await run_in_threadpool(journal.tail, path, before, PAGE)
        return render_entries(request, team, found, {"X-Start": str(start)})

    @r.get("/api/teams/{team}/workers/{worker}/line")
    async def one(request: Request, team: str, worker: str, session: Auth, offset: Offset) -> Response:
        """The line at ``offset`` in full (no on-screen truncation)."""
        known_worker(known_team(request, team), worker)
        line = journal.line_at(trajectory_path(request.app.state.settings, team, worker), offset)
        if line is None:
            raise HTTPException(404, "no line starts at that offset")
        return render_entries(request, team, [line], {}, full=True)

    return r


def render_entries(request: Request, team: str, found: list[journal.Line], headers: dict[str, str],
                   full: bool = False) -> Response:
    response = render(request, "_entries.html", entries=[entry(x, team, full=full) for x in found],
                      team=team)
    response.headers.update(headers)
    return response
