"""Label-side code that no sandbox can read: the reference method that shows a testbed's room.

The reference uses only what an agent gets (the weak labels and test predictions the testbed
publishes, the strong model's features and zero-shot scores, unlabelled items), so its score proves
that a label-free method can reach it. It is never registered as a method, never a recipe or a gene
value shipped to agents, and this folder is masked in every worker sandbox
(``aar.sandbox.policy.worker_config``): a team's progress is measured against it, so it must not be a
recipe to copy.

How it works: the strong model is trained on the hard weak labels and then on its own labels for a few
self-training rounds (each round's target is half the previous target, half the student's hard label),
which removes weak errors the strong features do not support; its test probabilities are then mixed
with the strong model's zero-shot scores, whose errors differ from the weak supervisor's.
"""

from __future__ import annotations

from aar.w2s.methods.base import ExperimentContext, MethodOutput
from aar.w2s.methods.elicitation import consistent_zero_shot
from aar.w2s.testbeds.base import TEST_SPLITS

SELF_TRAIN_ROUNDS, SELF_TRAIN_MIX, ZEROSHOT_AT_TEST = 3, 0.5, 0.65


def reference_method(ctx: ExperimentContext) -> MethodOutput:
    """The reference: a self-trained student of the hard weak labels, mixed with zero-shot at test time."""
    items = ctx.strong_train.items
    target = (ctx.weak_labels() > 0.5).astype(float)
    model = ctx.make_strong().fit(items, target, seed=ctx.seed)
    for _ in range(SELF_TRAIN_ROUNDS):
        student = model.predict_proba(items) > 0.5
        target = (1 - SELF_TRAIN_MIX) * target + SELF_TRAIN_MIX * student
        model = ctx.make_strong().fit(items, target, seed=ctx.seed)
    zeroshot = ctx.make_strong()
    return MethodOutput({s: (1 - ZEROSHOT_AT_TEST) * model.predict_proba(ctx.testbed[s].items)
                         + ZEROSHOT_AT_TEST * consistent_zero_shot(zeroshot, ctx.testbed[s].items)
                         for s in TEST_SPLITS})
