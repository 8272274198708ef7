"""``aar report TEAM``: a team's research as one report: JSON (every number), PNG plots and one HTML page.

Three steps, so the middle one is testable with hand-built data and no services:

* :func:`gather` (I/O) reads a launched team: its state, trajectories, ideas, status (leaderboard and
  detector flags, as ``aar team status``), each submission's SE (admin audit log), the finalize report
  if any, complexity measures, idea embeddings for the Vendi score, and transfer results
  (``runs/<team>/transfers/*.json``). What it cannot read becomes a note in the report.
* :func:`build_report` (pure) turns that :class:`ReportData` into a :class:`Report`: summary,
  leaderboard, family entropy against AAR-hours (with other teams' curves to compare), the Vendi score
  over time, complexity, PGR and cost (:mod:`aar.analysis.progress`), the idea table and transfers.
* :func:`write_report` writes ``report.json``, the plots and ``report.html`` (self-contained: images
  embedded; every text an agent could have written is HTML-escaped). Sections without data say "none yet".
"""

from __future__ import annotations

import base64
import html
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
from aar.evalserver.models import FinalReport
from aar.orchestrator.status import TeamStatus, trajectory_flags

MAX_TRANSFER_FILE = 4 << 20
TRANSFER_COLUMNS = ("idea", "source_testbed", "target_testbed", "source_pgr", "target_pgr", "target_pgr_se",
                    "best_baseline", "best_baseline_pgr", "diff", "diff_se")


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
                    submission_ids=i.submission_ids, complexity=by_id.get(i.id)) for i in ideas]
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
                  transfers=data.transfers, notes=data.notes)


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

