"""The dashboard's doors: admin login, server-side sessions, CSRF, security headers, name checks.

Threat model. The dashboard shows text that hostile agents wrote (findings, notebooks, tool output) to
an admin whose session can launch and stop teams. It protects against:

* a page being read or changed without the admin token: every route but ``/login``, ``/healthz`` and
  ``/static`` needs a session; a session is made only by a token that the shared token store knows as
  an admin, and it is checked again (revocation) on every request;
* cross-site requests: the session cookie is ``HttpOnly``, ``SameSite=Strict``; every POST also carries
  the session's CSRF token (compared with ``hmac.compare_digest``) and, when the browser sends one, an
  ``Origin`` equal to the dashboard's own;
* agent text scripting the page: templates autoescape, Markdown goes through
  :func:`aar.dashboard.render.markdown` (no raw HTML, http/https/relative links only), and the
  Content-Security-Policy (``script-src 'self'``, no inline script) blocks an escaping mistake too;
* paths from URLs: team and worker names must match :data:`NAME` and name a known team / worker before
  anything touches the disk; agent-written files are read with ``aar.sandbox.files.read_beneath``.

It does not protect against someone who holds the admin token, nor against a hostile local user of
this machine (the server binds to loopback by default).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from aar.agents.worker import NAME
from aar.auth import TokenStore

COOKIE = "aar_dash"
SESSION_TTL_S = 12 * 3600
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
#: The static report (``aar report``) embeds its plots as data: URLs and has no script at all.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}


class LoginRequired(Exception):
    """No valid session: pages redirect to ``/login``, the API answers 401."""


@dataclass
class Session:
    token: str = field(repr=False)
    who: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    expires: float = field(default_factory=lambda: time.time() + SESSION_TTL_S)


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Sessions:
    """Server-side sessions keyed by the hash of a random id (the cookie holds only the id)."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._by_key: dict[str, Session] = {}
        self._lock = threading.Lock()

    def login(self, token: str) -> tuple[str, Session] | None:
        """A new session for an admin ``token`` (None: unknown, revoked, or not an admin)."""
        principal = self.tokens.verify(token.strip())
        if principal is None or not principal.is_admin:
            return None
        sid = secrets.token_urlsafe(32)
        session = Session(token=token.strip(), who=principal.worker_id)
        with self._lock:
            now = time.time()
            self._by_key = {k: s for k, s in self._by_key.items() if s.expires > now}
            self._by_key[_key(sid)] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session of a cookie value; its token must still be a valid admin token."""
        if not sid or len(sid) > 100:
            return None
        with self._lock:
            session = self._by_key.get(_key(sid))
        if session is None or session.expires < time.time():
            return None
        principal = self.tokens.verify(session.token)
        if principal is None or not principal.is_admin:
            self.logout(sid)
            return None
        return session

    def logout(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._by_key.pop(_key(sid), None)


def session_of(request: Request) -> Session:
    """FastAPI dependency: the request's session (``LoginRequired`` otherwise)."""
    sessions: Sessions = request.app.state.sessions
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired()
    return session


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (``Origin`` / ``Referer``)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source != "null"
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


def check_csrf(request: Request, session: Session, sent: str | None) -> None:
    """403 unless ``sent`` equals the session's CSRF token and the request is same-origin."""
    if not same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(403, "missing or wrong CSRF token (reload the page)")


def check_name(value: str, what: str = "name") -> str:
    """``value`` if it is a valid team / worker name (``NAME``), else 404 (nothing on disk is touched)."""
    if not NAME.fullmatch(value) or ".." in value:
        raise HTTPException(404, f"no such {what}")
    return value
