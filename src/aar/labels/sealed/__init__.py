"""Label-side code that no sandbox can read: the reference method that shows a testbed's room.

The reference uses only what an agent gets (the weak labels and test predictions the testbed
publishes, the strong model's features and zero-shot scores, unlabelled items), so its score proves
that a label-free method can reach it. It is never registered as a method, never in a recipe gene,
and this folder is masked in every worker sandbox (``aar.sandbox.policy.worker_config``): a team's
progress is measured against it, so it must not be a recipe to copy.

How it works: the weak labels and the strong model's zero-shot labels are two noisy sources. The
strong model is trained on their naive-Bayes posterior (the zero-shot label, trusted more where the
weak label agrees) rather than on either source, and its test logits get half the weak model's test
logit added.
"""

from __future__ import annotations

import numpy as np

from aar.w2s.methods.base import ExperimentContext, MethodOutput
from aar.w2s.methods.elicitation import consistent_zero_shot, logit
from aar.w2s.testbeds.base import TEST_SPLITS

ASSUMED_ACCURACY = {"zeroshot": 0.66, "weak": 0.59}  # priors for the posterior; no label is used
WEAK_AT_TEST = 0.5


def posterior_targets(weak: np.ndarray, zeroshot: np.ndarray) -> np.ndarray:
    """P(label 1) from the hard weak and zero-shot labels, each right with its assumed accuracy, independently."""
    z, w = ASSUMED_ACCURACY["zeroshot"], ASSUMED_ACCURACY["weak"]
    agree = z * w / (z * w + (1 - z) * (1 - w))
    disagree = z * (1 - w) / (z * (1 - w) + (1 - z) * w)
    zs_label = zeroshot > 0.5
    trust = np.where((weak > 0.5) == zs_label, agree, disagree)
    return np.where(zs_label, trust, 1 - trust)


def reference_method(ctx: ExperimentContext) -> MethodOutput:
    """The reference: the strong model trained on the weak / zero-shot posterior, plus the weak test logit."""
    items = ctx.strong_train.items
    zeroshot = consistent_zero_shot(ctx.make_strong(), items)
    targets = posterior_targets(ctx.weak_labels(), zeroshot)
    model = ctx.make_strong().fit(items, targets, seed=ctx.seed)
    weak = ctx.weak_test_predictions()
    out = {}
    for s in TEST_SPLITS:
        logits = logit(model.predict_proba(ctx.testbed[s].items)) + WEAK_AT_TEST * logit(weak[s])
        out[s] = 1.0 / (1.0 + np.exp(-logits))
    return MethodOutput(out, info={"targets_mean": float(targets.mean())})
