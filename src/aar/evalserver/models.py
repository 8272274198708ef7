"""Pydantic models of the eval server's API and audit records (the dashboard reads these same models).

What a worker sees (``SubmissionOut``, ``Leaderboard`` without admin columns) holds released values
only: never per-item correctness, exact correct counts, label balance, or which items are public.
``AuditRecord`` and the admin columns hold true scores and are served to admin tokens only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

FlagKind = Literal["label_probing", "seed_cherry_picking", "boosting"]


class PartValues(BaseModel):
    """One value per part of the test set: in-distribution, out-of-distribution, both."""

    id: float | None = None
    ood: float | None = None
    combined: float | None = None


class Scores(BaseModel):
    """Accuracy and PGR per part (true values: admin views and the audit log only)."""

    acc: PartValues
    pgr: PartValues
    pgr_reason: dict[str, str] = Field(default_factory=dict)
    acc_se: PartValues | None = None
    pgr_se: PartValues | None = None


class Reference(BaseModel):
    """A baseline's accuracy on one part: weak model W and ceiling S, mean and SE over seeds."""

    weak: float
    weak_se: float
    ceiling: float
    ceiling_se: float


class Released(BaseModel):
    """Scores as released by the team's mechanism (ladder-rounded, thresholdout-noised, or exact)."""

    mechanism: str
    acc: PartValues
    pgr: PartValues
    pgr_reason: dict[str, str] = Field(default_factory=dict)
    improved: bool = Field(description="Whether this submission changed the released value.")
    step: PartValues | None = Field(default=None,
                                    description="Rounding step of released accuracies (ladder).")
    from_submission: str | None = Field(default=None, description="The submission whose score this is.")
    info: dict[str, Any] = Field(default_factory=dict)


class Flag(BaseModel):
    """A detector's finding about a submission (recorded and shown; some kinds withhold the release)."""

    kind: FlagKind
    scope: Literal["worker", "team"]
    detail: str
    against: str | None = Field(default=None,
                                description="The caller's own earlier submission compared with.")


class Budget(BaseModel):
    """A worker's share and its team's budget after this submission (team fields: None when unlimited)."""

    used_last_hour: int
    max_per_hour: int
    used_total: int
    max_total: int
    team_used_last_hour: int | None = None
    team_max_per_hour: int | None = None
    team_used_total: int | None = None
    team_max_total: int | None = None


class SubmissionOut(BaseModel):
    """The answer to a submission, and what ``GET /v1/submissions/{id}`` returns to its owner."""

    id: str
    seq: int | None = None
    created_at: datetime
    team: str
    worker_id: str
    testbed: str
    mechanism: str
    pred_hash: str
    seed: int | None = None
    note: str | None = None
    snapshot_id: str | None = None
    released: Released
    team_best: Released | None = None
    baselines: dict[str, Reference] | None = Field(default=None, description="W and S on the public items.")
    flags: list[Flag] = Field(default_factory=list)
    budget: Budget | None = None
    warning: str | None = None


class SubmissionList(BaseModel):
    submissions: list[SubmissionOut]
    next_after: int | None = Field(default=None, description="Pass as ?after= for the next page.")


class AuditRecord(BaseModel):
    """One append-only audit line: everything about a submission except the predictions themselves."""

    schema_version: int = 1
    type: Literal["submission"] = "submission"
    seq: int
    id: str
    created_at: datetime
    team: str
    worker_id: str
    testbed: str
    mechanism: str
    pred_hash: str
    n_items: int
    seed: int | None = None
    note: str | None = None
    snapshot_id: str | None = None
    released: Released
    team_released: Released
    true_public: Scores
    flags: list[Flag]
    detect: dict[str, Any]
    state: dict[str, Any]
    prev_hash: str
    row_hash: str


class BoardRow(BaseModel):
    """One worker on a team leaderboard; ``best_public_submission`` / ``public_true`` for admin tokens only."""

    worker_id: str
    submissions: int
    best: Released | None = None
    flags: dict[str, int] = Field(default_factory=dict)
    last_at: datetime | None = None
    best_public_submission: str | None = None
    public_true: Scores | None = None


class Board(BaseModel):
    testbed: str
    mechanism: str
    team_best: Released | None = None
    workers: list[BoardRow]


class Leaderboard(BaseModel):
    team: str
    boards: list[Board]


class BaselineComparison(BaseModel):
    """A submission against the shipped baseline with the best private combined PGR, on the same private items."""

    baseline: str
    baseline_pgr: PartValues
    diff: PartValues = Field(description="PGR of the submission minus the baseline's, per part.")
    paired_se: PartValues = Field(description="Bootstrap SE of that difference (items resampled jointly).")
    headroom_share: PartValues | None = Field(
        default=None, description="Share of the headroom between this baseline and the sealed reference method that "
        "the submission recovers (None without a stored reference, `aar baselines --reference`, or headroom).")
    headroom_se: PartValues | None = Field(default=None, description="Its SE (paired differences, delta method).")


class Replay(BaseModel):
    """A submission's replay (``aar.labels.replay``): reproducible on the public items, then scored on the
    private ones."""

    submission_id: str
    snapshot_id: str | None
    reproducible: bool
    reason: str | None = None
    public_agreement: float | None = None
    private: Scores | None = None
    vs_best_baseline: BaselineComparison | None = None
    seconds: float = 0.0


class FinalEntry(BaseModel):
    """A worker's (or the team's) selected submission: best true public score; its private score, gap and
    comparison with the best baseline come from its replay (None until replayed, or when not reproducible)."""

    worker_id: str
    testbed: str
    submission_id: str
    snapshot_id: str | None = None
    submissions: int
    public: Scores
    flags: dict[str, int] = Field(default_factory=dict)
    replay: Replay | None = None
    private: Scores | None = None
    gap: PartValues | None = Field(default=None, description="Public minus private accuracy (over-fitting).")
    vs_best_baseline: BaselineComparison | None = None


class FinalReport(BaseModel):
    """``aar team finalize``: a team's selected submissions and, once replayed, their private scores (admin only)."""

    schema_version: int = 2
    team: str
    created_at: datetime
    last_seq: int = Field(description="Submissions up to this audit sequence number were considered.")
    workers: list[FinalEntry]
    team_best: list[FinalEntry]


class TestbedInfo(BaseModel):
    name: str
    n_items: int
    mechanism: str
    baselines: bool
