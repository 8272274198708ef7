"""Pydantic models of the hub API: what clients send, what the hub returns and stores.

The dashboard, the MCP tools and the findings sync read these same models (no second schema).
Limits here are the hub's validation contract: a request outside them is answered with a 422 that
names the field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

FindingKind = Literal["result", "hypothesis", "insight", "negative", "error"]
FINDING_KINDS: tuple[str, ...] = ("result", "hypothesis", "insight", "negative", "error")

#: The 11 method families of the analysis (DESIGN.md §8), spelled as identifiers.
METHOD_FAMILIES: tuple[str, ...] = (
    "self_training", "ensemble", "distillation", "data_filtering", "confidence_weighting",
    "loss_function", "unsupervised_elicitation", "curriculum", "model_internal", "evolutionary", "other",
)

#: Event kinds a worker (or the orchestrator for it) may post; the hub itself writes the rest.
POSTABLE_EVENT_KINDS: tuple[str, ...] = (
    "worker_started", "session_started", "session_ended", "submission", "crash", "stop",
)
#: Event kinds the hub writes as a side effect of other requests.
HUB_EVENT_KINDS: tuple[str, ...] = ("finding", "comment", "snapshot")
EventKind = Literal[
    "worker_started", "session_started", "session_ended", "submission", "crash", "stop",
    "finding", "comment", "snapshot",
]

MAX_BODY_CHARS = 100_000
MAX_JSON_CHARS = 20_000
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,47}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_SUBMISSION_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _check_json_size(value: dict[str, Any], what: str) -> dict[str, Any]:
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"{what} is {len(text)} characters of JSON; the limit is {MAX_JSON_CHARS}")
    return value


def check_snapshot_id(value: str) -> str:
    """Raise ValueError unless ``value`` is a lowercase sha256 hex digest."""
    if not _SHA_RE.match(value):
        raise ValueError("snapshot id must be a 64-character lowercase sha256 hex digest")
    return value


class FindingIn(BaseModel):
    """A finding as an agent posts it. Scores are never typed in: they come from cited submissions."""

    model_config = {"extra": "forbid"}

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=MAX_BODY_CHARS, description="Markdown.")
    kind: FindingKind
    family: str | None = Field(default=None, description="One of METHOD_FAMILIES.")
    config: dict[str, Any] = Field(default_factory=dict, description="The method's configuration.")
    tags: list[str] = Field(default_factory=list, max_length=20)
    parents: list[int] = Field(default_factory=list, max_length=20, description="Finding ids built on.")
    submission_ids: list[str] = Field(default_factory=list, max_length=20,
                                      description="Eval-server submission ids; required for a result.")
    snapshot_id: str | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("title must not be blank")
        return v

    @field_validator("family")
    @classmethod
    def _family(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.strip().lower().replace("-", "_").replace(" ", "_")
        if v not in METHOD_FAMILIES:
            raise ValueError(f"unknown method family {v!r}; one of {', '.join(METHOD_FAMILIES)}")
        return v

    @field_validator("config")
    @classmethod
    def _config(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_json_size(v, "config")

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for t in v:
            t = t.strip()
            if not _TAG_RE.match(t):
                raise ValueError(f"bad tag {t!r}: 1-48 of letters, digits and _ . : + - (no spaces)")
            if t not in out:
                out.append(t)
        return out

    @field_validator("parents")
    @classmethod
    def _parents(cls, v: list[int]) -> list[int]:
        if any(p <= 0 for p in v):
            raise ValueError("parent finding ids are positive integers")
        return sorted(set(v))

    @field_validator("submission_ids")
    @classmethod
    def _submissions(cls, v: list[str]) -> list[str]:
        for s in v:
            if not _SUBMISSION_RE.match(s):
                raise ValueError(f"bad submission id {s!r}")
        return list(dict.fromkeys(v))

    @field_validator("snapshot_id")
    @classmethod
    def _snapshot(cls, v: str | None) -> str | None:
        return None if v in (None, "") else check_snapshot_id(v)


class CommentIn(BaseModel):
    model_config = {"extra": "forbid"}
    body: str = Field(min_length=1, max_length=20_000)


class VoteIn(BaseModel):
    model_config = {"extra": "forbid"}
    value: Literal[-1, 0, 1] = Field(description="+1 up, -1 down, 0 withdraws the vote.")


class Comment(BaseModel):
    id: int
    finding_id: int
    author: str
    body: str
    created_at: datetime


class Finding(BaseModel):
    """A stored finding. ``scores`` maps each cited submission id to the eval server's released scores."""

    id: int
    rev: int = Field(description="Monotonic change counter: bumps on post, comment and vote.")
    team: str
    author: str
    title: str
    body: str
    kind: FindingKind
    family: str | None
    config: dict[str, Any]
    tags: list[str]
    parents: list[int]
    submission_ids: list[str]
    scores: dict[str, dict[str, Any]]
    snapshot_id: str | None
    votes: int
    n_comments: int
    created_at: datetime
    comments: list[Comment] | None = None
    my_vote: int | None = None


class FindingPage(BaseModel):
    findings: list[Finding]
    cursor: int = Field(description="The highest rev returned (or the request's since_rev if none).")


class SearchHit(BaseModel):
    finding: Finding
    rank: float
    snippet: str


class SearchResult(BaseModel):
    query: str
    hits: list[SearchHit]


class SnapshotMeta(BaseModel):
    id: str = Field(description="sha256 of the gzipped tarball.")
    team: str
    worker_id: str
    note: str
    parent_id: str | None
    finding_id: int | None
    size: int
    unpacked_size: int
    n_files: int
    created_at: datetime
    created: bool = Field(default=True, description="False when identical content was already stored.")


class WorkerRegister(BaseModel):
    model_config = {"extra": "forbid"}
    worker_id: str | None = Field(default=None, min_length=1, max_length=128,
                                  description="Admin only: register another worker.")
    team: str | None = Field(default=None, min_length=1, max_length=128, description="Admin only.")
    info: dict[str, Any] = Field(default_factory=dict, description="Agent, direction, model, ...")

    @field_validator("info")
    @classmethod
    def _info(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_json_size(v, "info")


class Heartbeat(BaseModel):
    model_config = {"extra": "forbid"}
    worker_id: str | None = Field(default=None, description="Admin only: beat for another worker.")
    status: str | None = Field(default=None, max_length=64)


class WorkerInfo(BaseModel):
    worker_id: str
    team: str
    status: str
    info: dict[str, Any]
    registered_at: datetime
    last_heartbeat: datetime | None
    alive: bool


class EventIn(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Literal["worker_started", "session_started", "session_ended", "submission", "crash", "stop"]
    worker_id: str | None = Field(default=None, description="Admin only: post for another worker.")
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _data(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_json_size(v, "data")


class Event(BaseModel):
    seq: int
    time: datetime
    team: str
    worker_id: str
    kind: EventKind
    data: dict[str, Any]
