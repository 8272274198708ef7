"""The eval server's append-only audit log (SQLAlchemy 2 over SQLite WAL or PostgreSQL).

Three append-only tables: submissions (one row per accepted submission, with its predictions, true
public score, released values, flags, mechanism state and a hash chain), team configuration changes,
and finalisation reports. Database triggers refuse UPDATE and DELETE. Submissions are written by one
``Writer`` thread that commits queued rows in groups (one durable commit for many submissions); a
submission is acknowledged only after its commit returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Row

metadata = MetaData()
GENESIS = "0" * 64

submissions = Table(
    "eval_submissions", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(40), unique=True, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("team", String(128), nullable=False),
    Column("worker_id", String(128), nullable=False),
    Column("testbed", String(64), nullable=False),
    Column("mechanism", String(16), nullable=False),
    Column("pred_hash", String(64), nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("seed", BigInteger), Column("note", Text), Column("snapshot_id", String(128)),
    Column("public_acc", Float, nullable=False),
    Column("true_public", Text, nullable=False),
    Column("released", Text, nullable=False),
    Column("team_released", Text, nullable=False),
    Column("flags", Text, nullable=False),
    Column("detect", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("predictions", LargeBinary, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
    Index("ix_eval_sub_team", "team", "testbed", "seq"),
    Index("ix_eval_sub_worker", "team", "worker_id", "seq"),
)
team_configs = Table(
    "eval_team_configs", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("team", String(128), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("set_by", String(128), nullable=False),
    Column("config", Text, nullable=False),
)
finalizations = Table(
    "eval_finalizations", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("team", String(128), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("by", String(128), nullable=False),
    Column("report", Text, nullable=False),
)
APPEND_ONLY = (submissions, team_configs, finalizations)
#: Columns hashed into the chain (everything but the predictions themselves, which ``pred_hash`` covers).
CHAINED = [c.name for c in submissions.columns if c.name not in ("seq", "predictions", "row_hash")]
LISTED = [c for c in submissions.columns if c.name != "predictions"]


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) used for stored JSON and for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def row_hash(row: dict[str, Any]) -> str:
    """Hash-chain link of a submission row: sha256 over its chained columns (which include prev_hash)."""
    return hashlib.sha256(dumps({k: row[k] for k in CHAINED}).encode()).hexdigest()


def _install_append_only(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for table in APPEND_ONLY:
                for op in ("UPDATE", "DELETE"):
                    conn.execute(text(
                        f"CREATE TRIGGER IF NOT EXISTS {table.name}_no_{op.lower()} BEFORE {op} "
                        f"ON {table.name} BEGIN SELECT RAISE(ABORT, '{table.name} is append-only'); END"))
        elif engine.dialect.name == "postgresql":
            conn.execute(text(
                "CREATE OR REPLACE FUNCTION aar_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"))
            for table in APPEND_ONLY:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table.name}_append_only ON {table.name}"))
                conn.execute(text(f"CREATE TRIGGER {table.name}_append_only BEFORE UPDATE OR DELETE ON "
                                  f"{table.name} FOR EACH ROW EXECUTE FUNCTION aar_append_only()"))


class Store:
    """Reads and appends of the audit log; safe to use from several threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)
        _install_append_only(engine)

    # ------------------------------------------------------------------ submissions
    def last_hash(self) -> str:
        with self.engine.connect() as c:
            h = c.scalar(select(submissions.c.row_hash).order_by(submissions.c.seq.desc()).limit(1))
        return h or GENESIS

    def scope_state(self, team: str, testbed: str, mechanism: str,
                    worker: str | None) -> dict[str, Any] | None:
        """The latest stored mechanism state of a scope (a worker when ``worker`` is given, else the team)."""
        q = select(submissions.c.state).where(submissions.c.team == team, submissions.c.testbed == testbed,
                                              submissions.c.mechanism == mechanism)
        if worker is not None:
            q = q.where(submissions.c.worker_id == worker)
        with self.engine.connect() as c:
            raw = c.scalar(q.order_by(submissions.c.seq.desc()).limit(1))
        if raw is None:
            return None
        found: dict[str, Any] | None = json.loads(raw).get("worker" if worker is not None else "team")
        return found

    def predictions(self, sub_id: str) -> bytes | None:
        with self.engine.connect() as c:
            return c.scalar(select(submissions.c.predictions).where(submissions.c.id == sub_id))

    def recent(self, team: str, testbed: str, limit: int) -> list[Row]:
        """The team's last ``limit`` submissions on a testbed, oldest first (with predictions)."""
        c_ = submissions.c
        q = (select(c_.id, c_.worker_id, c_.predictions, c_.detect)
             .where(submissions.c.team == team, submissions.c.testbed == testbed)
             .order_by(submissions.c.seq.desc()).limit(limit))
        with self.engine.connect() as c:
            return list(reversed(c.execute(q).all()))

    def usage(self, team: str, worker: str | None, since: float) -> tuple[int, list[float]]:
        """Submissions of a worker (or, with ``worker`` None, of the whole team): total, and times since."""
        where = [submissions.c.team == team]
        if worker is not None:
            where.append(submissions.c.worker_id == worker)
        with self.engine.connect() as c:
            total = c.scalar(select(func.count()).select_from(submissions).where(*where)) or 0
            recent = c.scalars(select(submissions.c.created_at)
                               .where(*where, submissions.c.created_at > since))
            return int(total), list(recent)

    def get(self, sub_id: str) -> Row | None:
        with self.engine.connect() as c:
            return c.execute(select(*LISTED).where(submissions.c.id == sub_id)).first()

    def list(self, *, team: str | None = None, worker: str | None = None, testbed: str | None = None,
             after: int = 0, limit: int = 100) -> list[Row]:
        """Submissions in audit order (without predictions), filtered."""
        q = select(*LISTED).where(submissions.c.seq > after)
        if team is not None:
            q = q.where(submissions.c.team == team)
        if worker is not None:
            q = q.where(submissions.c.worker_id == worker)
        if testbed is not None:
            q = q.where(submissions.c.testbed == testbed)
        with self.engine.connect() as c:
            return list(c.execute(q.order_by(submissions.c.seq).limit(limit)).all())

    def iter_all(self, team: str | None = None, batch: int = 1000) -> Iterator[Row]:
        """Every submission (without predictions) in audit order."""
        after = 0
        while rows := self.list(team=team, after=after, limit=batch):
            yield from rows
            after = rows[-1].seq

    def max_seq(self) -> int:
        with self.engine.connect() as c:
            return int(c.scalar(select(func.max(submissions.c.seq))) or 0)

    # ------------------------------------------------------------------ team configuration
    def team_config(self, team: str) -> dict[str, Any] | None:
        q = (select(team_configs.c.config).where(team_configs.c.team == team)
             .order_by(team_configs.c.seq.desc()))
        with self.engine.connect() as c:
            raw = c.scalar(q.limit(1))
        return None if raw is None else json.loads(raw)

    def append_team_config(self, team: str, config: dict[str, Any], set_by: str, now: float) -> None:
        with self.engine.begin() as c:
            c.execute(insert(team_configs).values(team=team, created_at=now, set_by=set_by,
                                                  config=dumps(config)))

    def append_finalization(self, team: str, report: dict[str, Any], by: str, now: float) -> None:
        with self.engine.begin() as c:
            c.execute(insert(finalizations).values(team=team, created_at=now, by=by, report=dumps(report)))

    def iter_table(self, table: Table, team: str | None = None) -> Iterator[Row]:
        q = select(table)
        if team is not None:
            q = q.where(table.c.team == team)
        with self.engine.connect() as c:
            yield from c.execute(q.order_by(table.c.seq)).all()


