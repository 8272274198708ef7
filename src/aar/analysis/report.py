"""``aar report TEAM``: a team's research as one report: JSON (every number), PNG plots and one HTML page.

Three steps, so the middle one is testable with hand-built data and no services:

* :func:`gather` (I/O) reads a launched team: its state, trajectories, ideas, status (leaderboard and
  detector flags, as ``aar team status``), each submission's SE (admin audit log), the finalize report
  if any, complexity measures, idea embeddings for the Vendi score, and transfer results
  (``runs/<team>/transfers/*.json``). What it cannot read becomes a note in the report.
* :func:`build_report` (pure) turns that :class:`ReportData` into a :class:`Report`: summary,
  leaderboard, family entropy against AAR-hours (with other teams' curves to compare), the Vendi score
  over time, complexity, PGR and cost (:mod:`aar.analysis.progress`), the idea table and transfers.
* :func:`write_report` writes ``report.json``, the plots (:mod:`aar.analysis.report_plots`) and
  ``report.html`` (:mod:`aar.analysis.report_html`: self-contained, images embedded, every text an agent
  could have written HTML-escaped). Sections without data say "none yet".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from aar.agents.base import Step
from aar.analysis.complexity import Complexity, ComplexityJudge, measure_ideas
from aar.analysis.diversity import EntropyPoint, entropy_curve
from aar.analysis.ideas import TeamIdeas, idea_starts
from aar.analysis.progress import PrivateScore, Progress, aar_hours_at, active_spans, team_progress, worker_bests
from aar.analysis.report_html import render_html
from aar.analysis.report_plots import plot_report
from aar.analysis.transfer import TransferResult
from aar.evalserver.models import FinalReport, Replay
from aar.orchestrator.status import TeamStatus, trajectory_flags

MAX_TRANSFER_FILE = 4 << 20


@dataclass
class ReportData:
    """Everything :func:`build_report` needs (``embeddings``: one row per idea, in ``ideas.ideas`` order)."""

    team: str
    ideas: TeamIdeas
    steps: dict[str, list[Step]]
    status: TeamStatus | None = None
    phase: str | None = None
    testbed: str | None = None
    kind: str | None = None
    pgr_se: dict[str, float | None] = field(default_factory=dict)
    final: FinalReport | None = None
    complexity: list[Complexity] | None = None
    judge: dict[str, str] | None = None
    embeddings: np.ndarray | None = None
    compare: dict[str, TeamIdeas] = field(default_factory=dict)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    replays: list[Replay] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    min_workers: int = 5
    vendi_window: int = 20


class EntropySeries(BaseModel):
    team: str
    points: list[EntropyPoint]


class VendiPoint(BaseModel):
    hours: float
    aar_hours: float
    ideas: int
    vendi: float = Field(description="Of all ideas so far.")
    recent: float = Field(description="Of the latest ``window`` ideas.")
    window: int


class IdeaRow(BaseModel):
    id: str
    worker: str
    hours: float
    aar_hours: float
    family: str
    families: list[str]
    description: str
    submission_ids: list[str]
    snapshot_id: str | None = None
    complexity: Complexity | None = None


class LeaderRow(BaseModel):
    worker: str
    direction: str | None = None
    phase: str | None = None
    submissions: int
    best_pgr: float | None
    best_pgr_se: float | None
    best_submission: str | None = None
    private_pgr: float | None = None
    private_pgr_se: float | None = None
    flags: dict[str, int] = Field(default_factory=dict)


class Summary(BaseModel):
    workers: int
    ideas: int
    submissions: int
    aar_hours: float
    best_pgr: float | None
    best_pgr_se: float | None
    best_worker: str | None
    private_best_pgr: float | None = None
    private_best_pgr_se: float | None = None
    families: dict[str, int]
    entropy_first: float | None = None
    entropy_last: float | None = None
    vendi: float | None = None
    mean_components: float | None = None
    mean_python_lines: float | None = None
    mean_judged: float | None = None
    tokens: int
    dollars: float | None
    dollars_per_aar_hour: float | None


class Report(BaseModel):
    schema_version: int = 1
    team: str
    created_at: datetime
    phase: str | None
    testbed: str | None
    kind: str | None
    summary: Summary
    leaderboard: list[LeaderRow]
    min_workers: int
    entropy: list[EntropySeries] = Field(description="This team first, then the teams compared.")
    vendi: list[VendiPoint]
    judge: dict[str, str] | None = None
    ideas: list[IdeaRow]
    progress: Progress
    transfers: list[dict[str, Any]]
    replays: list[Replay] = Field(default_factory=list, description="finalize's replay verdicts, if run.")
    notes: list[str]


def vendi_of(x: np.ndarray) -> float:
    """:func:`aar.analysis.diversity.vendi_score` through the smaller Gram matrix (same non-zero eigenvalues)."""
    n = len(x)
    if n == 0:
        return 0.0
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    eig = np.linalg.eigvalsh((x @ x.T if n <= x.shape[1] else x.T @ x) / n).clip(0.0)
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


def vendi_curve(emb: np.ndarray, hours: Sequence[float], aar: Sequence[float], window: int = 20,
                points: int = 40) -> list[VendiPoint]:
    """The Vendi score of the ideas so far (and of the latest ``window``) at up to ``points`` idea counts."""
    n = len(emb)
    counts = sorted({round(k) for k in np.linspace(1, n, min(n, points))}) if n else []
    return [VendiPoint(hours=hours[k - 1], aar_hours=aar[k - 1], ideas=k, vendi=vendi_of(emb[:k]),
                       recent=vendi_of(emb[max(0, k - window):k]), window=window) for k in counts]


def _mean(values: Sequence[float | int | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def build_report(data: ReportData, created_at: datetime | None = None) -> Report:
    """The report of ``data`` (pure: no I/O, no model)."""
    progress = team_progress(data.steps, data.pgr_se, data.final)
    spans = {w: active_spans(s) for w, s in data.steps.items()}
    ideas = data.ideas.ideas
    measures = data.complexity if data.complexity is not None else measure_ideas(ideas)
    by_id = {c.idea_id: c for c in measures}
    rows = [IdeaRow(id=i.id, worker=i.worker, hours=i.hours, aar_hours=aar_hours_at(spans, i.started_at),
                    family=i.family, families=i.families or [i.family], description=i.description,
                    submission_ids=i.submission_ids, snapshot_id=i.snapshot_id, complexity=by_id.get(i.id))
            for i in ideas]
    series = [EntropySeries(team=t, points=entropy_curve(*idea_starts(found.ideas, found.worker_end),
                                                         min_workers=data.min_workers))
              for t, found in [(data.team, data.ideas), *data.compare.items()]]
    vendi = []
    if data.embeddings is not None and len(data.embeddings) == len(rows) and rows:
        vendi = vendi_curve(data.embeddings, [r.hours for r in rows], [r.aar_hours for r in rows],
                            data.vendi_window)
    leaderboard = _leaderboard(data, progress)
    best = progress.team_best[-1] if progress.team_best else None
    private_best = next((p for p in progress.private if p.team_best), None)
    own = series[0].points
    summary = Summary(
        workers=len(data.steps), ideas=len(ideas), submissions=len(progress.points), aar_hours=progress.aar_hours,
        best_pgr=best.best if best else None, best_pgr_se=best.best_se if best else None,
        best_worker=best.best_worker if best else None,
        private_best_pgr=private_best.pgr if private_best else None,
        private_best_pgr_se=private_best.pgr_se if private_best else None,
        families=dict(Counter(i.family for i in ideas).most_common()),
        entropy_first=own[0].entropy if own else None, entropy_last=own[-1].entropy if own else None,
        vendi=vendi[-1].vendi if vendi else None, mean_components=_mean([c.components for c in measures]),
        mean_python_lines=_mean([c.python_lines for c in measures]), mean_judged=_mean([c.judged for c in measures]),
        tokens=progress.team_cost.tokens, dollars=progress.team_cost.dollars,
        dollars_per_aar_hour=progress.team_cost.dollars_per_aar_hour)
    return Report(team=data.team, created_at=created_at or datetime.now(UTC), phase=data.phase, testbed=data.testbed,
                  kind=data.kind, summary=summary, leaderboard=leaderboard, min_workers=data.min_workers,
                  entropy=series, vendi=vendi, judge=data.judge, ideas=rows, progress=progress,
                  transfers=data.transfers, replays=data.replays, notes=data.notes)


def _leaderboard(data: ReportData, progress: Progress) -> list[LeaderRow]:
    """One row per worker: best released PGR with its SE, private PGR after finalize, detector flags."""
    status = {w.worker: w for w in data.status.workers} if data.status else {}
    bests = worker_bests(progress)
    private: dict[str, PrivateScore] = {}
    for p in progress.private:
        if not p.team_best:
            private.setdefault(p.worker, p)
    rows = []
    for w in sorted(set(data.steps) | set(status)):
        st, b, pr = status.get(w), bests.get(w), private.get(w)
        best = b.best if b and b.best is not None else (st.best_released_pgr if st else None)
        rows.append(LeaderRow(
            worker=w, direction=st.direction if st else None, phase=st.phase if st else None,
            submissions=st.submissions if st else sum(s.type == "submission" for s in data.steps.get(w, [])),
            best_pgr=best, best_pgr_se=b.best_se if b and b.best == best else None,
            best_submission=b.best_submission if b and b.best == best else None,
            private_pgr=pr.pgr if pr else None, private_pgr_se=pr.pgr_se if pr else None,
            flags=st.flags if st else trajectory_flags(data.steps.get(w, []))))
    return sorted(rows, key=lambda r: (r.best_pgr is None, -(r.best_pgr or 0.0)))  # best first, none last


# ------------------------------------------------------------------ writing: JSON, plots, HTML


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """Write ``report.json``, the plots that have data, and ``report.html`` into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(report.model_dump_json(indent=1))
    plots = plot_report(report, out_dir)
    (out_dir / "report.html").write_text(render_html(report, plots))
    return [out_dir / "report.json", *plots.values(), out_dir / "report.html"]


