"""The dashboard's write actions (POST, CSRF-checked): login, logout, launch a team, stop it, build its report.

Launch builds a :class:`~aar.orchestrator.team.TeamSpec` from the form (an optional TOML box holds any
other field) and calls :func:`~aar.orchestrator.team.launch`, as ``aar team launch`` does; stop calls
:func:`~aar.orchestrator.team.request_stop` (the supervisor stops the workers), or
:func:`~aar.orchestrator.team.stop_team` in the background when no supervisor runs; the report is
:func:`~aar.analysis.report.build_report` written where ``aar report`` writes it.
"""

from __future__ import annotations

import threading
import tomllib
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aar.dashboard.app import render
from aar.dashboard.pages import known_team, logged_in
from aar.dashboard.security import COOKIE, SESSION_TTL_S, Session, check_csrf, same_origin

MAX_FORM = 64 << 10


async def form_of(request: Request) -> dict[str, str]:
    """The urlencoded form (capped; only string fields)."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM:
        raise HTTPException(413, "form too large")
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def checked(request: Request) -> tuple[Session, dict[str, str]]:
    """The session and form of a write action (401 without a session, 403 without the CSRF token)."""
    session = logged_in(request)
    form = await form_of(request)
    check_csrf(request, session, form.get("csrf"))
    return session, form


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def spec_from_form(form: dict[str, str], config: Any) -> Any:
    """A ``TeamSpec`` from the launch form (``ValueError`` / ``ValidationError`` on bad input)."""
    from aar.orchestrator.team import TeamSpec

    data: dict[str, Any] = tomllib.loads(form.get("toml", "") or "")
    data.setdefault("hub_url", config.hub_url)
    data.setdefault("eval_url", config.eval_url)

    def num(name: str, cast: Any = float) -> Any:
        raw = (form.get(name) or "").strip()
        return cast(raw) if raw else None

    for key in ("team", "kind", "mode", "testbed", "sandbox"):
        if (form.get(key) or "").strip():
            data[key] = form[key].strip()
    if num("workers", int) is not None:
        data["workers"] = num("workers", int)
    directions = [d.strip() for d in (form.get("directions") or "").splitlines() if d.strip()]
    if directions:
        data["directions"] = directions
    budget = data.setdefault("budget", {})
    for field, key, scale in (("minutes", "wall_s", 60.0), ("submissions", "submissions", 1),
                              ("dollars", "dollars", 1.0), ("tokens", "tokens", 1)):
        v = num(field)
        if v is not None:
            budget[key] = int(v) if key in ("submissions", "tokens") else v * scale
    team_budget = data.setdefault("team_budget", {})
    for field, key in (("team_hours", "worker_hours"), ("team_dollars", "dollars"),
                       ("team_submissions", "submissions")):
        v = num(field)
        if v is not None:
            team_budget[key] = int(v) if key == "submissions" else v
    return TeamSpec.model_validate(data)


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/login")
    async def login_page(request: Request) -> Response:
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")), error=None)

    @r.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        if not same_origin(request):
            raise HTTPException(403, "cross-origin request refused")
        made = request.app.state.sessions.login(form.get("token", ""))
        target = _safe_next(form.get("next"))
        if made is None:
            return render(request, "login.html", status=401, next=target,
                          error="not an admin token (create one: aar token create --worker you --admin)")
        sid, _ = made
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, sid, max_age=int(SESSION_TTL_S), httponly=True, samesite="strict", path="/",
                            secure=request.app.state.config.secure_cookie)
        return response

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        await checked(request)
        request.app.state.sessions.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @r.post("/teams")
    async def launch_team(request: Request) -> Response:
        from pydantic import ValidationError

        from aar.httpclient import ServiceError
        from aar.orchestrator.team import launch

        _, form = await checked(request)
        settings = request.app.state.settings
        try:
            spec = spec_from_form(form, request.app.state.config)
            state = await run_in_threadpool(launch, spec, settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            message = f"bad team config: {'.'.join(map(str, err['loc']))}: {err['msg']}"
            return RedirectResponse("/?error=" + quote(message), status_code=303)
        except (ValueError, tomllib.TOMLDecodeError, ServiceError, OSError) as exc:
            return RedirectResponse("/?error=" + quote(f"launch failed: {exc}"[:500]), status_code=303)
        return RedirectResponse(f"/teams/{state.team}", status_code=303)

    @r.post("/teams/{team}/stop")
    async def stop(request: Request, team: str) -> Response:
        from aar.orchestrator.team import alive, request_stop, stop_team

        await checked(request)
        state = known_team(request, team)
        settings = request.app.state.settings
        if state.phase in ("running", "stopping"):
            request_stop(settings, team, "stopped from the dashboard")
            if not alive(state.supervisor_pid, state.supervisor_start):
                _background(request, team, "stopping", lambda: stop_team(settings, team))
        return RedirectResponse(f"/teams/{team}", status_code=303)

    @r.post("/teams/{team}/report")
    async def build(request: Request, team: str) -> Response:
        await checked(request)
        known_team(request, team)
        settings = request.app.state.settings

        def work() -> None:
            from aar.analysis.report import build_report, gather, write_report
            from aar.dashboard.views import report_dir

            write_report(build_report(gather(settings, team)), report_dir(settings, team))

        _background(request, team, "building the report", work)
        return RedirectResponse(f"/teams/{team}#report", status_code=303)

    return r


def _background(request: Request, team: str, what: str, work: Any) -> None:
    """Run ``work`` in a thread once per team at a time; its state shows on the team page."""
    jobs: dict[str, str] = request.app.state.jobs
    if jobs.get(team, "").endswith("…"):
        return
    jobs[team] = what + "…"

    def run() -> None:
        try:
            work()
            jobs[team] = f"{what}: done"
        except Exception as exc:  # shown on the page, never raised into the server
            jobs[team] = f"{what} failed: {type(exc).__name__}: {exc}"[:500]

    threading.Thread(target=run, name=f"dash-{team}", daemon=True).start()
