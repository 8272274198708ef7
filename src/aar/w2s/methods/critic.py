"""Critic training (causal_lm only): the strong model learns, by GRPO, to write a critique whose
verdict agrees with the weak label, then its verdict tokens become the prediction.

Needs generation, so it runs only on the ``causal_lm`` backend (TRL's ``GRPOTrainer``); feature
models have no text to generate and get a clear ``MethodNotApplicable``.
"""

from __future__ import annotations

from aar.w2s.methods.base import ExperimentContext, MethodNotApplicable, MethodOutput, method


@method("critic")
def critic(ctx: ExperimentContext) -> MethodOutput:
    """GRPO critic training on weak labels (causal_lm backend only)."""
    model = ctx.make_strong()
    train = getattr(model, "train_critic", None)
    if train is None:
        raise MethodNotApplicable(
            f"critic training needs text generation: the {model.name} backend has none (use a causal_lm strong model)"
        )
    hard = (ctx.weak_labels() > 0.5).astype(float)
    train(ctx.strong_train.items, hard, seed=ctx.seed)
    return MethodOutput(ctx.predict_tests(model))
