"""Methods that use the strong model without weak labels: zero-shot prompting and unsupervised elicitation.

Zero-shot scores are made consistent under A/B swap (pairwise: average p(A,B) with 1 - p(B,A)) and
class-balanced (the median score becomes the decision threshold), so position and label-prior
biases of the untrained model do not count as knowledge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aar.w2s.methods.base import ExperimentContext, MethodNotApplicable, MethodOutput, method
from aar.w2s.models import W2SModel
from aar.w2s.testbeds.base import TEST_SPLITS, Item


def consistent_zero_shot(model: W2SModel, items: Sequence[Item]) -> np.ndarray:
    """Swap-consistent, median-balanced zero-shot P(label 1)."""
    try:
        p = model.zero_shot(items)
        if model.fmt == "pairwise":
            swapped = [Item(it.id, it.prompt, it.answer_b or "", it.answer_a) for it in items]
            p = (p + 1.0 - model.zero_shot(swapped)) / 2.0
    except NotImplementedError as exc:
        raise MethodNotApplicable(str(exc)) from None
    ranks = np.argsort(np.argsort(p, kind="stable"), kind="stable")
    return (ranks + 0.5) / len(p)  # rank-normalised: exactly half the items fall above 0.5


@method("zeroshot")
def zeroshot(ctx: ExperimentContext) -> MethodOutput:
    """Strong model's zero-shot predictions on the test splits (no training)."""
    model = ctx.make_strong()
    return MethodOutput({s: consistent_zero_shot(model, ctx.testbed[s].items) for s in TEST_SPLITS})


@method("ue_zeroshot")
def ue_zeroshot(ctx: ExperimentContext) -> MethodOutput:
    """Unsupervised elicitation: train the strong model on its own balanced zero-shot labels of strong_train."""
    model = ctx.make_strong()
    labels = (consistent_zero_shot(model, ctx.strong_train.items) > 0.5).astype(float)
    student = ctx.make_strong().fit(ctx.strong_train.items, labels, seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(student))


ZEROSHOT_MIX_WEIGHT = 4.0  # zero-shot rank weight of the issue-17 probes of this mix (not tuned on any labels here)


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities, clipped to [1e-4, 1 - 1e-4] first."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q))


@method("weak_zeroshot_mix")
def weak_zeroshot_mix(ctx: ExperimentContext) -> MethodOutput:
    """The weak model's test predictions with the strong model's zero-shot view mixed in (no training)."""
    model = ctx.make_strong()
    weak = ctx.weak_test_predictions()
    out = {}
    for s in TEST_SPLITS:
        mixed = logit(weak[s]) + ZEROSHOT_MIX_WEIGHT * (consistent_zero_shot(model, ctx.testbed[s].items) - 0.5)
        out[s] = 1.0 / (1.0 + np.exp(-mixed))
    return MethodOutput(out)