#: Key of the PostgreSQL advisory lock that one eval server holds on its database ("aar_eval").
SERVER_LOCK_KEY = 0x6161725F6576616C


@contextlib.contextmanager
def server_lock(engine: Engine) -> Iterator[None]:
    """Hold the database for one eval server process, or raise ``RuntimeError`` if another holds it.

    The in-memory state (hash-chain head, budgets, ladders) mirrors a log that only this process
    appends to; a second server on the same database would fork the chain and double the budgets.
    PostgreSQL: a session advisory lock held on a dedicated connection. SQLite: ``flock`` on a file
    beside the database file.
    """
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        conn.detach()  # never back to the pool: closing it ends the session and so releases the lock
        try:
            if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": SERVER_LOCK_KEY}):
                raise RuntimeError("another eval server is using this database")
            conn.commit()
            yield
        finally:
            conn.close()
        return
    db = engine.url.database
    if engine.dialect.name != "sqlite" or not db or db == ":memory:":
        yield
        return
    path = Path(db).with_name(Path(db).name + ".server.lock")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another eval server is using {db}") from None
        yield
    finally:
        os.close(fd)


class StaleState(RuntimeError):
    """A queued submission was computed from state that a failed commit invalidated (answered 503)."""


@dataclass
class _Pending:
    row: dict[str, Any]
    gen: int
    future: Future[None]


class Writer:
    """One thread that appends queued submission rows, many per durable commit (group commit).

    If a commit fails, its rows and every row queued from the same in-memory state generation fail
    too, and ``on_failure`` is called so the service reloads its state from the log.
    """

    def __init__(self, engine: Engine, batch: int = 256,
                 on_failure: Callable[[int], None] | None = None) -> None:
        self.engine, self.batch, self.on_failure = engine, batch, on_failure
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self.failed_gen = -1
        self._thread = threading.Thread(target=self._run, name="aar-eval-writer", daemon=True)
        self._thread.start()

    def put(self, row: dict[str, Any], gen: int) -> Future[None]:
        fut: Future[None] = Future()
        self._queue.put(_Pending(row, gen, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.gen > self.failed_gen]
        for p in batch:
            if p.gen <= self.failed_gen:
                p.future.set_exception(StaleState("state was reloaded after a failed commit; resubmit"))
        if not live:
            return
        try:
            with self.engine.begin() as c:
                c.execute(insert(submissions), [p.row for p in live])
        except Exception as exc:  # every failure must reach the waiting requests
            self.failed_gen = max(p.gen for p in live)
            if self.on_failure is not None:  # first, so the reload is queued before any answer
                self.on_failure(self.failed_gen)
            for p in live:
                p.future.set_exception(exc)
            return
        for p in live:
            p.future.set_result(None)