XLABEL = "cumulative AAR-hours (h)"


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """Write ``report.json``, the plots that have data, and ``report.html`` into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(report.model_dump_json(indent=1))
    plots = plot_report(report, out_dir)
    (out_dir / "report.html").write_text(render_html(report, plots))
    return [out_dir / "report.json", *plots.values(), out_dir / "report.html"]


def _figure(ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # the Agg canvas, no pyplot state

    fig = Figure(figsize=(6.5 * ncols, 4.2), layout="constrained")
    return fig, fig.subplots(1, ncols)


def _se(values: Sequence[float | None]) -> list[float]:
    return [np.nan if v is None else v for v in values]


def plot_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """The PNG plots that have data: entropy, vendi, complexity, pgr, cost (name -> path)."""
    figs: dict[str, Any] = {}
    if any(s.points for s in report.entropy):
        fig, ax = _figure()
        for k, s in enumerate(x for x in report.entropy if x.points):
            x = [p.aar_hours for p in s.points]
            ax.plot(x, [p.entropy for p in s.points], color=f"C{k}", label=f"{s.team}: entropy")
            ax.fill_between(x, [p.low for p in s.points], [p.high for p in s.points], color=f"C{k}", alpha=0.2,
                            label=f"{s.team}: 90% band")
        ax.set(title=f"Idea-family entropy across active workers (>= {report.min_workers})", xlabel=XLABEL,
               ylabel="entropy (bits)")
        ax.legend()
        figs["entropy"] = fig
    if report.vendi:
        fig, ax = _figure()
        x = [p.aar_hours for p in report.vendi]
        ax.plot(x, [p.vendi for p in report.vendi], label="all ideas so far")
        ax.plot(x, [p.recent for p in report.vendi], label=f"latest {report.vendi[0].window} ideas")
        ax.set(title="Vendi score of the ideas (MiniLM embeddings)", xlabel=XLABEL,
               ylabel="Vendi score (effective ideas)")
        ax.legend()
        figs["vendi"] = fig
    if report.ideas:
        figs["complexity"] = _complexity_figure(report)
    if report.progress.points:
        figs["pgr"] = _pgr_figure(report.progress)
    if report.progress.costs:
        figs["cost"] = _cost_figure(report.progress)
    paths = {}
    for name, fig in figs.items():
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=100)
    return paths


def _complexity_figure(report: Report) -> Any:
    fig, (left, right) = _figure(2)
    rows = [r for r in report.ideas if r.complexity]
    x = [r.aar_hours for r in rows]
    comps = [r.complexity.components for r in rows if r.complexity]
    left.scatter(x, comps, s=12, alpha=0.6, label="components per idea")
    if comps:
        left.plot(x, np.cumsum(comps) / np.arange(1, len(comps) + 1), color="C0", label="mean so far")
    judged = [(r.aar_hours, r.complexity.judged) for r in rows if r.complexity and r.complexity.judged]
    if judged:
        left.scatter(*zip(*judged, strict=True), s=14, marker="x", color="C3", label="judged score (1-10)")
    left.set(title="Idea complexity", xlabel=XLABEL, ylabel="components / judged score")
    left.legend()
    best = [p for p in report.progress.team_best if p.best is not None]
    if best:
        right.errorbar([p.aar_hours for p in best], [p.best for p in best], yerr=_se([p.best_se for p in best]),
                       drawstyle="steps-post", color="k", capsize=2, label="team best released PGR (± SE)")
        right.legend()
    else:
        right.text(0.5, 0.5, "no released PGR yet", ha="center", transform=right.transAxes)
    right.set(title="Team best PGR", xlabel=XLABEL, ylabel="PGR (combined)")
    return fig


def _pgr_figure(progress: Progress) -> Any:
    fig, ax = _figure()
    for k, w in enumerate(sorted({p.worker for p in progress.points})):
        pts = [p for p in progress.points if p.worker == w and p.pgr is not None]
        if pts:
            ax.errorbar([p.aar_hours for p in pts], [p.pgr for p in pts], yerr=_se([p.pgr_se for p in pts]),
                        fmt="o", ms=3, alpha=0.5, color=f"C{k % 10}", capsize=2, label=f"{w} (± SE)")
            ax.plot([p.aar_hours for p in pts], [p.best for p in pts], drawstyle="steps-post", color=f"C{k % 10}",
                    alpha=0.8)
    best = [p for p in progress.team_best if p.best is not None]
    if best:
        ax.errorbar([p.aar_hours for p in best], [p.best for p in best], yerr=_se([p.best_se for p in best]),
                    drawstyle="steps-post", color="k", lw=2, capsize=2, label="team best (± SE)")
    private = [p for p in progress.private if not p.team_best and p.pgr is not None and p.aar_hours is not None]
    if private:
        ax.errorbar([p.aar_hours for p in private], [p.pgr for p in private], yerr=_se([p.pgr_se for p in private]),
                    fmt="*", ms=10, color="C3", capsize=3, label="private PGR at finalize (± SE)")
    ax.set(title="Released PGR per worker and team best", xlabel=XLABEL, ylabel="PGR (combined)")
    ax.legend(fontsize="small")
    return fig


def _cost_figure(progress: Progress) -> Any:
    fig, (left, right) = _figure(2)
    rows = [*progress.costs, progress.team_cost]
    names = [c.worker for c in rows]
    left.bar(names, [c.dollars or 0.0 for c in rows], color=["C0"] * len(progress.costs) + ["k"], label="dollars")
    for k, c in enumerate(rows):
        if c.dollars is None:
            left.text(k, 0, "unknown", ha="center", va="bottom", rotation=90, color="C3")
    left.set(title="Model spend (unknown: a model without a price)", xlabel="worker", ylabel="dollars (USD)")
    left.legend()
    right.bar(names, [c.tokens for c in rows], color=["C1"] * len(progress.costs) + ["k"], label="tokens")
    right.set(title="Model tokens", xlabel="worker", ylabel="tokens (input + output)")
    right.legend()
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=45)
    return fig


NONE = '<p class="none">none yet</p>'
MAX_HTML_IDEAS = 1000
CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}"
       "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left;vertical-align:top}"
       "th{background:#f3f3f3}.none{color:#888}img{max-width:100%}.flag{color:#b00}")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(v: float | int | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _pm(v: float | None, se: float | None) -> str:
    """A value with its SE (every PGR is shown with one, or says it is unknown)."""
    return "-" if v is None else f"{v:.3f} ± {se:.3f}" if se is not None else f"{v:.3f} (SE unknown)"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(plots: dict[str, Path], name: str, alt: str) -> str:
    if name not in plots:
        return ""
    data = base64.b64encode(plots[name].read_bytes()).decode()
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></p>'


def _flags(flags: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(flags.items()))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    text = "-" if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def render_html(report: Report, plots: dict[str, Path]) -> str:
    """The self-contained HTML page (images embedded; all text escaped)."""
    s, p = report.summary, report.progress
    parts = [f"<h1>Team {_e(report.team)}: research report</h1>",
             f"<p>phase {_e(report.phase or '-')} · testbed {_e(report.testbed or '-')} · researchers "
             f"{_e(report.kind or '-')} · written {_e(report.created_at.isoformat(timespec='seconds'))}</p>"]
    summary = [("workers", s.workers), ("ideas", s.ideas), ("submissions", s.submissions),
               ("AAR-hours", _num(s.aar_hours, 2)), ("best released PGR", _pm(s.best_pgr, s.best_pgr_se)),
               ("held by", s.best_worker or "-"), ("team private PGR (finalize)",
                                                    _pm(s.private_best_pgr, s.private_best_pgr_se)),
               ("families", ", ".join(f"{k} {v}" for k, v in s.families.items()) or "-"),
               ("entropy first / last (bits)", f"{_num(s.entropy_first, 2)} / {_num(s.entropy_last, 2)}"),
               ("Vendi score", _num(s.vendi, 2)), ("tokens", f"{s.tokens:,}"),
               ("dollars", p.team_cost.dollars_text()), ("dollars per AAR-hour", _num(s.dollars_per_aar_hour, 2))]
    parts += ["<h2>Summary</h2>", _table(["measure", "value"], summary)]
    if report.notes:
        parts += ["<h2>Notes</h2><ul>", *(f"<li>{_e(n)}</li>" for n in report.notes), "</ul>"]
    parts += ["<h2>Leaderboard</h2>", _table(
        ["worker", "direction", "phase", "subs", "best released PGR", "submission", "private PGR", "detector flags"],
        [(r.worker, r.direction or "-", r.phase or "-", r.submissions, _pm(r.best_pgr, r.best_pgr_se),
          r.best_submission or "-", _pm(r.private_pgr, r.private_pgr_se), _flags(r.flags) or "-")
         for r in report.leaderboard]) if report.leaderboard else NONE]
    parts += ["<h2>Diversity</h2>", _entropy_html(report), _img(plots, "entropy", "entropy vs AAR-hours"),
              "<h3>Vendi score</h3>", (f"<p>{_e(_num(s.vendi, 2))} effective distinct ideas of {s.ideas}.</p>"
                                       if report.vendi else NONE), _img(plots, "vendi", "Vendi score vs AAR-hours")]
    parts += ["<h2>Complexity</h2>", _complexity_html(report), _img(plots, "complexity", "complexity and PGR")]
    parts += ["<h2>Progress</h2>", _img(plots, "pgr", "PGR vs AAR-hours") if p.points else NONE, "<h3>Private "
              "split (finalize)</h3>", _table(
                  ["worker", "testbed", "submission", "private PGR", "public PGR", "best baseline", "vs baseline"],
                  [("team best" if x.team_best else x.worker, x.testbed, x.submission_id, _pm(x.pgr, x.pgr_se),
                    _pm(x.public_pgr, x.public_pgr_se), x.baseline or "-", _pm(x.diff, x.diff_se))
                   for x in p.private]) if p.private else NONE]
    parts += ["<h2>Cost</h2>", _table(
        ["worker", "AAR-hours", "tokens", "dollars", "dollars per AAR-hour", "unpriced tokens (models)"],
        [(c.worker, _num(c.hours, 2), f"{c.tokens:,}", c.dollars_text(), _num(c.dollars_per_aar_hour, 2),
          f"{c.unpriced_tokens:,} ({', '.join(c.unpriced_models)})" if c.unpriced_tokens else "-")
         for c in [*p.costs, p.team_cost]]) if p.costs else NONE, _img(plots, "cost", "cost per worker")]
    parts += ["<h2>Ideas</h2>", _ideas_html(report), "<h2>Transfer</h2>", _table(
        TRANSFER_COLUMNS, [[_cell(row.get(k)) for k in TRANSFER_COLUMNS] for row in report.transfers])
        if report.transfers else NONE]
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>aar report: {_e(report.team)}</title><style>{CSS}</style></head><body>"
            + "\n".join(x for x in parts if x) + "<p>Every number is in report.json.</p></body></html>\n")


def _entropy_html(report: Report) -> str:
    out = []
    for series in report.entropy:
        pts = series.points
        shown = pts if len(pts) <= 30 else [pts[round(k * (len(pts) - 1) / 29)] for k in range(30)]
        out.append(f"<h3>Family entropy: team {_e(series.team)}</h3>")
        out.append(_table(["hours", "AAR-hours", "active workers", "entropy (bits)", "90% band"],
                          [(_num(x.hours, 2), _num(x.aar_hours, 2), x.active, _num(x.entropy, 2),
                            f"{x.low:.2f}-{x.high:.2f}") for x in shown]) if pts else
                   f'<p class="none">none yet (no step with {report.min_workers} active workers)</p>')
    return "".join(out)


def _complexity_html(report: Report) -> str:
    s = report.summary
    if not report.ideas:
        return NONE
    text = (f"<p>Mean per idea: {_e(_num(s.mean_components, 2))} method components, "
            f"{_e(_num(s.mean_python_lines, 1))} lines of code (recipe JSON or added Python), "
            f"judged complexity {_e(_num(s.mean_judged, 1))} (1-10).</p>")
    if report.judge:
        text += (f"<p>Judge: {_e(report.judge.get('model', '?'))}, prompt sha256 "
                 f"{_e(report.judge.get('prompt_sha256', '?'))[:16]}</p>")
    return text


def _ideas_html(report: Report) -> str:
    if not report.ideas:
        return NONE
    rows = []
    for r in report.ideas[:MAX_HTML_IDEAS]:
        c = r.complexity
        rows.append((_num(r.hours, 2), r.worker, r.family, c.components if c else "-",
                     _num(c.python_lines) if c else "-", _num(c.judged) if c else "-", len(r.submission_ids),
                     r.description))
    more = (f"<p>First {MAX_HTML_IDEAS} of {len(report.ideas)} ideas (report.json has all).</p>"
            if len(report.ideas) > MAX_HTML_IDEAS else "")
    return _table(["hours", "worker", "family", "components", "lines", "judged", "subs", "idea"], rows) + more


# ------------------------------------------------------------------ gathering a launched team's data (I/O)

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
        found = data.get("rows") if isinstance(data, dict) and isinstance(data.get("rows"), list) else data
        rows += [r for r in (found if isinstance(found, list) else [found]) if isinstance(r, dict)]
    return rows, notes


def gather(settings: Any, team: str, compare: Sequence[str] = (), judge: ComplexityJudge | None = None,
           folder_of: Callable[[Any], Path | None] | None = None, min_workers: int = 5) -> ReportData:
    """Read everything about a team launched from this AAR_HOME (see the module docstring)."""
    from aar.analysis.ideas import team_ideas
    from aar.analysis.progress import final_report, released_se
    from aar.httpclient import ServiceError
    from aar.orchestrator.status import team_status
    from aar.orchestrator.supervisor import trajectory_of
    from aar.orchestrator.team import load_state, team_dir
    from aar.w2s.models.cache import ArrayCache
    from aar.w2s.models.encoder import EncoderSpec, embed_texts

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
    embeddings = embed_texts(EncoderSpec(name="minilm"), [i.description for i in ideas],
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
    return ReportData(team=team, ideas=found, steps=steps, status=status, phase=state.phase,
                      testbed=state.spec.testbed, kind=state.spec.kind, pgr_se=pgr_se, final=final,
                      complexity=measure_ideas(ideas, folder_of, judge), judge=judge.info() if judge else None,
                      embeddings=embeddings, compare=others, transfers=transfers, notes=notes + transfer_notes,
                      min_workers=min_workers)
