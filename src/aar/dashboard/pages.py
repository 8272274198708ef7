"""The dashboard's pages (GET): teams, team, worker transcript, ideas, compare, forum, snapshots, testbeds,
search. Each handler checks the names in its URL, reads through :mod:`aar.dashboard.views` or the
services' clients (with the session's admin token), and renders one template."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from aar.dashboard import journal
from aar.dashboard.app import render
from aar.dashboard.render import Series, entry, markdown, svg_lines
from aar.dashboard.security import Session, check_name, session_of
from aar.dashboard.views import REPORT_PLOTS, TeamReader, report_dir, report_plots, team_names, trajectory_path
from aar.orchestrator.team import TeamState, load_state, team_dir

PAGE = 200  # transcript lines per page
SHA = Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")]


def logged_in(request: Request) -> Session:
    """Dependency: the session (``LoginRequired`` otherwise), kept on ``request.state`` for templates."""
    session = session_of(request)
    request.state.session = session
    return session


Auth = Annotated[Session, Depends(logged_in)]


def reader(request: Request) -> TeamReader:
    r: TeamReader = request.app.state.reader
    return r


def known_team(request: Request, team: str) -> TeamState:
    """The state of a team launched from this AAR_HOME (404 for a bad or unknown name)."""
    check_name(team, "team")
    settings = request.app.state.settings
    root = team_dir(settings, team)
    if root.is_symlink() or not (root / "team.json").is_file():
        raise HTTPException(404, f"no team {team!r}")
    return load_state(settings, team)


def known_worker(state: TeamState, worker: str) -> str:
    check_name(worker, "worker")
    if worker not in state.workers:
        raise HTTPException(404, f"no worker {worker!r} in team {state.team!r}")
    return worker


def hub(request: Request, session: Session, url: str | None = None) -> Any:
    from aar.hub.client import HubClient

    return HubClient(url or request.app.state.config.hub_url, session.token, timeout=15)


def pgr_plot(view: Any) -> Any:
    """Inline SVG: each worker's running best released PGR and the team best against AAR-hours."""
    p = view.progress
    series = []
    for w in sorted({x.worker for x in p.points}):
        pts = [x for x in p.points if x.worker == w]
        series.append(Series(w.rsplit("-", 1)[-1], [x.aar_hours for x in pts], [x.best for x in pts], step=True,
                             dots=True))
    series.append(Series("team best", [x.aar_hours for x in p.team_best], [x.best for x in p.team_best], step=True))
    return svg_lines(series, "Best released PGR (live)", "cumulative AAR-hours (h)", "PGR (combined)")


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/")
    async def teams_page(request: Request, session: Auth) -> Response:
        from aar.orchestrator.directions import DEFAULT_DIRECTIONS
        from aar.w2s.testbeds import list_testbeds

        settings = request.app.state.settings
        rows = await run_in_threadpool(lambda: [reader(request).summary(t) for t in team_names(settings)])
        beds = [t for t in list_testbeds(settings) if t.prepared]
        return render(request, "teams.html", rows=rows, testbeds=beds, directions=DEFAULT_DIRECTIONS,
                      error=request.query_params.get("error"))

    @r.get("/teams/{team}")
    async def team_page(request: Request, team: str, session: Auth) -> Response:
        from aar.analysis.progress import final_report

        state = known_team(request, team)
        settings = request.app.state.settings
        live = await run_in_threadpool(team_live, request, state, session)
        final = await run_in_threadpool(final_report, settings, team)
        others = [t for t in team_names(settings) if t != team]
        return render(request, "team.html", final=final, others=others, **live)

    @r.get("/teams/{team}/workers/{worker}")
    async def worker_page(request: Request, team: str, worker: str, session: Auth,
                          q: Annotated[str, Query(max_length=200)] = "") -> Response:
        state = known_team(request, team)
        known_worker(state, worker)
        settings = request.app.state.settings
        path = trajectory_path(settings, team, worker)
        if q.strip():
            lines = await run_in_threadpool(lambda: list(journal.search(path, q, limit=PAGE)))
            start, end = 0, journal.size_of(path)
        else:
            lines, start = await run_in_threadpool(journal.tail, path, None, PAGE)
            end = lines[-1].end if lines else start
        view = await run_in_threadpool(reader(request).view, team)
        row = next((w for w in view.workers if w.worker == worker), None)
        notebook = _notebook(settings, team, worker)
        return render(request, "worker.html", team=team, worker=worker, row=row, state=state, q=q,
                      entries=[entry(x, team) for x in lines], start=start, end=end,
                      notebook=markdown(notebook) if notebook is not None else None)

    @r.get("/teams/{team}/ideas")
    async def ideas_page(request: Request, team: str, session: Auth) -> Response:
        state = known_team(request, team)
        roots, error = await run_in_threadpool(_idea_tree, request, state)
        return render(request, "ideas.html", team=team, roots=roots, error=error)

    @r.get("/teams/{team}/report/report.html")
    async def report_html(request: Request, team: str, session: Auth) -> Response:
        known_team(request, team)
        return _report_file(request, team, "report.html", "text/html; charset=utf-8")

    @r.get("/teams/{team}/report/{name}.png")
    async def report_png(request: Request, team: str, name: str, session: Auth) -> Response:
        known_team(request, team)
        if name not in REPORT_PLOTS:
            raise HTTPException(404, "no such plot")
        return _report_file(request, team, f"{name}.png", "image/png")

    @r.get("/compare")
    async def compare_page(request: Request, session: Auth, a: Annotated[str, Query(max_length=64)] = "",
                           b: Annotated[str, Query(max_length=64)] = "") -> Response:
        settings = request.app.state.settings
        names = team_names(settings)
        plots: list[Any] = []
        if a and b:
            known_team(request, a)
            known_team(request, b)
            plots = await run_in_threadpool(_compare, request, a, b)
        return render(request, "compare.html", names=names, a=a, b=b, plots=plots)

    @r.get("/forum")
    async def forum_page(request: Request, session: Auth, q: Annotated[str, Query(max_length=200)] = "",
                         team: Annotated[str, Query(max_length=64)] = "") -> Response:
        from aar.hub.client import HubError

        if team:
            check_name(team, "team")
        try:
            findings, hits = await run_in_threadpool(_findings, request, session, q, team)
            error = None
        except HubError as exc:
            findings, hits, error = [], {}, str(exc)
        return render(request, "forum.html", findings=findings, hits=hits, q=q, team=team, error=error)

    @r.get("/forum/{finding_id}")
    async def finding_page(request: Request, finding_id: int, session: Auth) -> Response:
        from aar.hub.client import HubError

        if not 0 < finding_id < 2**31:
            raise HTTPException(404, "no such finding")

        def fetch() -> Any:
            with hub(request, session) as h:
                return h.finding(finding_id)

        try:
            f = await run_in_threadpool(fetch)
        except HubError as exc:
            raise HTTPException(404 if exc.status == 404 else 502, str(exc)) from None
        return render(request, "finding.html", f=f, body=markdown(f.body),
                      comments=[(c, markdown(c.body)) for c in f.comments or []])

    @r.get("/snapshots/{snapshot_id}")
    async def snapshot_page(request: Request, snapshot_id: str, session: Auth) -> Response:
        from aar.hub.client import HubError
        from aar.hub.snapshots import SnapshotError

        if not _is_sha(snapshot_id):
            raise HTTPException(404, "no such snapshot")
        try:
            meta, files = await run_in_threadpool(_snapshot_files, request, session, snapshot_id)
            error = None
        except HubError as exc:
            raise HTTPException(404 if exc.status == 404 else 502, str(exc)) from None
        except SnapshotError as exc:
            meta, files, error = None, [], str(exc)
        return render(request, "snapshot.html", sid=snapshot_id, meta=meta, files=files, error=error)

    @r.get("/testbeds")
    async def testbeds_page(request: Request, session: Auth) -> Response:
        rows = await run_in_threadpool(_testbeds, request.app.state.settings)
        return render(request, "testbeds.html", rows=rows)

    @r.get("/search")
    async def search_page(request: Request, session: Auth, q: Annotated[str, Query(max_length=200)] = "") -> Response:
        from aar.hub.client import HubError

        hits: list[Any] = []
        forum: list[Any] = []
        error = None
        if q.strip():
            hits = await run_in_threadpool(_search_trajectories, request, q)
            try:
                _, found = await run_in_threadpool(_findings, request, session, q, "")
                forum = list(found.values())
            except HubError as exc:
                error = str(exc)
        return render(request, "search.html", q=q, hits=hits, forum=forum, error=error)

    return r


