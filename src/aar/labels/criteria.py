"""The research-room criteria a built-in testbed must meet, checked against measured baselines.

A testbed is useful for W2S research when the weak model is better than chance, the ceiling leaves
a real gap above it, naive W2S recovers some but not all of it, no trivial rule solves the task, and
the strong model's own zero-shot knowledge (unsupervised elicitation) does not already close the gap.
"""

from __future__ import annotations

from aar.config import Settings
from aar.labels.card import SHORTCUT_LIMIT, Criterion, load_card, save_card
from aar.w2s.results import BaselineReport, MethodResult


def _method(report: BaselineReport, name: str) -> MethodResult | None:
    return next((m for m in report.methods if m.name == name and m.note is None), None)


def evaluate_criteria(report: BaselineReport, shortcuts: dict[str, dict[str, float]]) -> list[Criterion]:
    """Each criterion with its measured value, SE and whether it is met."""
    out: list[Criterion] = []
    for key in ("id", "ood"):
        w, s = getattr(report.weak.acc, key), getattr(report.ceiling.acc, key)
        w_se, s_se = getattr(report.weak.se.acc, key), getattr(report.ceiling.se.acc, key)
        out.append(Criterion(name=f"weak accuracy ({key})", value=w, se=w_se, target=">= 0.55", passed=w >= 0.55))
        out.append(
            Criterion(
                name=f"ceiling - weak ({key})",
                value=s - w,
                se=(w_se**2 + s_se**2) ** 0.5,
                target=">= 0.10",
                passed=s - w >= 0.10,
            )
        )
        for name, target, lo, hi in (("vanilla", "0.05..0.5", 0.05, 0.5), ("ue_zeroshot", "<= 0.6", -1e9, 0.6)):
            m = _method(report, name)
            value = None if m is None else getattr(m.pgr, key)
            se = None if m is None or m.se.pgr is None else getattr(m.se.pgr, key)
            out.append(
                Criterion(
                    name=f"{name} PGR ({key})",
                    value=value,
                    se=se,
                    target=target,
                    passed=value is not None and lo <= value <= hi,
                )
            )
    worst = max(v for by_split in shortcuts.values() for v in by_split.values())
    out.append(
        Criterion(
            name="worst shortcut accuracy", value=worst, target=f"<= {SHORTCUT_LIMIT}", passed=worst <= SHORTCUT_LIMIT
        )
    )
    return out


def record_criteria(report: BaselineReport, settings: Settings) -> list[Criterion]:
    """Write the measured criteria into the testbed card (label side) and return them."""
    card = load_card(report.testbed, settings)
    card.criteria = evaluate_criteria(report, card.shortcuts)
    failed = [c.name for c in card.criteria if not c.passed]
    card.baseline_note = (
        f"Measured over {report.seeds} seeds (SE over seeds for accuracy, bootstrap over "
        f"items for PGR) with weak={report.config['weak']} strong={report.config['strong']}. "
        "Frozen-feature encoder models train a convex head, so their seeds give identical runs (SE 0). "
        + ("All criteria met." if not failed else "Criteria NOT met: " + "; ".join(failed) + ".")
    )
    save_card(card, settings)
    return card.criteria
