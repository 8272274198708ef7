"""Recipes: W2S methods composed from the method library's ideas, as data an agent can mutate and share.

A :class:`Recipe` says how to turn the weak supervision into the strong student's training targets and
how to post-process its predictions. Each field is one idea from the literature, tagged with its
method family (``FAMILY_OF``): filtering the weak labels by confidence, weighting by confidence, the
logconf loss, mixing in the strong model's zero-shot view (unsupervised elicitation), keeping only
items where weak and zero-shot agree, self-training rounds, an easy-to-hard curriculum, co-training
over the encoder views, bagging ensembles, and mixing zero-shot scores into the test predictions.
``run_recipe`` runs one on a :class:`~aar.w2s.workbench.Workbench`; ``python -m aar.w2s.recipes``
runs one from a JSON file and writes its predictions and label-free checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aar.w2s.testbeds.base import TEST_SPLITS
from aar.w2s.workbench import Head, Workbench

FAMILY_OF: dict[str, str] = {
    "labels": "distillation",
    "C": "other",
    "filter_keep": "data_filtering",
    "agree_only": "data_filtering",
    "weight_power": "confidence_weighting",
    "loss": "loss_function",
    "zeroshot_mix": "unsupervised_elicitation",
    "test_zeroshot_mix": "unsupervised_elicitation",
    "self_train_rounds": "self_training",
    "self_train_mix": "self_training",
    "curriculum_stages": "curriculum",
    "cotrain_rounds": "model_internal",
    "ensemble": "ensemble",
}


class Recipe(BaseModel):
    """One composed W2S method; the defaults are vanilla W2S (hard weak labels, plain BCE)."""

    model_config = ConfigDict(extra="forbid")

    labels: Literal["hard", "soft"] = Field(default="hard", description="Train on hard (0/1) or soft weak labels.")
    C: float | None = Field(default=None, gt=0, le=100, description="Inverse L2 strength; None = the testbed's.")
    filter_keep: float = Field(default=1.0, ge=0.1, le=1.0, description="Keep the most confident share of weak labels.")
    agree_only: bool = Field(default=False, description="Keep only items where weak and zero-shot labels agree.")
    weight_power: float = Field(default=0.0, ge=0, le=4, description="Item weight = |2·weak − 1| ** power.")
    loss: Literal["bce", "logconf"] = Field(default="bce", description="logconf: auxiliary confidence loss.")
    zeroshot_mix: float = Field(default=0.0, ge=0, le=1, description="Target = (1 − λ)·weak + λ·zero-shot.")
    self_train_rounds: int = Field(default=0, ge=0, le=5, description="Refit on the student's own hardened labels.")
    self_train_mix: float = Field(default=0.5, ge=0, le=1, description="Share of the student's labels in each round.")
    curriculum_stages: int = Field(default=0, ge=0, le=4, description="Easy to hard: grow the kept share.")
    cotrain_rounds: int = Field(default=0, ge=0, le=3, description="Co-training: each view labels the other's doubts.")
    ensemble: int = Field(default=1, ge=1, le=7, description="Bagged heads averaged (bootstrap of strong_train).")
    test_zeroshot_mix: float = Field(default=0.0, ge=0, le=1, description="Final P = (1 − μ)·student + μ·zero-shot.")
    seed: int = Field(default=0, ge=0, lt=2**31)

    def families(self) -> list[str]:
        """The method families this recipe uses (fields that differ from vanilla)."""
        base = Recipe()
        return sorted({FAMILY_OF[k] for k in FAMILY_OF if k != "C" and getattr(self, k) != getattr(base, k)}) or [
            "distillation"]


def _targets(wb: Workbench, r: Recipe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets, kept-row mask and weights on strong_train."""
    weak = wb.weak("strong_train")
    base = weak if r.labels == "soft" else (weak > 0.5).astype(float)
    zs = wb.zeroshot("strong_train")
    target = (1 - r.zeroshot_mix) * base + r.zeroshot_mix * zs
    keep = np.ones(len(weak), dtype=bool)
    margin = np.abs(weak - 0.5)
    if r.filter_keep < 1.0:
        keep &= margin >= np.quantile(margin, 1.0 - r.filter_keep)
    if r.agree_only:
        keep &= (weak > 0.5) == (zs > 0.5)
    weights = (2 * margin + 1e-3) ** r.weight_power
    return target, keep, weights


