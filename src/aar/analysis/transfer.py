"""Does an idea transfer? Re-run it, unchanged, on its own testbed and on another one, and score both on the
trusted side on the *full* test set (both halves: each run is on a fresh-id view of every test item), beside
the target's best shipped baseline (paired SE, same items).

Only hyper-parameters may be tuned, and only on label-free checks: for a recipe idea, ``tune`` variants of
its numeric settings (the head's C and the strengths of the genes it already uses; no gene is switched on
or off, so the method is the same) are each re-run on the target, and the one with the best label-free
proxy (agreement with the weak model where it is confident and with the strong model's zero-shot view,
as ``evolve`` uses) is scored. No label is read before the chosen variant's predictions are final.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, Field

from aar.analysis.rerun import Rerun
from aar.config import Settings
from aar.evalserver.models import BaselineComparison, PartValues
from aar.labels.replay import rerun_everywhere
from aar.w2s.recipes import Recipe

#: Genes whose value is a strength of an idea the recipe uses (tuned only where it is not the default).
TUNABLE_STRENGTHS = ("filter_keep", "weight_power", "zeroshot_mix", "self_train_mix", "test_zeroshot_mix")


class ScoredRun(BaseModel):
    """An idea's re-run on one testbed, scored on all its test items."""

    testbed: str
    ok: bool
    reason: str | None = None
    seconds: float = 0.0
    pgr: PartValues | None = None
    pgr_se: PartValues | None = None
    acc: PartValues | None = None
    vs_best_baseline: BaselineComparison | None = None
    proxy: float | None = Field(default=None, description="Label-free proxy of the predictions.")


class Trial(BaseModel):
    """One tuning variant on the target: its hyper-parameters and label-free proxy (no label involved)."""

    params: dict[str, float | None]
    ok: bool
    proxy: float | None = None
    reason: str | None = None


class TransferResult(BaseModel):
    """Source and target scores of one idea, side by side."""

    team: str
    idea: str
    snapshot_id: str | None
    source: ScoredRun
    target: ScoredRun
    tuning: list[Trial] = Field(default_factory=list)
    chosen: dict[str, float | None] | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, object]:
        """The flat row ``aar report`` shows (combined parts)."""
        cmp = self.target.vs_best_baseline

        def combined(v: PartValues | None) -> float | None:
            return None if v is None else v.combined

        return {"idea": self.idea, "source_testbed": self.source.testbed, "target_testbed": self.target.testbed,
                "source_pgr": combined(self.source.pgr), "source_pgr_se": combined(self.source.pgr_se),
                "target_pgr": combined(self.target.pgr), "target_pgr_se": combined(self.target.pgr_se),
                "best_baseline": cmp.baseline if cmp else None,
                "best_baseline_pgr": combined(cmp.baseline_pgr) if cmp else None,
                "diff": combined(cmp.diff) if cmp else None, "diff_se": combined(cmp.paired_se) if cmp else None,
                "target_ok": self.target.ok, "target_reason": self.target.reason}


def score_all_items(testbed: str, predictions: dict[str, float], settings: Settings) -> ScoredRun:
    """Accuracy and PGR (bootstrap SE) on every test item, and the paired comparison with the best baseline."""
    from aar.evalserver.labels import load_labels
    from aar.evalserver.scoring import compare_with_best_baseline, score

    tl = load_labels(testbed, settings)
    probs = np.array([predictions[i] for i in tl.ids], dtype=np.float64)
    s = score(tl, probs, "all", with_se=True)
    return ScoredRun(testbed=testbed, ok=True, pgr=s.pgr, pgr_se=s.pgr_se, acc=s.acc,
                        vs_best_baseline=compare_with_best_baseline(tl, probs, "all"))


def label_free_proxy(testbed: str, predictions: dict[str, float], settings: Settings) -> float:
    """The ``evolve`` proxy of a prediction: label-free checks on the published items, public features only."""
    from aar.agents.evolve import proxy_score
    from aar.w2s.features import export_features
    from aar.w2s.testbeds.base import TEST_SPLITS
    from aar.w2s.workbench import Workbench

    export_features(testbed, settings=settings)  # found, or made once
    wb = Workbench(testbed, settings)
    return proxy_score(wb.checks({s: np.array([predictions[i] for i in wb.ids(s)]) for s in TEST_SPLITS}))


