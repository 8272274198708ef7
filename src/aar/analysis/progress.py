"""Research progress and its cost: PGR against cumulative AAR-hours, tokens and dollars per worker and team.

* AAR-hours at a moment: the sum over workers of their active hours so far. A worker is active during
  each of its runs, from the run's ``run_start`` to that run's last step (:func:`active_spans`).
* PGR points: every ``submission`` step's released combined PGR (what the worker was shown), with the
  SE of that submission's score (the eval server's bootstrap SE of its true public PGR, read from the
  admin audit log by :func:`released_se`; the release mechanism rounds the value, the sampling error
  is the score's), and each worker's and the team's running best. After ``aar team finalize``, each
  worker's selected submission has a private PGR with its SE (:func:`final_report`).
* Cost: tokens and dollars are the trajectory's charges. A charge of tokens at $0 means the model had no
  known price (the researchers record 0 then), so that worker's and the team's dollars are unknown
  (``None``, shown "unknown"), never $0; a model priced at $0 on purpose reads the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from aar.agents.base import Step
from aar.evalserver.models import FinalReport

Span = tuple[datetime, datetime]


def active_spans(steps: Sequence[Step]) -> list[Span]:
    """The (start, end) of each run of a worker: its ``run_start`` to the run's last step."""
    spans: list[Span] = []
    start: datetime | None = None
    end: datetime | None = None
    for s in steps:
        if start is None or end is None or s.type == "run_start":
            if start is not None and end is not None:
                spans.append((start, end))
            start = end = s.t
        else:
            end = max(end, s.t)
    if start is not None and end is not None:
        spans.append((start, end))
    return spans


def active_hours(spans: Sequence[Span], until: datetime | None = None) -> float:
    """Hours inside ``spans`` (up to ``until`` when given)."""
    total = 0.0
    for a, b in spans:
        end = b if until is None else min(b, until)
        total += max(0.0, (end - a).total_seconds())
    return total / 3600


def aar_hours_at(spans: Mapping[str, Sequence[Span]], t: datetime) -> float:
    """Cumulative AAR-hours of a team at ``t``: every worker's active hours up to then."""
    return sum(active_hours(s, t) for s in spans.values())


def released_pgr(step: Step) -> float | None:
    """The released combined PGR a submission step recorded (None: withheld or not recorded)."""
    v = step.data.get("released_pgr")
    if isinstance(v, dict):
        v = v.get("combined")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


class PgrPoint(BaseModel):
    """One submission: its released PGR and SE, and the running best of its worker (or of the team)."""

    worker: str
    submission_id: str | None
    hours: float = Field(description="Wall-clock hours since the team's first step.")
    aar_hours: float = Field(description="Cumulative AAR-hours of the team at this submission.")
    pgr: float | None
    pgr_se: float | None
    best: float | None
    best_se: float | None
    best_worker: str | None = None
    best_submission: str | None = None


class PrivateScore(BaseModel):
    """A worker's selected submission scored on the private split at finalize (``team_best``: the team's)."""

    worker: str
    testbed: str
    submission_id: str
    aar_hours: float | None
    pgr: float | None
    pgr_se: float | None
    public_pgr: float | None
    public_pgr_se: float | None
    team_best: bool = False
    baseline: str | None = None
    baseline_pgr: float | None = None
    diff: float | None = Field(default=None, description="PGR minus the best baseline's on the same items.")
    diff_se: float | None = None


class Cost(BaseModel):
    """Tokens, dollars and hours of a worker (or ``team``); ``dollars`` None when a price is unknown."""

    worker: str
    hours: float
    tokens: int
    dollars: float | None
    priced_dollars: float = Field(description="Dollars of the charges with a known price.")
    unpriced_tokens: int
    unpriced_models: list[str] = Field(default_factory=list)
    dollars_per_aar_hour: float | None

    def dollars_text(self) -> str:
        return "unknown" if self.dollars is None else f"${self.dollars:,.2f}"


class Progress(BaseModel):
    t0: datetime | None
    aar_hours: float
    points: list[PgrPoint] = Field(description="Every submission of every worker, in time order.")
    team_best: list[PgrPoint]
    private: list[PrivateScore]
    costs: list[Cost]
    team_cost: Cost


def cost_of(worker: str, steps: Sequence[Step]) -> Cost:
    """A worker's charges from its trajectory (see the module docstring for unknown prices)."""
    tokens = unpriced = 0
    dollars = 0.0
    models: set[str] = set()
    model: str | None = None
    for s in steps:
        if s.type == "run_start":
            model = s.data.get("model") if isinstance(s.data.get("model"), str) else None
        tokens += s.tokens
        dollars += s.cost_usd
        if s.tokens and not s.cost_usd:
            unpriced += s.tokens
            named = s.data.get("model", model)
            models.add(named if isinstance(named, str) else "?")
    hours = active_hours(active_spans(steps))
    known = None if unpriced else dollars
    return Cost(worker=worker, hours=hours, tokens=tokens, dollars=known, priced_dollars=dollars,
                unpriced_tokens=unpriced, unpriced_models=sorted(models),
                dollars_per_aar_hour=known / hours if known is not None and hours > 0 else None)


def team_cost(costs: Sequence[Cost]) -> Cost:
    """The sum of workers' costs; dollars unknown when any worker's are."""
    hours = sum(c.hours for c in costs)
    known = None if any(c.dollars is None for c in costs) else sum(c.dollars or 0.0 for c in costs)
    return Cost(worker="team", hours=hours, tokens=sum(c.tokens for c in costs), dollars=known,
                priced_dollars=sum(c.priced_dollars for c in costs),
                unpriced_tokens=sum(c.unpriced_tokens for c in costs),
                unpriced_models=sorted({m for c in costs for m in c.unpriced_models}),
                dollars_per_aar_hour=known / hours if known is not None and hours > 0 else None)


