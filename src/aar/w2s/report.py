"""Rich table rendering of a baseline report."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from aar.w2s.results import BaselineReport


def _fmt(value: float | None, se: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" + (f" ± {se:.3f}" if se is not None and not math.isnan(se) else "")


def print_report(report: BaselineReport, console: Console) -> None:
    """Print accuracy and PGR per method (the sealed reference last, when it ran), with SEs, and W / S."""
    table = Table(title=f"{report.testbed}: {report.seeds} seed(s)")
    for col in ("method", "acc ID", "acc OOD", "PGR ID", "PGR OOD", "PGR combined", "s"):
        table.add_column(col, justify="right" if col != "method" else "left")
    notes = []
    for m in report.methods + ([report.reference] if report.reference else []):
        if m.note:
            table.add_row(m.name, "-", "-", "-", "-", "-", f"{m.seconds:.1f}")
            notes.append(f"{m.name}: {m.note}")
            continue
        pse = m.se.pgr
        table.add_row(
            m.name,
            _fmt(m.acc.id, m.se.acc.id),
            _fmt(m.acc.ood, m.se.acc.ood),
            _fmt(m.pgr.id, pse.id if pse else None),
            _fmt(m.pgr.ood, pse.ood if pse else None),
            _fmt(m.pgr.combined, pse.combined if pse else None),
            f"{m.seconds:.1f}",
        )
    console.print(table)
    for note in notes:
        console.print(f"[dim]{note}[/dim]", highlight=False)
    console.print(
        f"W = {report.weak.acc.id:.3f} / {report.weak.acc.ood:.3f} (ID / OOD), "
        f"S = {report.ceiling.acc.id:.3f} / {report.ceiling.acc.ood:.3f}; stored for the eval server."
    )
