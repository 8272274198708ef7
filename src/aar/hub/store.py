"""The hub's durable state: findings (with comments, votes, full text), snapshot records, workers, events.

Every write is one transaction that also takes the next value of the ``rev`` counter and appends to
the event log where the write is an event; the caller is answered only after the commit (SQLite WAL
with ``synchronous=FULL``), so an acknowledged write survives a crash of the hub. Writes in one
process are serialised by a lock (SQLite allows one writer anyway, and this avoids busy-upgrade
failures); the counter row lock serialises writers across processes on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from aar.hub.models import Comment, Event, Finding, FindingIn, SnapshotMeta, WorkerInfo
from aar.hub.search import FullText
from aar.hub.tables import (
    CommentRow,
    CounterRow,
    EventRow,
    FindingRow,
    HubBase,
    SnapshotRow,
    VoteRow,
    WorkerRow,
    aware,
    utcnow,
)


class NotFound(LookupError):
    """The thing does not exist, or is not visible to the caller (answered 404)."""


class Invalid(ValueError):
    """The request is well-formed but refers to something wrong (answered 400)."""


FEED_COMMENTS = 50  # the newest comments of each finding in the change feed (and so in findings/ files)


class QuotaExceeded(ValueError):
    """A worker reached one of its hub quotas (answered 429)."""


@dataclass(frozen=True)
class HubQuotas:
    """What one worker may store on the hub: findings, comments, and compressed snapshot bytes."""

    findings: int = 2_000
    comments: int = 10_000
    snapshot_bytes: int = 4 * 2**30


def _finding(row: FindingRow) -> Finding:
    return Finding(id=row.id, rev=row.rev, team=row.team, author=row.author, title=row.title, body=row.body,
                   kind=row.kind, family=row.family, config=row.config or {},  # type: ignore[arg-type]
                   tags=list(row.tags or []), parents=list(row.parents or []),
                   submission_ids=list(row.submission_ids or []), scores=dict(row.scores or {}),
                   snapshot_id=row.snapshot_id, votes=row.votes, n_comments=row.n_comments,
                   created_at=aware(row.created_at))  # type: ignore[arg-type]


def _snapshot(row: SnapshotRow, created: bool = True) -> SnapshotMeta:
    return SnapshotMeta(id=row.id, team=row.team, worker_id=row.worker_id, note=row.note,
                        parent_id=row.parent_id, finding_id=row.finding_id, size=row.size,
                        unpacked_size=row.unpacked_size, n_files=row.n_files,
                        created_at=aware(row.created_at), created=created)  # type: ignore[arg-type]


def _event(row: EventRow) -> Event:
    return Event(seq=row.seq, time=aware(row.time), team=row.team, worker_id=row.worker_id,  # type: ignore[arg-type]
                 kind=row.kind, data=row.data or {})  # type: ignore[arg-type]


class HubStore:
    """Typed operations over the hub tables. ``team=None`` in a read means every team (admin view)."""

    def __init__(self, engine: Engine, on_change: Callable[[], None] | None = None,
                 heartbeat_timeout_s: float = 120.0, quotas: HubQuotas = HubQuotas()) -> None:
        self.engine = engine
        self.quotas = quotas
        HubBase.metadata.create_all(engine)
        self.fulltext = FullText(engine)
        self.on_change = on_change
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)
        self._lock = threading.Lock()
        with Session(engine) as s, s.begin():
            if s.get(CounterRow, "rev") is None:
                s.add(CounterRow(name="rev", value=0))

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._lock, Session(self.engine, expire_on_commit=False) as s:
            with s.begin():
                yield s
        if self.on_change is not None:
            self.on_change()

    @staticmethod
    def _next_rev(s: Session) -> int:
        value = s.execute(update(CounterRow).where(CounterRow.name == "rev")
                          .values(value=CounterRow.value + 1).returning(CounterRow.value)).scalar_one()
        return int(value)

    def _append_event(self, s: Session, team: str, worker_id: str, kind: str, data: dict[str, Any],
                      seq: int | None = None) -> EventRow:
        row = EventRow(seq=seq if seq is not None else self._next_rev(s), time=utcnow(), team=team,
                       worker_id=worker_id, kind=kind, data=data)
        s.add(row)
        return row

    def current_rev(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(CounterRow.value).where(CounterRow.name == "rev")) or 0)

    # ------------------------------------------------------------------ findings

    def _visible_finding(self, s: Session, finding_id: int, team: str | None) -> FindingRow:
        row = s.get(FindingRow, finding_id)
        if row is None or (team is not None and row.team != team):
            raise NotFound(f"finding {finding_id} not found")
        return row

    def check_finding_refs(self, fin: FindingIn, team: str | None) -> None:
        """Raise ``Invalid`` when a parent finding or the snapshot does not exist for this team."""
        with Session(self.engine) as s:
            for p in fin.parents:
                row = s.get(FindingRow, p)
                if row is None or (team is not None and row.team != team):
                    raise Invalid(f"parent finding {p} does not exist")
            if fin.snapshot_id is not None:
                if self._find_snapshot(s, fin.snapshot_id, team) is None:
                    raise Invalid(f"snapshot {fin.snapshot_id} does not exist")

    def create_finding(self, fin: FindingIn, team: str, author: str,
                       scores: dict[str, dict[str, Any]]) -> Finding:
        """Store a finding whose ``scores`` the caller fetched from the eval server."""
        with self._write() as s:
            rev = self._next_rev(s)  # first: the counter's row lock orders concurrent writers before the count
            n = s.scalar(select(func.count()).select_from(FindingRow).where(
                FindingRow.team == team, FindingRow.author == author)) or 0
            if n >= self.quotas.findings:
                raise QuotaExceeded(f"{author} has posted {n} findings, its quota; comment on or extend one")
            row = FindingRow(rev=rev, team=team, author=author, title=fin.title, body=fin.body, kind=fin.kind,
                             family=fin.family, config=fin.config, tags=fin.tags, parents=fin.parents,
                             submission_ids=fin.submission_ids, scores=scores, snapshot_id=fin.snapshot_id,
                             votes=0, n_comments=0, created_at=utcnow())
            s.add(row)
            s.flush()
            self.fulltext.index(s, row.id, fin.title, fin.body, fin.tags, fin.family, fin.kind)
            self._append_event(s, team, author, "finding", {
                "finding_id": row.id, "kind": fin.kind, "family": fin.family, "title": fin.title,
                "submission_ids": fin.submission_ids, "snapshot_id": fin.snapshot_id,
                "parents": fin.parents}, seq=rev)
        return _finding(row)

    def get_finding(self, finding_id: int, team: str | None, viewer: str | None = None) -> Finding:
        """A finding with its comments (and the viewer's own vote)."""
        with Session(self.engine) as s:
            row = self._visible_finding(s, finding_id, team)
            out = _finding(row)
            out.comments = self._comments(s, [finding_id]).get(finding_id, [])
            if viewer is not None:
                vote = s.get(VoteRow, (finding_id, viewer))
                out.my_vote = vote.value if vote is not None else 0
        return out

    @staticmethod
    def _comments(s: Session, ids: list[int], last: int | None = None) -> dict[int, list[Comment]]:
        """Comments of each finding in ``ids``, oldest first (only the ``last`` newest of each, if given)."""
        out: dict[int, list[Comment]] = {}
        if not ids:
            return out
        q = select(CommentRow).where(CommentRow.finding_id.in_(ids))
        if last is not None:
            newest = func.row_number().over(partition_by=CommentRow.finding_id, order_by=CommentRow.id.desc())
            ranked = select(CommentRow.id, newest.label("n")).where(CommentRow.finding_id.in_(ids)).subquery()
            q = q.where(CommentRow.id.in_(select(ranked.c.id).where(ranked.c.n <= last)))
        rows = s.scalars(q.order_by(CommentRow.id))
        for c in rows:
            out.setdefault(c.finding_id, []).append(Comment(
                id=c.id, finding_id=c.finding_id, author=c.author, body=c.body,
                created_at=aware(c.created_at)))  # type: ignore[arg-type]
        return out

    def list_findings(self, team: str | None, since_rev: int = 0, limit: int = 100,
                      kind: str | None = None, author: str | None = None, family: str | None = None,
                      tag: str | None = None, with_comments: bool = False) -> list[Finding]:
        """Findings changed after ``since_rev``, oldest change first (the sync's feed). With comments, each
        finding carries its ``FEED_COMMENTS`` newest (``n_comments`` counts all; ``get_finding`` has all),
        so a busy thread costs each sync pass a bounded amount, not every comment again."""
        with Session(self.engine) as s:
            q = select(FindingRow).where(FindingRow.rev > since_rev)
            if team is not None:
                q = q.where(FindingRow.team == team)
            if kind:
                q = q.where(FindingRow.kind == kind)
            if author:
                q = q.where(FindingRow.author == author)
            if family:
                q = q.where(FindingRow.family == family)
            rows = list(s.scalars(q.order_by(FindingRow.rev).limit(limit if not tag else 10 * limit)))
            if tag:
                rows = [r for r in rows if tag in (r.tags or [])][:limit]
            out = [_finding(r) for r in rows]
            if with_comments:
                comments = self._comments(s, [f.id for f in out], last=FEED_COMMENTS)
                for f in out:
                    f.comments = comments.get(f.id, [])
        return out

    def search(self, query: str, team: str | None, limit: int = 20) -> list[tuple[Finding, float, str]]:
        with Session(self.engine) as s:
            hits = self.fulltext.search(s, query, team, limit)
            rows = {r.id: r for r in s.scalars(select(FindingRow).where(
                FindingRow.id.in_([h.finding_id for h in hits])))}
        return [(_finding(rows[h.finding_id]), h.rank, h.snippet) for h in hits if h.finding_id in rows]

    def add_comment(self, finding_id: int, team: str | None, author: str, body: str) -> Comment:
        with self._write() as s:
            row = self._visible_finding(s, finding_id, team)
            rev = self._next_rev(s)
            n = s.scalar(select(func.count()).select_from(CommentRow).where(CommentRow.author == author)) or 0
            if n >= self.quotas.comments:
                raise QuotaExceeded(f"{author} has posted {n} comments, its quota")
            c = CommentRow(finding_id=finding_id, author=author, body=body, created_at=utcnow())
            s.add(c)
            row.rev = rev
            row.n_comments = row.n_comments + 1
            s.flush()
            self._append_event(s, row.team, author, "comment", {"finding_id": finding_id, "comment_id": c.id},
                               seq=rev)
        return Comment(id=c.id, finding_id=finding_id, author=author, body=body,
                       created_at=aware(c.created_at))  # type: ignore[arg-type]

    def vote(self, finding_id: int, team: str | None, voter: str, value: int) -> Finding:
        """Set the voter's vote (+1, -1, or 0 to withdraw); returns the finding with its new total."""
        with self._write() as s:
            row = self._visible_finding(s, finding_id, team)
            if row.author == voter:
                raise Invalid("you cannot vote on your own finding")
            old = s.get(VoteRow, (finding_id, voter))
            delta = value - (old.value if old is not None else 0)
            if old is None and value != 0:
                s.add(VoteRow(finding_id=finding_id, worker_id=voter, value=value))
            elif old is not None and value == 0:
                s.delete(old)
            elif old is not None:
                old.value = value
            if delta:
                row.votes = row.votes + delta
                row.rev = self._next_rev(s)
            out = _finding(row)
        out.my_vote = value
        return out

    # ------------------------------------------------------------------ snapshots

    @staticmethod
    def _find_snapshot(s: Session, snapshot_id: str, team: str | None) -> SnapshotRow | None:
        q = select(SnapshotRow).where(SnapshotRow.id == snapshot_id)
        if team is not None:
            q = q.where(SnapshotRow.team == team)
        return s.scalars(q.order_by(SnapshotRow.rev).limit(1)).first()

    def get_snapshot(self, snapshot_id: str, team: str | None) -> SnapshotMeta:
        with Session(self.engine) as s:
            row = self._find_snapshot(s, snapshot_id, team)
            if row is None:
                raise NotFound(f"snapshot {snapshot_id} not found")
            return _snapshot(row)

    def add_snapshot(self, meta: SnapshotMeta) -> SnapshotMeta:
        """Record a stored blob for a team (idempotent: identical content returns the first record).

        The links (``parent_id``, ``finding_id``) are checked on every upload, a re-upload included,
        and the owner's re-upload adds links the record lacks; one that contradicts a recorded link, or
        another worker's re-upload that carries links (it would re-link the owner's record), is refused.
        """
        with self._write() as s:
            if meta.parent_id is not None and (meta.parent_id == meta.id or
                                               self._find_snapshot(s, meta.parent_id, meta.team) is None):
                raise Invalid(f"parent snapshot {meta.parent_id} does not exist")
            if meta.finding_id is not None:
                f = s.get(FindingRow, meta.finding_id)
                if f is None or f.team != meta.team:
                    raise Invalid(f"finding {meta.finding_id} does not exist")
            existing = self._find_snapshot(s, meta.id, meta.team)
            if existing is not None:
                if existing.worker_id != meta.worker_id and (meta.parent_id or meta.finding_id) is not None:
                    raise Invalid(f"snapshot {meta.id[:12]} is {existing.worker_id}'s record; only its owner "
                                  "links it (cite its id from your finding instead)")
                for link in ("parent_id", "finding_id"):
                    given, stored = getattr(meta, link), getattr(existing, link)
                    if given is not None and stored is not None and given != stored:
                        raise Invalid(f"snapshot {meta.id[:12]} already records {link} {stored}; "
                                      f"identical content has one lineage")
                    if given is not None and stored is None:
                        setattr(existing, link, given)
                return _snapshot(existing, created=False)
            rev = self._next_rev(s)  # first: the counter's row lock orders concurrent uploads before the sum
            self._check_snapshot_quota(s, meta)
            row = SnapshotRow(id=meta.id, rev=rev, team=meta.team, worker_id=meta.worker_id, note=meta.note,
                              parent_id=meta.parent_id, finding_id=meta.finding_id, size=meta.size,
                              unpacked_size=meta.unpacked_size, n_files=meta.n_files, created_at=utcnow())
            s.add(row)
            self._append_event(s, meta.team, meta.worker_id, "snapshot", {
                "snapshot_id": meta.id, "parent_id": meta.parent_id, "finding_id": meta.finding_id,
                "size": meta.size, "n_files": meta.n_files}, seq=rev)
            return _snapshot(row)

    def check_snapshot_quota(self, meta: SnapshotMeta) -> None:
        """Raise ``QuotaExceeded`` when storing ``meta`` (new content) would pass its worker's byte quota;
        the hub calls this before it writes the blob, and :meth:`add_snapshot` again when recording."""
        with Session(self.engine) as s:
            if self._find_snapshot(s, meta.id, meta.team) is None:
                self._check_snapshot_quota(s, meta)

    def _check_snapshot_quota(self, s: Session, meta: SnapshotMeta) -> None:
        used = s.scalar(select(func.coalesce(func.sum(SnapshotRow.size), 0)).where(
            SnapshotRow.team == meta.team, SnapshotRow.worker_id == meta.worker_id)) or 0
        if used + meta.size > self.quotas.snapshot_bytes:
            raise QuotaExceeded(f"{meta.worker_id}'s snapshots hold {used} bytes; this one ({meta.size}) would "
                                f"pass its quota of {self.quotas.snapshot_bytes}")

    def list_snapshots(self, team: str | None, worker_id: str | None = None,
                       limit: int = 100) -> list[SnapshotMeta]:
        with Session(self.engine) as s:
            q = select(SnapshotRow)
            if team is not None:
                q = q.where(SnapshotRow.team == team)
            if worker_id:
                q = q.where(SnapshotRow.worker_id == worker_id)
            return [_snapshot(r) for r in s.scalars(q.order_by(SnapshotRow.rev.desc()).limit(limit))]

    # ------------------------------------------------------------------ workers and events

    def _worker_info(self, row: WorkerRow, now: datetime) -> WorkerInfo:
        hb = aware(row.last_heartbeat)
        fresh = hb is not None and now - hb <= self.heartbeat_timeout
        alive = fresh and row.status not in ("stopped", "crashed")
        return WorkerInfo(worker_id=row.worker_id, team=row.team, status=row.status, info=row.info or {},
                          registered_at=aware(row.registered_at), last_heartbeat=hb,  # type: ignore[arg-type]
                          alive=alive)

    def register_worker(self, worker_id: str, team: str, info: dict[str, Any]) -> WorkerInfo:
        """Create or refresh a worker's record and log ``worker_started``."""
        now = utcnow()
        with self._write() as s:
            row = s.get(WorkerRow, worker_id)
            if row is None:
                row = WorkerRow(worker_id=worker_id, team=team, registered_at=now)
                s.add(row)
            row.team, row.info, row.status, row.last_heartbeat = team, info, "started", now
            self._append_event(s, team, worker_id, "worker_started", {"info": info})
            out = self._worker_info(row, now)
        return out

    def heartbeat(self, worker_id: str, team: str, status: str | None) -> WorkerInfo:
        now = utcnow()
        with self._lock, Session(self.engine, expire_on_commit=False) as s, s.begin():
            row = s.get(WorkerRow, worker_id)
            if row is None:
                row = WorkerRow(worker_id=worker_id, team=team, registered_at=now, info={}, status="started")
                s.add(row)
            row.last_heartbeat = now
            if status:
                row.status = status
            return self._worker_info(row, now)

    def list_workers(self, team: str | None) -> list[WorkerInfo]:
        now = datetime.now(UTC)
        with Session(self.engine) as s:
            q = select(WorkerRow)
            if team is not None:
                q = q.where(WorkerRow.team == team)
            return [self._worker_info(r, now) for r in s.scalars(q.order_by(WorkerRow.worker_id))]

    _STATUS_AFTER = {"session_started": "running", "session_ended": "idle", "crash": "crashed",
                     "stop": "stopped", "worker_started": "started"}

    def post_event(self, team: str, worker_id: str, kind: str, data: dict[str, Any]) -> Event:
        """Append an event; lifecycle kinds also move the worker's status."""
        with self._write() as s:
            row = self._append_event(s, team, worker_id, kind, data)
            if kind in self._STATUS_AFTER:
                w = s.get(WorkerRow, worker_id)
                if w is None:
                    w = WorkerRow(worker_id=worker_id, team=team, registered_at=utcnow(), info={})
                    s.add(w)
                w.status = self._STATUS_AFTER[kind]
            out = _event(row)
        return out

    def list_events(self, team: str | None, since: int = 0, limit: int = 500, kind: str | None = None,
                    worker_id: str | None = None) -> list[Event]:
        with Session(self.engine) as s:
            q = select(EventRow).where(EventRow.seq > since)
            if team is not None:
                q = q.where(EventRow.team == team)
            if kind:
                q = q.where(EventRow.kind == kind)
            if worker_id:
                q = q.where(EventRow.worker_id == worker_id)
            return [_event(r) for r in s.scalars(q.order_by(EventRow.seq).limit(limit))]