def team_progress(steps: Mapping[str, Sequence[Step]], pgr_se: Mapping[str, float | None] | None = None,
                  final: FinalReport | None = None, t0: datetime | None = None) -> Progress:
    """PGR points, running bests, private scores and costs of a team.

    Args:
        steps: each worker's trajectory.
        pgr_se: SE of each submission's PGR by submission id (missing: None).
        final: the team's finalize report, if it has one.
        t0: the team's start (default: its first step).
    """
    se = pgr_se or {}
    spans = {w: active_spans(s) for w, s in steps.items()}
    t0 = t0 or min((s[0].t for s in steps.values() if s), default=None)
    subs = sorted(((s.t, w, s) for w, ss in steps.items() for s in ss if s.type == "submission"),
                  key=lambda x: (x[0], x[1]))
    points: list[PgrPoint] = []
    team: list[PgrPoint] = []
    best: dict[str, tuple[float, float | None, str, str | None]] = {}  # worker or "" -> pgr, se, worker, sub
    for t, w, s in subs:
        pgr, pgr_err = released_pgr(s), se.get(s.submission_id or "")
        if pgr is not None:
            for key in (w, ""):
                if key not in best or pgr > best[key][0]:
                    best[key] = (pgr, pgr_err, w, s.submission_id)
        hours, aar = (t - t0).total_seconds() / 3600 if t0 else 0.0, aar_hours_at(spans, t)
        for key, out in ((w, points), ("", team)):
            b = best.get(key)
            out.append(PgrPoint(worker=key or "team", submission_id=s.submission_id, hours=hours, aar_hours=aar,
                                pgr=pgr, pgr_se=pgr_err, best=b[0] if b else None, best_se=b[1] if b else None,
                                best_worker=b[2] if b else None, best_submission=b[3] if b else None))
    costs = [cost_of(w, s) for w, s in sorted(steps.items())]
    return Progress(t0=t0, aar_hours=sum(active_hours(s) for s in spans.values()), points=points, team_best=team,
                    private=private_scores(final, steps, spans) if final else [], costs=costs,
                    team_cost=team_cost(costs))


def private_scores(final: FinalReport, steps: Mapping[str, Sequence[Step]],
                   spans: Mapping[str, Sequence[Span]]) -> list[PrivateScore]:
    """Each finalize entry (workers, then the team's best per testbed) placed at its submission's AAR-hours."""
    when = {s.submission_id: s.t for ss in steps.values() for s in ss if s.type == "submission" and s.submission_id}
    out = []
    for entry, is_best in [*((e, False) for e in final.workers), *((e, True) for e in final.team_best)]:
        if entry.private is None:  # not replayed, or not reproducible: no private score
            continue
        t = when.get(entry.submission_id)
        vs = entry.vs_best_baseline
        out.append(PrivateScore(
            worker=entry.worker_id, testbed=entry.testbed, submission_id=entry.submission_id,
            aar_hours=aar_hours_at(spans, t) if t else None, pgr=entry.private.pgr.combined,
            pgr_se=entry.private.pgr_se.combined if entry.private.pgr_se else None,
            public_pgr=entry.public.pgr.combined, public_pgr_se=entry.public.pgr_se.combined if entry.public.pgr_se
            else None, team_best=is_best, baseline=vs.baseline if vs else None,
            baseline_pgr=vs.baseline_pgr.combined if vs else None, diff=vs.diff.combined if vs else None,
            diff_se=vs.paired_se.combined if vs else None))
    return out


def worker_bests(progress: Progress) -> dict[str, PgrPoint]:
    """Each worker's last point (its best so far is ``best`` / ``best_se``)."""
    return {p.worker: p for p in progress.points}


# ------------------------------------------------------------------ sources (eval server; admin side)

def released_se(eval_url: str, admin_token: str, team: str, transport: Any = None) -> dict[str, float | None]:
    """SE of each submission's combined PGR (true public score's bootstrap SE) from the admin audit log
    (``GET /v1/audit``, paged); raises ``EvalError`` when the server is unreachable or refuses."""
    from aar.evalserver.client import EvalClient
    from aar.evalserver.models import AuditRecord

    out: dict[str, float | None] = {}
    client = EvalClient(eval_url, transport=transport)
    try:
        after = 0
        while True:
            rows: list[Any] = client._call("GET", "/v1/audit", admin_token,
                                           params={"team": team, "after": after, "limit": 5000})
            for row in rows:
                rec = AuditRecord.model_validate(row)
                out[rec.id] = rec.true_public.pgr_se.combined if rec.true_public.pgr_se else None
                after = max(after, rec.seq)
            if len(rows) < 5000:
                return out
    finally:
        client.close()


def final_report(settings: Any, team: str) -> FinalReport | None:
    """The team's final report as ``aar team finalize`` saved it (with its replays and private scores), else
    the eval server's latest selection here (public scores only); None if never finalized."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from aar.db import make_engine
    from aar.evalserver.store import finalizations
    from aar.orchestrator.team import final_path

    path = final_path(settings, team)
    if path.is_file():
        return FinalReport.model_validate_json(path.read_text())
    url = settings.sqlite_url("evalserver")
    if url.startswith("sqlite") and not (settings.home / "evalserver.db").exists():
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            row = c.execute(select(finalizations.c.report).where(finalizations.c.team == team)
                            .order_by(finalizations.c.seq.desc()).limit(1)).first()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    if not row:
        return None
    try:
        return FinalReport.model_validate_json(row[0])
    except ValueError:  # recorded by an older aar (schema 1: private scores from published items)
        return None
