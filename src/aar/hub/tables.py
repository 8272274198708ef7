"""SQL tables of the hub (prefixed ``hub_`` so they can share one PostgreSQL database with other services)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class HubBase(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite drops tzinfo; every hub time is UTC, so put it back."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class CounterRow(HubBase):
    """One row, ``rev``: a total order over every hub write (row-locked, so commit order on PostgreSQL)."""

    __tablename__ = "hub_counter"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class WorkerRow(HubBase):
    __tablename__ = "hub_workers"
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    team: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(64), default="registered")
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EventRow(HubBase):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "hub_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    team: Mapped[str] = mapped_column(String(128))
    worker_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_hub_events_team_seq", "team", "seq"),)


class FindingRow(HubBase):
    __tablename__ = "hub_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rev: Mapped[int] = mapped_column(BigInteger, index=True)
    team: Mapped[str] = mapped_column(String(128), index=True)
    author: Mapped[str] = mapped_column(String(128), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    family: Mapped[str | None] = mapped_column(String(32), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    parents: Mapped[list[int]] = mapped_column(JSON, default=list)
    submission_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    snapshot_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    votes: Mapped[int] = mapped_column(Integer, default=0)
    n_comments: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommentRow(HubBase):
    __tablename__ = "hub_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("hub_findings.id"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoteRow(HubBase):
    __tablename__ = "hub_votes"
    finding_id: Mapped[int] = mapped_column(ForeignKey("hub_findings.id"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class SnapshotRow(HubBase):
    """One row per (content, team): the blob is shared, the record and its lineage are the team's."""

    __tablename__ = "hub_snapshots"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team: Mapped[str] = mapped_column(String(128), primary_key=True)
    rev: Mapped[int] = mapped_column(BigInteger)
    worker_id: Mapped[str] = mapped_column(String(128), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    finding_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    unpacked_size: Mapped[int] = mapped_column(BigInteger)
    n_files: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
