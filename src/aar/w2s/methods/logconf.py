"""Auxiliary confidence loss (Burns et al. 2023): mix weak labels with the student's hardened guesses.

The student's own predictions, thresholded to match the weak labels' class balance, replace an
increasing share of the target (ramped to 0.5), letting the strong model overrule weak errors it is
confident about instead of imitating them.
"""

from __future__ import annotations

from aar.w2s.methods.base import ExperimentContext, MethodOutput, method


@method("logconf")
def logconf(ctx: ExperimentContext) -> MethodOutput:
    """Strong model trained with the logconf auxiliary confidence loss on weak labels."""
    hard = (ctx.weak_labels() > 0.5).astype(float)
    model = ctx.make_strong().fit(ctx.strong_train.items, hard, loss="logconf", seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model))
