"""Reference points: the weak model and the ceiling, both trained on ground truth."""

from __future__ import annotations

from aar.w2s.methods.base import ExperimentContext, MethodNotApplicable, MethodOutput, method


@method("weak")
def weak(ctx: ExperimentContext) -> MethodOutput:
    """Weak model trained on weak_train ground truth (defines W)."""
    return MethodOutput(ctx.predict_tests(ctx.weak_model()))


@method("ceiling")
def ceiling(ctx: ExperimentContext) -> MethodOutput:
    """Strong model trained on strong_train ground truth (defines S; trusted side only)."""
    split = ctx.strong_train
    if split.labels is None:
        raise MethodNotApplicable("the ceiling needs strong_train labels, which only the trusted side holds")
    model = ctx.make_strong().fit(split.items, split.labels.astype(float), seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model))
