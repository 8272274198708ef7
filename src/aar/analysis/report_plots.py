"""The report's PNG plots (matplotlib's Agg canvas, no pyplot state): titles, axes with units, legends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aar.analysis.progress import Progress

if TYPE_CHECKING:
    from aar.analysis.report import Report

XLABEL = "cumulative AAR-hours (h)"


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
