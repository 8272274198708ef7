"""Baselines on the trusted side: run methods over seeds, score them with labels, store W and S.

``run_baselines`` is the admin path behind ``aar baselines``: methods run on the public view exactly
as an agent would run them (the ceiling alone also gets ``strong_train`` labels), then the label
store scores them. Every method also runs in each private world (:mod:`aar.labels.worlds`), where final
scores come from. It stores the weak, ceiling and method predictions of both for the eval server, which
computes W and S from them, and writes the measured criteria into the testbed card.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from aar.config import Settings, get_settings
from aar.labels.criteria import record_criteria
from aar.labels.power import private_half_power
from aar.labels.prepare import prepare_testbed
from aar.labels.references import BaselinePredictions, save_baselines
from aar.labels.room import REFERENCE, private_half_room
from aar.labels.sealed import reference_method
from aar.labels.store import load_labelled
from aar.labels.worlds import private_worlds, world_testbed
from aar.w2s.experiment import make_context, run_method
from aar.w2s.methods import METHODS, MethodNotApplicable
from aar.w2s.models import ModelSpec
from aar.w2s.progress import progress_enabled
from aar.w2s.results import (
    SE,
    BaselineReport,
    MethodResult,
    ModelAcc,
    SplitAcc,
    SplitPGR,
)
from aar.w2s.scoring import bootstrap_se, correctness, mean_se, pgr
from aar.w2s.testbeds import DEFAULT_TESTBED, default_models
from aar.w2s.testbeds.base import TEST_SPLITS, Split, Testbed, public_dir

DEFAULT_METHODS = (
    "weak",
    "ceiling",
    "vanilla",
    "vanilla_soft",
    "confident",
    "logconf",
    "zeroshot",
    "ue_zeroshot",
    "weak_zeroshot_mix",
    "critic",
)


def _trusted_view(tb: Testbed) -> Testbed:
    """Public view plus strong_train labels: only the ceiling may use it."""
    view = tb.public_view()
    st = tb["strong_train"]
    view.splits["strong_train"] = Split(list(st.items), st.labels, weak=st.weak)
    return view


def run_baselines(
    testbed: str | None = None,
    methods: Sequence[str] | None = None,
    seeds: int = 3,
    progress: bool = True,
    settings: Settings | None = None,
    strong: ModelSpec | None = None,
    reference: bool = False,
) -> BaselineReport:
    """Run methods over ``seeds`` seeds with labels, store W and S, and return the report.

    The weak model is the one the testbed published at prepare time (its spec is in the testbed's
    metadata); ``strong`` overrides the testbed's default strong model. ``reference`` also runs the
    sealed reference method (:mod:`aar.labels.sealed`) in every world: the report and the card then show
    the testbed's room above the best baseline (:mod:`aar.labels.room`).
    """
    settings = settings or get_settings()
    name = testbed or DEFAULT_TESTBED
    if not (public_dir(name, settings) / "testbed.json").exists():
        prepare_testbed(name, settings=settings)
    tb = load_labelled(name, settings)
    strong = strong or default_models(name)[1]
    weak = ModelSpec.model_validate({k: v for k, v in tb.meta["weak_model"].items() if k != "seed"})
    wanted = list(methods or DEFAULT_METHODS)
    for m in wanted:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    order = ["weak", "ceiling"] + [m for m in wanted if m not in ("weak", "ceiling")]
    if reference:
        order.append(REFERENCE)
    worlds = [tb, *(world_testbed(tb, w) for w in private_worlds(name, settings))]  # the public one first
    runs: list[dict[str, list[dict[str, np.ndarray]]]] = [{m: [] for m in order} for _ in worlds]
    seconds: dict[str, float] = dict.fromkeys(order, 0.0)  # in the public world: what an agent's run costs
    skipped: dict[str, str] = {}
    show = progress and progress_enabled()
    from rich.progress import Progress

    with Progress(transient=True, disable=not show) as bar:
        task = bar.add_task("baselines", total=seeds * len(order) * len(worlds))
        for w, (world, preds) in enumerate(zip(worlds, runs, strict=True)):
            where = "public world" if w == 0 else f"private world {w}/{len(worlds) - 1}"
            public, trusted = world.public_view(), _trusted_view(world)
            for seed in range(seeds):
                ctx = make_context(public, strong, seed, settings)
                trusted_ctx = make_context(trusted, strong, seed, settings)
                for m in order:
                    bar.update(task, description=f"{where}, seed {seed}: {m}")
                    t0 = time.perf_counter()
                    if m not in skipped:
                        try:
                            if m == REFERENCE:
                                preds[m].append(reference_method(ctx).test_probs)
                            else:
                                preds[m].append(run_method(m, trusted_ctx if m == "ceiling" else ctx).test_probs)
                        except MethodNotApplicable as exc:
                            skipped[m] = f"{exc} ({where})"
                    if w == 0:
                        seconds[m] += time.perf_counter() - t0
                    bar.advance(task)
    for m in skipped:  # not applicable in some world: in none
        for preds in runs:
            preds[m] = []
    report, _ = score_runs(tb, runs[0], seconds, skipped, order, seeds, weak, strong)
    public_world = _as_dicts(tb, runs[0])
    private_world: dict[str, list[dict[str, float]]] = {m: [{} for _ in range(seeds)] for m in public_world}
    for world, preds in zip(worlds[1:], runs[1:], strict=True):
        for m, per_seed in _as_dicts(world, preds).items():
            for merged, run in zip(private_world[m], per_seed, strict=True):
                merged.update(run)
    stored = BaselinePredictions(testbed=name, weak=public_world.pop("weak"), ceiling=public_world.pop("ceiling"),
                                 reference=public_world.pop(REFERENCE, []), methods=public_world,
                                 private_world=private_world)
    save_baselines(report, stored, settings)
    ids = {s: tb[s].ids for s in TEST_SPLITS}
    labels = {i: int(y) for s in TEST_SPLITS for i, y in zip(ids[s], tb[s].require_labels(), strict=True)}
    power = private_half_power(report, private_world, labels, ids, settings)
    room = private_half_room(report, private_world, labels, ids, settings) if report.reference else None
    record_criteria(report, power, settings, room)
    return report


def _as_dicts(tb: Testbed, preds: dict[str, list[dict[str, np.ndarray]]]) -> dict[str, list[dict[str, float]]]:
    """Per-seed test predictions as ``{item id: p}`` over the test splits of ``tb``."""
    ids = {s: tb[s].ids for s in TEST_SPLITS}
    return {m: [{i: float(p) for s in TEST_SPLITS for i, p in zip(ids[s], run[s], strict=True)} for run in runs]
            for m, runs in preds.items() if runs}


def score_runs(
    tb: Testbed,
    preds: dict[str, list[dict[str, np.ndarray]]],
    seconds: dict[str, float],
    skipped: dict[str, str],
    order: list[str],
    seeds: int,
    weak: ModelSpec,
    strong: ModelSpec,
) -> tuple[BaselineReport, dict[str, dict[str, np.ndarray]]]:
    """Accuracy and PGR per method (means over seeds; SE over seeds for accuracy, bootstrap for PGR).

    Also returns each method's per-item correctness on each test split (mean over seeds).
    """
    labels = {s: tb[s].require_labels() for s in TEST_SPLITS}
    labels["combined"] = np.concatenate([labels[s] for s in TEST_SPLITS])

    def per_seed_correct(runs: list[dict[str, np.ndarray]]) -> dict[str, list[np.ndarray]]:
        out: dict[str, list[np.ndarray]] = {k: [] for k in (*TEST_SPLITS, "combined")}
        for run in runs:
            run = {**run, "combined": np.concatenate([run[s] for s in TEST_SPLITS])}
            for k in out:
                out[k].append(correctness(run[k], labels[k]))
        return out

    correct = {m: per_seed_correct(preds[m]) for m in order if preds[m]}
    keys = {"test_id": "id", "test_ood": "ood", "combined": "combined"}

    def acc_stats(m: str) -> tuple[dict[str, float], dict[str, float]]:
        means, ses = {}, {}
        for split, key in keys.items():
            means[key], ses[key] = mean_se([c.mean() for c in correct[m][split]])
        return means, ses

    w_acc, w_se = acc_stats("weak")
    s_acc, s_se = acc_stats("ceiling")
    methods = []
    for m in order:
        if m in skipped:
            methods.append(
                MethodResult(
                    name=m,
                    acc=SplitAcc(id=None, ood=None),
                    pgr=SplitPGR(id=None, ood=None, combined=None),
                    se=SE(acc=SplitAcc(id=None, ood=None)),
                    seconds=round(seconds[m], 2),
                    note=f"not applicable: {skipped[m]}",
                )
            )
            continue
        acc, se = acc_stats(m)
        pg: dict[str, float | None] = {}
        pg_se: dict[str, float | None] = {}
        for split, key in keys.items():
            pg[key] = pgr(acc[key], w_acc[key], s_acc[key])
            avg = [np.mean(correct[x][split], axis=0) for x in (m, "weak", "ceiling")]
            _, boot = bootstrap_se(*avg)
            pg_se[key] = None if pg[key] is None or not np.isfinite(boot) else boot
        methods.append(
            MethodResult(
                name=m,
                acc=SplitAcc(**acc),
                pgr=SplitPGR(**pg),
                se=SE(acc=SplitAcc(**se), pgr=SplitPGR(**pg_se)),
                seconds=round(seconds[m], 2),
            )
        )
    item_correct = {m: {s: np.mean(correct[m][s], axis=0) for s in TEST_SPLITS} for m in correct}
    ref = next((m for m in methods if m.name == REFERENCE), None)
    methods = [m for m in methods if m.name != REFERENCE]
    report = BaselineReport(
        testbed=tb.name,
        seeds=seeds,
        weak=ModelAcc(acc=SplitAcc(**w_acc), se=SE(acc=SplitAcc(**w_se))),
        ceiling=ModelAcc(acc=SplitAcc(**s_acc), se=SE(acc=SplitAcc(**s_se))),
        methods=methods,
        reference=ref,
        config={"weak": weak.model_dump(), "strong": strong.model_dump()},
    )
    return report, item_correct
