"""Naive W2S: train the strong model on the weak model's labels of strong_train."""

from __future__ import annotations

from aar.w2s.methods.base import ExperimentContext, MethodOutput, method


@method("vanilla")
def vanilla(ctx: ExperimentContext) -> MethodOutput:
    """Strong model trained on hard weak labels."""
    hard = (ctx.weak_labels() > 0.5).astype(float)
    model = ctx.make_strong().fit(ctx.strong_train.items, hard, seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model))


@method("vanilla_soft")
def vanilla_soft(ctx: ExperimentContext) -> MethodOutput:
    """Strong model trained on soft weak labels (the weak model's probabilities)."""
    model = ctx.make_strong().fit(ctx.strong_train.items, ctx.weak_labels(), seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model))
