"""The dashboard app: ``create_app(settings, config)``, served by ``aar serve`` (127.0.0.1:8712).

Server-rendered pages (Jinja, autoescaped) over the stores, plus a little JavaScript from
``/static`` for the live parts (a "what changed" poll with ETag / 304, transcripts followed by byte
offset). Admin login and CSRF: :mod:`aar.dashboard.security`. Pages: :mod:`aar.dashboard.pages`;
write actions: :mod:`aar.dashboard.actions`; live endpoints: :mod:`aar.dashboard.live`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from aar.auth import TokenStore
from aar.config import Settings, get_settings
from aar.dashboard.security import CSP, HEADERS, REPORT_CSP, LoginRequired, Sessions
from aar.dashboard.views import TeamReader
from aar.db import make_engine
from aar.servicekit import add_health

STATIC = Path(__file__).parent / "static"


class DashboardConfig(BaseSettings):
    """Dashboard options (environment ``AAR_DASH_*``; service URLs also from ``AAR_HUB_URL`` / ``AAR_EVAL_URL``)."""

    model_config = SettingsConfigDict(env_prefix="AAR_DASH_", extra="ignore")

    hub_url: str = Field(default="http://127.0.0.1:8711",
                         validation_alias=AliasChoices("hub_url", "AAR_DASH_HUB_URL", "AAR_HUB_URL"))
    eval_url: str = Field(default="http://127.0.0.1:8710",
                          validation_alias=AliasChoices("eval_url", "AAR_DASH_EVAL_URL", "AAR_EVAL_URL"))
    stale_s: float = Field(default=600.0, gt=0, description="A running worker silent this long is marked stale.")
    poll_ms: int = Field(default=2000, ge=200, description="How often open pages ask what changed.")
    secure_cookie: bool = Field(default=False, description="Set when serving behind HTTPS.")


def templates() -> Environment:
    """The Jinja environment: package templates, autoescape on for every template."""
    env = Environment(loader=PackageLoader("aar.dashboard", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"
    env.filters["when"] = lambda t: "-" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")
    env.filters["hms"] = lambda t: "-" if t is None else t.strftime("%H:%M:%S")
    env.filters["dollars"] = lambda c: "unknown" if c is None or c.dollars is None else f"${c.dollars:,.2f}"
    return env


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render a template with the session (for its CSRF token) and the config in the context."""
    app = request.app
    session = getattr(request.state, "session", None)
    html = app.state.jinja.get_template(name).render(request=request, session=session, config=app.state.config,
                                                    **ctx)
    return HTMLResponse(html, status_code=status)


def create_app(settings: Settings | None = None, config: DashboardConfig | None = None) -> FastAPI:
    """Build the dashboard over ``settings`` (AAR_HOME) with ``config``."""
    from aar.dashboard import actions, live, pages

    settings = settings or get_settings()
    config = config or DashboardConfig()
    app = FastAPI(title="aar dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.config = settings, config
    app.state.tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    app.state.sessions = Sessions(app.state.tokens)
    app.state.jinja = templates()
    app.state.reader = TeamReader(settings, stale_s=config.stale_s)
    app.state.jobs = {}  # team -> what a background action (report, stop) is doing

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        report = request.url.path.endswith("/report.html")
        response.headers["Content-Security-Policy"] = REPORT_CSP if report else CSP
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        if request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "max-age=300"
        return response

    async def login_required(request: Request, _: Exception) -> Response:
        if request.url.path.startswith("/api/") or request.method != "GET":
            return Response('{"detail": "login required"}', status_code=401, media_type="application/json")
        return RedirectResponse("/login?next=" + _next(request), status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/api/"):
            return Response(f'{{"detail": "{exc.status_code}"}}', status_code=exc.status_code,
                            media_type="application/json")
        return render(request, "error.html", status=exc.status_code, code=exc.status_code, detail=str(exc.detail))

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    add_health(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router())
    app.include_router(actions.router())
    app.include_router(live.router())
    return app


def _next(request: Request) -> str:
    from urllib.parse import quote

    path = request.url.path
    return quote(path if path.startswith("/") and not path.startswith("//") else "/", safe="/")
