"""Bearer tokens shared by the eval server and the hub: one per worker, plus admin tokens.

Tokens are random, shown once at creation, and stored only as SHA-256 hashes. Protects against a
leaked database revealing usable tokens; does not protect against a token copied out of a sandbox
(revoke it with ``revoke_worker``).

Verifications are cached per process, but every revocation also bumps a counter in the same database
(``auth_meta.revocations``, in the revoking transaction): a token revoked by any process (``aar token
revoke``) is refused on the very next request to either service. With SQLite the revoking process
also appends a byte to a file beside the database (``auth.db.revoked``), so ``verify`` need only
``stat`` that file (microseconds) and reads the counter when it changed; with PostgreSQL every
``verify`` reads the counter (one single-row query).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import HTTPException
from sqlalchemy import BigInteger, Boolean, DateTime, Engine, String, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

Role = Literal["worker", "admin"]
TOKEN_PREFIX = "aar_"


class AuthBase(DeclarativeBase):
    pass


class TokenRow(AuthBase):
    __tablename__ = "auth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128), index=True)
    team: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuthMeta(AuthBase):
    """Counters shared by every process using the token store (``revocations``)."""

    __tablename__ = "auth_meta"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


REVOCATIONS = "revocations"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a worker of a team, or an admin."""

    worker_id: str
    team: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Create, verify and revoke tokens in a SQL database (verification results cached in memory)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            AuthBase.metadata.create_all(engine)
        except (OperationalError, ProgrammingError, IntegrityError):  # another service created them first
            AuthBase.metadata.create_all(engine)
        self._cache: dict[str, Principal | None] = {}
        self._lock = threading.Lock()
        try:
            with Session(engine) as s, s.begin():
                if s.get(AuthMeta, REVOCATIONS) is None:
                    s.add(AuthMeta(key=REVOCATIONS, value=0))
        except IntegrityError:  # another process created it first
            pass
        db = engine.url.database if engine.dialect.name == "sqlite" else None
        self._signal = Path(db + ".revoked") if db and db != ":memory:" else None
        self._signal_seen = self._signal_state()
        self._seen = self.revocations()

    def _signal_state(self) -> tuple[int, int, int] | None:
        if self._signal is None:
            return None
        try:
            st = os.stat(self._signal)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _maybe_revoked(self) -> bool:
        """Whether a revocation may have happened since the last check (cheap with SQLite)."""
        if self._signal is None:
            return True
        state = self._signal_state()
        if state == self._signal_seen:
            return False
        self._signal_seen = state
        return True

    def revocations(self) -> int:
        """How many revocations any process has made (the cache is valid while this is unchanged)."""
        with self.engine.connect() as c:
            return int(c.scalar(select(AuthMeta.value).where(AuthMeta.key == REVOCATIONS)) or 0)

    def create(self, worker_id: str, team: str = "default", role: Role = "worker") -> str:
        """Create a token and return it in clear text (the only time it is visible)."""
        if not worker_id or len(worker_id) > 128 or not team or len(team) > 128:
            raise ValueError("worker id and team must be 1-128 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as s, s.begin():
            s.add(TokenRow(token_hash=hash_token(token), worker_id=worker_id, team=team, role=role,
                           created_at=datetime.now(UTC), revoked=False))
        return token

    def revoke_worker(self, worker_id: str) -> int:
        """Revoke every token of a worker; returns how many were revoked."""
        with Session(self.engine) as s, s.begin():
            result = s.execute(update(TokenRow).where(TokenRow.worker_id == worker_id).values(revoked=True))
            n = getattr(result, "rowcount", 0)
            s.execute(update(AuthMeta).where(AuthMeta.key == REVOCATIONS).values(value=AuthMeta.value + 1))
        if self._signal is not None:  # after the commit: whoever sees the signal reads the new counter
            fd = os.open(self._signal, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0),
                         0o600)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        with self._lock:
            self._cache.clear()
        return int(n or 0)

    def clear_cache(self) -> None:
        """Forget cached verifications, so revocations made by another process take effect here."""
        with self._lock:
            self._cache.clear()

    def verify(self, token: str | None) -> Principal | None:
        """The principal a token belongs to, or None when it is unknown or revoked."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        h = hash_token(token)
        if self._maybe_revoked():  # a revocation anywhere invalidates this process's cache at once
            seen = self.revocations()
            with self._lock:
                if seen != self._seen:
                    self._cache.clear()
                    self._seen = seen
        with self._lock:
            if h in self._cache:
                return self._cache[h]
        with Session(self.engine) as s:
            row = s.scalar(select(TokenRow).where(TokenRow.token_hash == h))
        principal = None
        if row is not None and not row.revoked:
            principal = Principal(row.worker_id, row.team, row.role)  # type: ignore[arg-type]
        with self._lock:
            if principal is not None:
                self._cache[h] = principal
        return principal


def require_admin(principal: Principal) -> Principal:
    """Raise 403 unless the principal is an admin."""
    if not principal.is_admin:
        raise HTTPException(403, "admin token required")
    return principal