def tuning_variants(recipe: Recipe, n: int, seed: int = 0) -> list[Recipe]:
    """``recipe`` itself, then ``n - 1`` variants of its hyper-parameters: C on a log scale around the
    testbed's default (None) or its own value, and each strength it uses scaled within its bounds."""
    rng = np.random.default_rng(seed)
    out = [recipe]
    fields = Recipe.model_fields
    for _ in range(max(0, n - 1)):
        change: dict[str, object] = {"C": round(float((recipe.C or 1.0) * 10 ** rng.uniform(-1, 1)), 4)}
        for name in TUNABLE_STRENGTHS:
            value = getattr(recipe, name)
            if value == fields[name].default:
                continue  # not part of this method: never switched on
            lo, hi = _bounds(name)
            change[name] = round(float(np.clip(value * rng.uniform(0.5, 1.5), lo, hi)), 4)
        out.append(recipe.model_copy(update=change))
    return out


def _bounds(name: str) -> tuple[float, float]:
    lo = hi = None
    for m in Recipe.model_fields[name].metadata:
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
    return float(lo if lo is not None else 0.0), float(hi if hi is not None else 1.0)


def _scored(run: Rerun, settings: Settings) -> ScoredRun:
    if not run.ok:
        return ScoredRun(testbed=run.testbed, ok=False, reason=run.reason, seconds=run.seconds)
    scored = score_all_items(run.testbed, run.predictions, settings)
    scored.seconds = run.seconds
    return scored


def transfer_idea(team: str, idea: str, code: bytes, recipe: Recipe | None, source: str, target: str,
                  settings: Settings, *, tune: int = 1, sandbox: str = "bwrap", timeout_s: float = 1800.0,
                  snapshot_id: str | None = None, progress: Callable[[str], None] | None = None) -> TransferResult:
    """Re-run ``code`` on ``source`` and on ``target`` (tuned on label-free checks when ``tune`` > 1, recipes
    only) and score both on all test items."""
    say = progress or (lambda _msg: None)
    if tune > 1 and recipe is None:
        raise ValueError("--tune needs a recipe idea: a folder's code runs unchanged (its run.py has no "
                         "declared hyper-parameters)")
    say(f"re-running {idea} on {source} (its own testbed)")
    src = _scored(rerun_everywhere(code, source, settings, sandbox=sandbox, timeout_s=timeout_s), settings)
    trials: list[Trial] = []
    chosen: dict[str, float | None] | None = None
    if recipe is not None and tune > 1:
        best: tuple[float, Rerun, dict[str, float | None]] | None = None
        for k, variant in enumerate(tuning_variants(recipe, tune)):
            say(f"tuning on {target}: variant {k + 1} of {tune}")
            run = rerun_everywhere(code, target, settings, sandbox=sandbox, timeout_s=timeout_s,
                                   replace={"recipe.json": variant.model_dump_json(indent=1).encode()})
            params = {"C": variant.C, **{n: getattr(variant, n) for n in TUNABLE_STRENGTHS
                                         if getattr(variant, n) != Recipe.model_fields[n].default}}
            if not run.ok:
                trials.append(Trial(params=params, ok=False, reason=run.reason))
                continue
            proxy = label_free_proxy(target, run.predictions, settings)
            trials.append(Trial(params=params, ok=True, proxy=round(proxy, 4)))
            if best is None or proxy > best[0]:
                best = (proxy, run, params)
        if best is None:
            tgt = ScoredRun(testbed=target, ok=False, reason="every tuning variant failed")
        else:
            tgt = _scored(best[1], settings)
            tgt.proxy = round(best[0], 4)
            chosen = best[2]
    else:
        say(f"re-running {idea} on {target}")
        run = rerun_everywhere(code, target, settings, sandbox=sandbox, timeout_s=timeout_s)
        tgt = _scored(run, settings)
        if run.ok:
            tgt.proxy = round(label_free_proxy(target, run.predictions, settings), 4)
    return TransferResult(team=team, idea=idea, snapshot_id=snapshot_id, source=src, target=tgt, tuning=trials,
                          chosen=chosen)
