"""Confident-only: drop the strong_train items the weak model is least sure about."""

from __future__ import annotations

import numpy as np

from aar.w2s.methods.base import ExperimentContext, MethodOutput, method

KEEP_FRACTION = 0.6


@method("confident")
def confident(ctx: ExperimentContext, keep: float = KEEP_FRACTION) -> MethodOutput:
    """Strong model trained on the most confident 60% of hard weak labels."""
    probs = ctx.weak_labels()
    margin = np.abs(probs - 0.5)
    cutoff = np.quantile(margin, 1.0 - keep)
    kept = np.flatnonzero(margin >= cutoff)
    items = [ctx.strong_train.items[i] for i in kept]
    model = ctx.make_strong().fit(items, (probs[kept] > 0.5).astype(float), seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model), {"kept": len(kept)})