# ------------------------------------------------------------------ helpers (run in the thread pool)


def team_live(request: Request, state: TeamState, session: Session) -> dict[str, Any]:
    """What the live part of a team page shows: workers, cost, the PGR plot, the leaderboard, report plots."""
    settings, team = request.app.state.settings, state.team
    view = reader(request).view(team)
    board, board_error = _leaderboard(state, session)
    return {"team": team, "view": view, "plot": pgr_plot(view), "board": board, "board_error": board_error,
            "plots": report_plots(settings, team), "job": request.app.state.jobs.get(team),
            "has_report": (report_dir(settings, team) / "report.html").is_file()}


def _is_sha(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _leaderboard(state: TeamState, session: Session) -> tuple[Any, str | None]:
    from aar.evalserver.client import EvalClient, EvalError
    from aar.evalserver.models import Leaderboard

    client = EvalClient(state.spec.eval_url, timeout=15)
    try:  # the admin view of this team (an admin token's own team is another)
        data = client._call("GET", "/v1/leaderboard", session.token,
                            params={"team": state.team, "testbed": state.spec.testbed})
        return client._model(Leaderboard, data), None
    except (EvalError, OSError) as exc:
        return None, str(exc)
    finally:
        client.close()


def _notebook(settings: Any, team: str, worker: str) -> str | None:
    """The worker's ``NOTEBOOK.md`` (agent-written: read without following links, capped)."""
    from aar.sandbox.files import UnsafePathError, read_beneath

    root = team_dir(settings, team) / "workers" / worker / "workspace"
    try:
        return read_beneath(root, "NOTEBOOK.md", max_bytes=512 << 10).decode(errors="replace")
    except (UnsafePathError, OSError):
        return None


def _report_file(request: Request, team: str, name: str, media: str) -> Response:
    from aar.sandbox.files import UnsafePathError, read_beneath

    try:
        data = read_beneath(report_dir(request.app.state.settings, team), name, max_bytes=64 << 20)
    except (UnsafePathError, OSError):
        raise HTTPException(404, "not written yet (build the report)") from None
    return Response(data, media_type=media)


def _findings(request: Request, session: Session, q: str, team: str) -> tuple[list[Any], dict[int, Any]]:
    """Findings newest first (all pages of the hub's change feed, capped) or, with ``q``, the search hits."""
    with hub(request, session) as h:
        if q.strip():
            result = h.search(q, limit=100)
            hits = {x.finding.id: x for x in result.hits if not team or x.finding.team == team}
            return [x.finding for x in hits.values()], hits
        found: dict[int, Any] = {}
        cursor = 0
        while len(found) < 5000:
            page = h.findings(since_rev=cursor, limit=500, **({"team": team} if team else {}))
            if not page.findings:
                break
            found.update({f.id: f for f in page.findings})
            cursor = page.cursor
    return sorted(found.values(), key=lambda f: f.created_at, reverse=True), {}


def _snapshot_files(request: Request, session: Session, sid: str) -> tuple[Any, list[dict[str, Any]]]:
    """A snapshot's record and its text files (checked member by member; nothing written to disk)."""
    from aar.hub.snapshots import SnapshotLimits, iter_members

    with hub(request, session) as h:
        meta = h.snapshot(sid)
        if meta.size > 64 << 20:
            return meta, []
        data = h.download_snapshot(sid)
    files = []
    for info, name, fh in iter_members(io.BytesIO(data), SnapshotLimits()):
        if fh is None:
            continue
        raw = fh.read(256 << 10)
        text = raw.decode("utf-8", errors="replace") if b"\x00" not in raw[:4096] else None
        files.append({"name": name, "size": info.size, "text": text, "cut": info.size > len(raw)})
    return meta, files


def _testbeds(settings: Any) -> list[dict[str, Any]]:
    """Each testbed; the prepared ones with their card (Markdown) and stored baselines (admin side)."""
    from aar.labels.card import load_card
    from aar.labels.store import labels_dir
    from aar.w2s.results import BaselineReport
    from aar.w2s.testbeds import list_testbeds
    from aar.w2s.testbeds.base import TestbedError

    rows = []
    for t in list_testbeds(settings):
        row: dict[str, Any] = {"info": t, "card": None, "baselines": None}
        if t.prepared:
            try:
                row["card"] = markdown(load_card(t.name, settings).to_markdown())
            except (TestbedError, OSError, ValueError) as exc:
                row["error"] = str(exc)
            path = labels_dir(t.name, settings) / "baselines.json"
            if path.is_file():
                try:
                    row["baselines"] = BaselineReport.model_validate_json(path.read_text())
                except ValueError as exc:
                    row["error"] = f"baselines.json unreadable: {str(exc).splitlines()[0]}"
        rows.append(row)
    return rows


def _search_trajectories(request: Request, q: str, per_worker: int = 20, total: int = 300) -> list[dict[str, Any]]:
    """Lines matching ``q`` in every worker's trajectory of every team (streamed; capped)."""
    settings = request.app.state.settings
    out: list[dict[str, Any]] = []
    for team in team_names(settings):
        try:
            state = load_state(settings, team)
        except (OSError, ValueError):
            continue
        for w in state.workers:
            for line in journal.search(trajectory_path(settings, team, w), q, limit=per_worker):
                out.append({"team": team, "worker": w, "entry": entry(line, team)})
                if len(out) >= total:
                    return out
    return out


def _idea_tree(request: Request, state: TeamState) -> tuple[list[dict[str, Any]], str | None]:
    """The team's ideas as a forest, each under the first idea it came from (``Idea.parents``)."""
    from aar.analysis.ideas import team_ideas
    from aar.httpclient import ServiceError

    try:
        found = team_ideas(request.app.state.settings, state.team)
    except (ServiceError, OSError) as exc:
        return [], f"ideas unavailable: {exc}"
    nodes: dict[str, dict[str, Any]] = {i.id: {"idea": i, "children": []} for i in found.ideas}
    roots = []
    for i in found.ideas:
        ps = [p for p in i.parents if p in nodes and p != i.id]
        if ps:
            nodes[ps[0]]["children"].append(nodes[i.id])
            nodes[i.id]["also"] = ps[1:]
        else:
            roots.append(nodes[i.id])
    return roots, None


def _compare(request: Request, a: str, b: str) -> list[Any]:
    """Two teams on one plot: team-best released PGR and idea-family entropy against AAR-hours."""
    from aar.analysis.diversity import entropy_curve
    from aar.analysis.ideas import idea_starts, team_ideas
    from aar.httpclient import ServiceError

    rd = reader(request)
    pgr, ent = [], []
    for t in (a, b):
        p = rd.view(t).progress
        pgr.append(Series(t, [x.aar_hours for x in p.team_best], [x.best for x in p.team_best], step=True))
        try:
            found = team_ideas(request.app.state.settings, t)
            pts = entropy_curve(*idea_starts(found.ideas, found.worker_end), min_workers=1)
            ent.append(Series(t, [x.aar_hours for x in pts], [x.entropy for x in pts]))
        except (ServiceError, OSError):
            continue
    return [svg_lines(pgr, "Team best released PGR", "cumulative AAR-hours (h)", "PGR (combined)"),
            svg_lines(ent, "Idea-family entropy (every active worker counted)", "cumulative AAR-hours (h)",
                      "entropy (bits)")]