def read_transfers(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of every ``*.json`` in ``folder`` (a row, a list of rows, or ``{"rows": [...]}``), and notes."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if not folder.is_dir():
        return rows, notes
    for path in sorted(folder.glob("*.json")):
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_TRANSFER_FILE:
                raise ValueError("not a regular file under 4 MiB")
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            notes.append(f"transfer file {path.name} skipped: {exc}")
            continue
        if isinstance(data, dict) and "source" in data and "target" in data:  # what `aar transfer` saves
            try:
                data = TransferResult.model_validate(data).row()
            except ValueError as exc:
                notes.append(f"transfer file {path.name} skipped: {str(exc).splitlines()[0]}")
                continue
        found = data.get("rows") if isinstance(data, dict) and isinstance(data.get("rows"), list) else data
        rows += [r for r in (found if isinstance(found, list) else [found]) if isinstance(r, dict)]
    return rows, notes


def gather(settings: Any, team: str, compare: Sequence[str] = (), judge: ComplexityJudge | None = None,
           folder_of: Callable[[Any], Path | None] | None = None, min_workers: int = 5) -> ReportData:
    """Read everything about a team launched from this AAR_HOME (see the module docstring)."""
    from aar.analysis.families import idea_encoder
    from aar.analysis.ideas import team_ideas
    from aar.analysis.progress import final_report, released_se
    from aar.httpclient import ServiceError
    from aar.orchestrator.status import team_status
    from aar.orchestrator.supervisor import trajectory_of
    from aar.orchestrator.team import load_state, team_dir
    from aar.w2s.models.cache import ArrayCache
    from aar.w2s.models.encoder import embed_texts

    state = load_state(settings, team)
    notes: list[str] = []
    steps = {w: trajectory_of(settings, team, w) for w in state.workers}
    try:
        found = team_ideas(settings, team)
    except (ServiceError, OSError) as exc:
        notes.append(f"ideas unavailable: {exc}")
        found = TeamIdeas(team=team, ideas=[], worker_end={})
    status = None
    try:
        status = team_status(settings, team)
        if status.leaderboard_error:
            notes.append(f"leaderboard unavailable (flags from trajectories only): {status.leaderboard_error}")
    except (ServiceError, OSError) as exc:
        notes.append(f"status unavailable: {exc}")
    pgr_se: dict[str, float | None] = {}
    try:
        token = (team_dir(settings, team) / "admin.token").read_text().strip()
        pgr_se = released_se(state.spec.eval_url, token, team)
    except (ServiceError, OSError) as exc:
        notes.append(f"SEs of released PGR unavailable: {exc}")
    final = final_report(settings, team)
    if final is None and state.phase == "finalized":
        notes.append("the team is finalized but its finalize report is not in this AAR_HOME's eval store")
    ideas = found.ideas
    embeddings = embed_texts(idea_encoder(), [i.description for i in ideas],
                             ArrayCache(settings.cache_dir)) if ideas else None
    others = {}
    for other in compare:
        others[other] = team_ideas(settings, other)
    if folder_of is None:  # an agent's idea folder is counted from its snapshot, restored beside the report
        from aar.analysis.rerun import idea_folders

        folders, folder_notes = idea_folders(settings, team, ideas, team_dir(settings, team) / "idea-code")
        notes += folder_notes
        folder_of = lambda i: folders.get(i.id)  # noqa: E731
    transfers, transfer_notes = read_transfers(team_dir(settings, team) / "transfers")
    replays = list({e.submission_id: e.replay for e in [*final.workers, *final.team_best]
                    if e.replay is not None}.values()) if final else []
    return ReportData(team=team, ideas=found, steps=steps, status=status, phase=state.phase,
                      testbed=state.spec.testbed, kind=state.spec.kind, pgr_se=pgr_se, final=final,
                      complexity=measure_ideas(ideas, folder_of, judge), judge=judge.info() if judge else None,
                      embeddings=embeddings, compare=others, transfers=transfers, replays=replays,
                      notes=notes + transfer_notes,
                      min_workers=min_workers)
