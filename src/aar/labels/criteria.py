"""The research-room criteria a built-in testbed must meet, checked against measured baselines.

A testbed is useful for W2S research when it is big enough to tell progress from noise, the weak
model is better than chance, the ceiling leaves a real gap above it, naive W2S recovers some but not
all of it, no trivial rule solves the task, and the strong model's own zero-shot knowledge
(zero-shot or unsupervised elicitation) does not already close the gap.
"""

from __future__ import annotations

from aar.config import Settings
from aar.labels.card import SHORTCUT_LIMIT, Criterion, TestbedCard, load_card, save_card
from aar.labels.power import PartPower
from aar.labels.room import PartRoom, room_criteria
from aar.w2s.results import BaselineReport, MethodResult
from aar.w2s.testbeds.base import PUBLIC_SPLITS

MIN_TEST, MIN_HALF, MIN_STRONG_TRAIN = 5000, 2500, 8000
MIN_WEAK, MIN_GAP, MAX_PAIRED_SE = 0.55, 0.15, 0.05


def _method(report: BaselineReport, name: str) -> MethodResult | None:
    return next((m for m in report.methods if m.name == name and m.note is None), None)


def _at_least(name: str, value: float, target: float) -> Criterion:
    return Criterion(name=name, value=value, target=f">= {target:g}", passed=value >= target)


def evaluate_criteria(report: BaselineReport, card: TestbedCard, power: dict[str, PartPower]) -> list[Criterion]:
    """Each criterion with its measured value, SE and whether it is met."""
    out = [
        _at_least("test_id items", card.counts.get("test_id", 0), MIN_TEST),
        _at_least("test_ood items", card.counts.get("test_ood", 0), MIN_TEST),
        _at_least("strong_train items", card.counts.get("strong_train", 0), MIN_STRONG_TRAIN),
    ]
    for key, half in power.items():
        out.append(_at_least(f"public half ({key})", half.n_public, MIN_HALF))
        out.append(_at_least(f"private half ({key})", half.n_private, MIN_HALF))
    for key in ("id", "ood"):
        w, s = getattr(report.weak.acc, key), getattr(report.ceiling.acc, key)
        w_se, s_se = getattr(report.weak.se.acc, key), getattr(report.ceiling.se.acc, key)
        out.append(
            Criterion(name=f"weak accuracy ({key})", value=w, se=w_se, target=f">= {MIN_WEAK}", passed=w >= MIN_WEAK)
        )
        out.append(
            Criterion(
                name=f"ceiling - weak ({key})",
                value=s - w,
                se=(w_se**2 + s_se**2) ** 0.5,
                target=f">= {MIN_GAP}",
                passed=s - w >= MIN_GAP,
            )
        )
        for name, target, lo, hi in (
            ("vanilla", "0.05..0.5", 0.05, 0.5),
            ("zeroshot", "<= 0.6", -1e9, 0.6),
            ("ue_zeroshot", "<= 0.6", -1e9, 0.6),
        ):
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
        p = power.get(key)
        if p is not None:
            out.append(
                Criterion(
                    name=f"paired SE, vanilla vs {p.best_other}, private half ({key})",
                    value=p.paired_se,
                    target=f"<= {MAX_PAIRED_SE}",
                    passed=p.paired_se is not None and p.paired_se <= MAX_PAIRED_SE,
                )
            )
            out.append(
                Criterion(
                    name=f"SE of vanilla PGR, private half ({key})",
                    value=p.vanilla_pgr_se,
                    target="reported",
                    passed=p.vanilla_pgr_se is not None,
                )
            )
    worst_rule, worst = max(
        ((rule, v) for rule, by_split in card.shortcuts.items() for s, v in by_split.items() if s in PUBLIC_SPLITS),
        key=lambda rv: rv[1],
    )
    out.append(
        Criterion(
            name=f"worst shortcut accuracy on the published splits ({worst_rule})",
            value=worst,
            target=f"<= {SHORTCUT_LIMIT}",
            passed=worst <= SHORTCUT_LIMIT,
        )
    )
    return out


def record_criteria(report: BaselineReport, power: dict[str, PartPower], settings: Settings,
                    room: dict[str, PartRoom] | None = None) -> list[Criterion]:
    """Write the measured criteria (and the room criteria, when the reference ran) into the testbed card (label
    side) and return them."""
    card = load_card(report.testbed, settings)
    card.criteria = evaluate_criteria(report, card, power)
    card.room = room_criteria(room) if room else []
    failed = [c.name for c in card.criteria if not c.passed]
    card.baseline_note = (
        f"Measured over {report.seeds} seeds with weak={report.config['weak']} strong={report.config['strong']}. "
        "W and S are computed once on the full test set of each part and fix the PGR denominator for every "
        "release and the final score. Accuracy SE is over seeds: frozen-feature encoder models train a convex "
        "head from zero, so their seeds give identical runs (SE 0) and seed cherry-picking cannot help there; "
        "backends with real seed variance (fine-tuning, LoRA) show it here. PGR SE is a bootstrap over items. "
        + ("All criteria met." if not failed else "Criteria NOT met: " + "; ".join(failed) + ".")
    )
    save_card(card, settings)
    return card.criteria
