"""The report as one self-contained HTML page: images embedded, every text an agent could write escaped."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aar.analysis.report import Report

TRANSFER_COLUMNS = ("idea", "source_testbed", "target_testbed", "source_pgr", "source_pgr_se", "target_pgr",
                    "target_pgr_se", "best_baseline", "best_baseline_pgr", "diff", "diff_se")

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
    parts += ["<h2>Replays (finalize: fresh ids, no model API, no network)</h2>", _table(
        ["submission", "reproduces its public submission", "replay private PGR", "vs best baseline (paired SE)",
         "verdict"],
        [(r.submission_id, "-" if r.public_agreement is None else f"{r.public_agreement:.1%}",
          _pm(r.private.pgr.combined, r.private.pgr_se.combined if r.private.pgr_se else None) if r.private else "-",
          "-" if r.vs_best_baseline is None else f"{r.vs_best_baseline.baseline} "
          + _pm(r.vs_best_baseline.diff.combined, r.vs_best_baseline.paired_se.combined),
          "result" if r.reproducible else f"not reproducible: {r.reason}") for r in report.replays])
        if report.replays else NONE]
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
                     (r.snapshot_id or "-")[:12], r.description))
    more = (f"<p>First {MAX_HTML_IDEAS} of {len(report.ideas)} ideas (report.json has all).</p>"
            if len(report.ideas) > MAX_HTML_IDEAS else "")
    return _table(["hours", "worker", "family", "components", "lines", "judged", "subs", "code (snapshot)",
                   "idea"], rows) + more


# ------------------------------------------------------------------ gathering a launched team's data (I/O)
