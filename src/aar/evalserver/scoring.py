"""Scores of one prediction vector on one side (public, private or all) of a testbed's test items.

A vector is in the canonical order of all test items; items it does not cover are NaN, and scoring a side
with NaN on it is refused (a submission covers the public items only).

Accuracy and PGR come from ``aar.w2s.scoring`` (the project's one definition); W and S are the stored
baselines recomputed on exactly the items scored. Nothing here decides what is released: see
``guard`` for that.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from aar.evalserver.labels import PARTS, TestbedLabels
from aar.evalserver.models import BaselineComparison, PartValues, Scores
from aar.evalserver.models import Reference as ReferenceModel
from aar.w2s.scoring import bootstrap_mean_se, bootstrap_se, correctness, headroom_share, pgr

NO_GAP = "the ceiling S does not beat the weak model W on these items, so PGR is undefined"


def item_correctness(tl: TestbedLabels, probs: np.ndarray) -> np.ndarray:
    """Per-item correctness (internal only: never returned by any route)."""
    return correctness(probs, tl.labels)


def pgr_values(tl: TestbedLabels, acc: PartValues, visibility: str) -> tuple[PartValues, dict[str, str]]:
    """PGR of the given accuracies against W and S on ``visibility``; a reason for each undefined one."""
    out: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for part in PARTS:
        a = getattr(acc, part)
        ref = tl.refs.get((visibility, part))
        if ref is None:
            out[part] = None
            reasons[part] = f"no usable baselines: {tl.baseline_problem or 'not computed'}"
            continue
        value = pgr(a, ref.weak, ref.ceiling) if a is not None else None
        out[part] = None if value is None else round(value, 4)
        if value is None:
            reasons[part] = NO_GAP
    return PartValues(**out), reasons


def score(tl: TestbedLabels, probs: np.ndarray, visibility: str, *, with_se: bool = False,
          correct: np.ndarray | None = None) -> Scores:
    """Accuracy and PGR on ID, OOD and combined items of ``visibility`` (public | private).

    ``with_se`` adds bootstrap SEs (items resampled jointly with the baselines' per-item correctness).
    """
    if np.isnan(probs[tl.part(visibility, "combined")]).any():
        raise ValueError(f"no predictions for the {visibility} items of testbed {tl.name!r}")
    c = correct if correct is not None else item_correctness(tl, probs)
    acc = PartValues(**{p: float(c[tl.part(visibility, p)].mean()) for p in PARTS})  # = scoring.accuracy
    pgrs, reasons = pgr_values(tl, acc, visibility)
    scores = Scores(acc=acc, pgr=pgrs, pgr_reason=reasons)
    if with_se and tl.weak_correct is not None and tl.ceiling_correct is not None:
        acc_se: dict[str, float | None] = {}
        pgr_se: dict[str, float | None] = {}
        for p in PARTS:
            idx = tl.part(visibility, p)
            a_se, g_se = bootstrap_se(c[idx], tl.weak_correct[idx], tl.ceiling_correct[idx])
            acc_se[p] = round(a_se, 4)
            pgr_se[p] = round(g_se, 4) if math.isfinite(g_se) else None
        scores.acc_se, scores.pgr_se = PartValues(**acc_se), PartValues(**pgr_se)
    return scores


def references(tl: TestbedLabels, visibility: str) -> dict[str, ReferenceModel] | None:
    """W and S (mean and SE over seeds) on each part of ``visibility``, rounded for release."""
    if not tl.refs:
        return None
    return {p: ReferenceModel(weak=round(r.weak, 4), weak_se=round(r.weak_se, 4), ceiling=round(r.ceiling, 4),
                              ceiling_se=round(r.ceiling_se, 4))
            for p in PARTS if (r := tl.refs.get((visibility, p))) is not None}


def compare_with_best_baseline(tl: TestbedLabels, probs: np.ndarray, visibility: str = "private",
                               among: Collection[str] | None = None, n_boot: int = 1000,
                               seed: int = 0) -> BaselineComparison | None:
    """``probs`` against the stored baseline method (of ``among``, default all) with the best combined PGR on
    ``visibility``, with the paired bootstrap SE of the difference on the same items, and (when the sealed reference
    is stored) the share of the headroom between that baseline and the reference that ``probs`` recovers."""
    names = sorted(m for m in tl.method_correct if among is None or m in among)
    if not names or not tl.refs:
        return None
    combined = tl.part(visibility, "combined")
    if np.isnan(probs[combined]).any():
        raise ValueError(f"no predictions for the {visibility} items of testbed {tl.name!r}")
    mine = item_correctness(tl, probs)
    best = max(names, key=lambda m: tl.method_correct[m][combined].mean())
    theirs = tl.method_correct[best]
    base: dict[str, float | None] = {}
    diff: dict[str, float | None] = {}
    se: dict[str, float | None] = {}
    share: dict[str, float | None] = {}
    share_se: dict[str, float | None] = {}
    for p in PARTS:
        idx = tl.part(visibility, p)
        if tl.reference_correct is not None:
            share[p], share_se[p] = (None if v is None else round(v, 4) for v in
                                     headroom_share(mine[idx], theirs[idx], tl.reference_correct[idx]))
        ref = tl.refs[(visibility, p)]
        gap = ref.ceiling - ref.weak
        if gap <= 0:
            base[p] = diff[p] = se[p] = None
            continue
        delta = mine[idx] - theirs[idx]
        base[p] = round((theirs[idx].mean() - ref.weak) / gap, 4)
        diff[p] = round(float(delta.mean()) / gap, 4)
        se[p] = round(bootstrap_mean_se(delta, n_boot, seed) / gap, 4)
    return BaselineComparison(baseline=best, baseline_pgr=PartValues(**base), diff=PartValues(**diff),
                              paired_se=PartValues(**se), headroom_share=PartValues(**share) if share else None,
                              headroom_se=PartValues(**share_se) if share else None)