def _fit(wb: Workbench, r: Recipe, target: np.ndarray, keep: np.ndarray, weights: np.ndarray,
         cols: list[str] | None = None, rng: np.random.Generator | None = None) -> list[Head]:
    """One head, or ``ensemble`` bagged heads, on the kept rows."""
    rows = np.flatnonzero(keep)
    if len(rows) < 10:
        raise ValueError(f"only {len(rows)} training items left after filtering; loosen the filters")
    if r.ensemble == 1 or rng is None:
        return [wb.fit(target, rows=rows, weights=weights, C=r.C, loss=r.loss, cols=cols, seed=r.seed)]
    return [wb.fit(target, rows=rng.choice(rows, len(rows)), weights=weights, C=r.C, loss=r.loss, cols=cols,
                   seed=r.seed + k) for k in range(r.ensemble)]


def _predict(wb: Workbench, heads: list[Head], split: str) -> np.ndarray:
    return np.mean([wb.predict(h, split) for h in heads], axis=0)


def run_recipe(wb: Workbench, r: Recipe) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run ``r``; returns (P(label 1) per test split, P(label 1) on strong_train)."""
    rng = np.random.default_rng(r.seed)
    target, keep, weights = _targets(wb, r)
    if r.curriculum_stages:  # easy to hard: start from the most confident share, relabel the rest as we go
        margin = np.abs(wb.weak("strong_train") - 0.5)
        order = np.argsort(-margin, kind="stable")
        heads: list[Head] = []
        for stage in range(1, r.curriculum_stages + 1):
            share = 0.4 + 0.6 * stage / r.curriculum_stages
            stage_keep = np.zeros(len(keep), dtype=bool)
            stage_keep[order[: int(share * len(order))]] = True
            heads = _fit(wb, r, target, keep & stage_keep, weights, rng=rng)
    else:
        heads = _fit(wb, r, target, keep, weights, rng=rng)
    if r.cotrain_rounds and len(wb.views) > 1:
        views = wb.views
        for _ in range(r.cotrain_rounds):
            preds = [_predict(wb, _fit(wb, r, target, keep, weights, cols=[v]), "strong_train") for v in views]
            agree = np.mean([(p > 0.5) for p in preds], axis=0)
            confident = (agree == 0) | (agree == 1)  # every view agrees: take their label
            target = np.where(confident, agree, target)
            keep = keep | confident
        heads = _fit(wb, r, target, keep, weights, rng=rng)
    for _ in range(r.self_train_rounds):
        student = _predict(wb, heads, "strong_train")
        target = (1 - r.self_train_mix) * target + r.self_train_mix * (student > 0.5)
        heads = _fit(wb, r, target, keep, weights, rng=rng)
    tests = {s: (1 - r.test_zeroshot_mix) * _predict(wb, heads, s) + r.test_zeroshot_mix * wb.zeroshot(s)
             for s in TEST_SPLITS}
    return tests, _predict(wb, heads, "strong_train")


#: The entry point of a recipe idea's folder (beside its ``recipe.json``): every idea folder, a recipe's or an
#: agent's own, is re-run the same way, ``python run.py --testbed NAME --out DIR``.
RUN_PY = '''"""Re-run this idea: python run.py --testbed NAME --out DIR (writes DIR/predictions.jsonl)."""
import sys
from pathlib import Path

from aar.w2s.recipes import main

raise SystemExit(main([str(Path(__file__).with_name("recipe.json")), *sys.argv[1:]]))
'''


def main(argv: list[str] | None = None) -> int:
    """``python -m aar.w2s.recipes RECIPE.json --testbed NAME --out DIR``: predictions + checks + timing."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("recipe", type=Path, help="JSON file with Recipe fields")
    ap.add_argument("--testbed", required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for predictions.jsonl and result.json")
    args = ap.parse_args(argv)
    try:
        recipe = Recipe.model_validate_json(args.recipe.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: bad recipe {args.recipe}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    start = time.monotonic()
    wb = Workbench(args.testbed)
    tests, train = run_recipe(wb, recipe)
    wb.save_predictions(tests, args.out / "predictions.jsonl")
    result = {"recipe": recipe.model_dump(), "families": recipe.families(), "checks": wb.checks(tests, train),
              "seconds": round(time.monotonic() - start, 2)}
    (args.out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
