"""Reference points: the weak model and the ceiling, both trained on ground truth."""

from __future__ import annotations

from aar.w2s.methods.base import ExperimentContext, MethodNotApplicable, MethodOutput, method


@method("weak")
def weak(ctx: ExperimentContext) -> MethodOutput:
    """The weak model's published test predictions (defines W)."""
    return MethodOutput(ctx.weak_test_predictions())


@method("ceiling")
def ceiling(ctx: ExperimentContext) -> MethodOutput:
    """Strong model trained on strong_train ground truth (defines S; trusted side only)."""
    split = ctx.strong_train
    if split.labels is None:
        raise MethodNotApplicable("the ceiling needs strong_train labels, which only the trusted side holds")
    model = ctx.make_strong().fit(split.items, split.labels.astype(float), seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model))
