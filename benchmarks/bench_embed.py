"""Embedding throughput of the cold path: the float32 PyTorch path before issue 20 vs today's, side by side.

On one sample of real ``wordsense`` texts (prompts, definitions and "prompt definition" joints), per
encoder and pool: texts/s of each runtime (interleaved rounds, since the cores are shared), their
ratio and the cosine of int8 vs float32 embeddings. Then the whole cold path of the strong model's
features on some items from an empty cache: before (the strong model with "joint" features, one
forward pass per pool) vs today (the default strong model without joints, planned as one job by
``warm_features``), both in PyTorch float32, and today's in int8 ONNX (opt-in), in items/s. Then
downstream: the card's numbers (W, S, vanilla, zero-shot) on the same items with float32 vs int8
features, with paired standard errors over items (``--prepared NAME``: on a full prepared testbed).

    AAR_QUIET=1 .venv/bin/python benchmarks/bench_embed.py --home /tmp/bench-home --max-items 1500
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from aar.config import Settings
from aar.labels.store import load_labelled
from aar.w2s.models import ModelSpec, build_model, encoder
from aar.w2s.models.encoder import ENCODE_STATS, EncoderSpec
from aar.w2s.models.runtime import RUNTIME_ENV
from aar.w2s.models.warm import warm_features
from aar.w2s.testbeds import build_testbed, default_models
from aar.w2s.testbeds.base import Format, Item, Testbed

RUNTIMES = ("torch", "onnx-int8")


def build(home: Path, max_items: int) -> Testbed:
    """The labelled testbed (built with float32 features, as today, so both runtimes see the same items)."""
    os.environ[RUNTIME_ENV] = "torch"
    try:
        return build_testbed("wordsense", "bench", max_items, Settings(home=home))
    finally:
        del os.environ[RUNTIME_ENV]


def texts_of(items: list[Item]) -> tuple[list[str], list[str]]:
    """(texts the strong model mean-pools, prompts it also target-pools), distinct and sorted."""
    prompts = sorted({it.prompt for it in items})
    answers = {a for it in items for a in (it.answer_a, it.answer_b or "")}
    joint = {f"{it.prompt} {a}" for it in items for a in (it.answer_a, it.answer_b or "")}
    return sorted(set(prompts) | answers | joint), prompts


def throughput(name: str, pool: str, texts: list[str], rounds: int) -> dict:
    """texts/s per runtime over interleaved rounds, and the cosine of int8 vs float32 rows."""
    seconds = {r: 0.0 for r in RUNTIMES}
    out: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for runtime in RUNTIMES:
            start = time.monotonic()
            out[runtime] = encoder._encode_batches(EncoderSpec(name=name, runtime=runtime), texts, (pool,))[pool]
            seconds[runtime] += time.monotonic() - start
    cos = (out["torch"] * out["onnx-int8"]).sum(1)
    rate = {r: rounds * len(texts) / seconds[r] for r in RUNTIMES}
    return {"rate": rate, "ratio": rate["onnx-int8"] / rate["torch"], "cos_mean": cos.mean(), "cos_min": cos.min()}


# The default strong model of ``wordsense`` before issue 20: MPNet and MiniLM with "joint" features.
STRONG_BEFORE = ModelSpec(backend="encoder", options={"C": 0.1, "views": [
    {"name": "mpnet", "features": ["joint", "product", "cosine", "answer"]},
    {"name": "minilm", "features": ["joint", "product", "cosine", "target_product", "target_cosine"]},
]})


def cold_path(items: list[Item], before: bool, fmt: Format, runtime: str) -> tuple[int, float]:
    """(texts encoded, seconds) for the strong model's features from an empty cache, before or today."""
    original = encoder.embed_pools

    def one_pass_per_pool(spec, texts, pools, cache=None, bar=None):  # type: ignore[no-untyped-def]
        return {p: original(replace(spec, pool=p), texts, (p,), cache)[p] for p in pools}

    os.environ[RUNTIME_ENV] = runtime
    done = replace(ENCODE_STATS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if before:
                encoder.embed_pools = one_pass_per_pool  # mean and target pools were encoded apart
                build_model(STRONG_BEFORE, fmt, Path(tmp)).item_features(items)  # type: ignore[attr-defined]
            else:
                warm_features([(default_models("wordsense")[1], items)], fmt, Path(tmp))
    finally:
        encoder.embed_pools = original
        del os.environ[RUNTIME_ENV]
    spent = ENCODE_STATS.since(done)
    return spent.texts, spent.seconds


def card_correct(tb: Testbed, cache_dir: Path, runtime: str) -> dict[str, dict[str, np.ndarray]]:
    """Per test part, item correctness of the card's quantities under one runtime's features: W (weak
    model trained on ``weak_train``), S (strong on ``strong_train`` ground truth), vanilla (strong on
    the weak model's hard labels) and the strong model's zero-shot rule."""
    os.environ[RUNTIME_ENV] = runtime
    try:
        weak_spec, strong_spec = default_models(tb.name)
        ws, train = tb.splits["weak_train"], tb.splits["strong_train"]
        weak = build_model(weak_spec, tb.format, cache_dir).fit(ws.items, ws.require_labels().astype(float), seed=0)
        ceiling = build_model(strong_spec, tb.format, cache_dir).fit(
            train.items, train.require_labels().astype(float), seed=0)
        vanilla = build_model(strong_spec, tb.format, cache_dir).fit(
            train.items, (weak.predict_proba(train.items) > 0.5).astype(float), seed=0)
        out = {}
        for part, split in (("id", tb.splits["test_id"]), ("ood", tb.splits["test_ood"])):
            y = split.require_labels() == 1
            out[part] = {
                "W": (weak.predict_proba(split.items) > 0.5) == y,
                "S": (ceiling.predict_proba(split.items) > 0.5) == y,
                "vanilla": (vanilla.predict_proba(split.items) > 0.5) == y,
                "zeroshot": (ceiling.zero_shot(split.items) > 0.5) == y,
            }
        return out
    finally:
        del os.environ[RUNTIME_ENV]


def report_downstream(tb: Testbed, cache_dir: Path) -> None:
    """The card's numbers on the same items with float32 vs int8 features; differences with paired SEs."""
    got = {r: card_correct(tb, cache_dir, r) for r in RUNTIMES}
    print(f"\ndownstream: the card's numbers on the same items ({len(tb.splits['test_id'])} ID / "
          f"{len(tb.splits['test_ood'])} OOD test items), float32 vs int8 features (paired SE over items)")
    print("{:5} {:9} {:>10} {:>10} {:>18}".format("part", "quantity", "torch fp32", "onnx int8", "int8 - fp32"))
    for part in ("id", "ood"):
        pgr = {}
        for q in ("W", "S", "vanilla", "zeroshot"):
            a, b = (got[r][part][q].astype(float) for r in RUNTIMES)
            d, se = b - a, (b - a).std(ddof=1) / np.sqrt(len(a))
            print(f"{part:5} {q:9} {a.mean():10.4f} {b.mean():10.4f} {d.mean():+9.4f} ± {se:.4f}")
        for r in RUNTIMES:
            c = {q: got[r][part][q].mean() for q in ("W", "S", "vanilla", "zeroshot")}
            pgr[r] = {q: (c[q] - c["W"]) / (c["S"] - c["W"]) for q in ("vanilla", "zeroshot")}
        print(f"{part:5} PGR      vanilla {pgr['torch']['vanilla']:.3f} -> {pgr['onnx-int8']['vanilla']:.3f}, "
              f"zeroshot {pgr['torch']['zeroshot']:.3f} -> {pgr['onnx-int8']['zeroshot']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "aar-bench-embed")
    parser.add_argument("--max-items", type=int, default=1500)
    parser.add_argument("--texts", type=int, default=2000, help="sampled texts per encoder for throughput")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cold-items", type=int, default=300)
    parser.add_argument("--sections", default="throughput,cold,downstream", help="which parts to run")
    parser.add_argument("--prepared", metavar="NAME", help="downstream only, on this prepared testbed of --home "
                        "(full size; its cache should hold both runtimes' features, or they are embedded)")
    args = parser.parse_args()
    os.environ.setdefault("AAR_HOME", str(args.home))  # the packaged MPNet and the exported models live here
    if args.prepared:
        report_downstream(load_labelled(args.prepared, Settings(home=args.home)), args.home / "cache")
        return

    tb = build(args.home, args.max_items)
    items = [it for split in tb.splits.values() for it in split.items]
    mean_texts, prompts = texts_of(items)
    rng = random.Random(0)
    sample = rng.sample(mean_texts, min(args.texts, len(mean_texts)))
    targets = rng.sample(prompts, min(args.texts // 4, len(prompts)))
    print(f"testbed wordsense max_items={args.max_items}: {len(items)} items, {len(mean_texts)} distinct texts "
          f"to mean-pool, {len(prompts)} prompts to target-pool; cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    for name in ("minilm", "mpnet"):  # export once, outside the timings
        start = time.monotonic()
        encoder._encode_batches(EncoderSpec(name=name, runtime="onnx-int8"), sample[:4], ("mean",))
        print(f"{name}: int8 ONNX ready in {time.monotonic() - start:.0f} s (export on first use only)")

    sections = set(args.sections.split(","))
    if "throughput" in sections:
        report_throughput(sample, targets, args.rounds)
    if "cold" in sections:
        report_cold_path(tb, args.cold_items, args.rounds)
    if "downstream" in sections:
        report_downstream(tb, args.home / "cache")


def report_throughput(sample: list[str], targets: list[str], rounds: int) -> None:
    print(f"\nthroughput, {rounds} interleaved rounds (texts/s; cosine of int8 vs float32 rows)")
    header = ("encoder", "pool", "texts", "torch fp32", "onnx int8", "ratio", "cos mean", "cos min")
    print("{:8} {:7} {:>6} {:>11} {:>10} {:>6} {:>9} {:>8}".format(*header))
    for name, pool, texts in (("minilm", "mean", sample), ("minilm", "target", targets), ("mpnet", "mean", sample)):
        r = throughput(name, pool, texts, rounds)
        print(f"{name:8} {pool:7} {len(texts):6} {r['rate']['torch']:11.1f} {r['rate']['onnx-int8']:10.1f} "
              f"{r['ratio']:5.2f}x {r['cos_mean']:9.4f} {r['cos_min']:8.4f}")


def report_cold_path(tb: Testbed, n_items: int, rounds: int) -> None:
    cold = tb.splits["strong_train"].items[:n_items]
    print(f"\ncold path: strong model features of {len(cold)} items, empty cache, {rounds} interleaved rounds")
    runs = {"before (fp32, joints, a pass per pool)": (True, "torch"),
            "today (fp32, no joints, one job)": (False, "torch"),
            "today, int8 ONNX (opt-in)": (False, "onnx-int8")}
    texts, seconds = dict.fromkeys(runs, 0), dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for label, (before, runtime) in runs.items():
            n, s = cold_path(cold, before, tb.format, runtime)
            texts[label] += n
            seconds[label] += s
    for label in runs:
        print(f"  {label:45} {texts[label] // rounds:6} texts in {seconds[label] / rounds:6.1f} s: "
              f"{rounds * len(cold) / seconds[label]:5.1f} items/s")
    old, new, int8 = seconds.values()
    print(f"  speed-up of the cold path: {old / new:.2f}x in float32, {old / int8:.2f}x with int8 "
          f"(load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
