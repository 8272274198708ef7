"""Accuracy and confusion matrix of the idea-family classifiers on the shipped labelled set.

    .venv/bin/python benchmarks/bench_families.py                       # offline (no key), with and without keywords
    .venv/bin/python benchmarks/bench_families.py --llm anthropic:claude-sonnet-4-5   # plus an LLM (its key set)
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("AAR_QUIET", "1")

from aar.analysis.families import ClassifierEval, LlmClassifier, OfflineClassifier, evaluate, load_labelled  # noqa: E402
from aar.hub.models import METHOD_FAMILIES  # noqa: E402

SHORT = dict(zip(METHOD_FAMILIES, ("ST", "ENS", "DIS", "DF", "CW", "LF", "UE", "CUR", "MI", "EVO", "OTH"), strict=True))


def show(title: str, result: ClassifierEval) -> None:
    print(f"\n{title}: accuracy {result.accuracy:.3f} ± {result.accuracy_se:.3f} (n={result.n}), "
          f"hard cases {result.hard_accuracy:.3f}")
    print("true \\ predicted " + " ".join(f"{SHORT[f]:>4}" for f in METHOD_FAMILIES))
    for f in METHOD_FAMILIES:
        row = result.confusion[f]
        print(f"{f:>24} " + " ".join(f"{row.get(g, 0) or '.':>4}" for g in METHOD_FAMILIES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", help="provider:model of an LLM classifier to measure too (needs its key)")
    args = parser.parse_args()
    items = load_labelled()
    show("offline (MiniLM centroids + keywords)", evaluate(OfflineClassifier(), items))
    show("offline, centroids only (keyword_weight=0)", evaluate(OfflineClassifier(keyword_weight=0.0), items))
    if args.llm:
        from aar.agents.llm import LlmConfig, make_provider

        provider, _, model = args.llm.partition(":")
        chat = make_provider(LlmConfig(provider=provider, model=model or "claude-sonnet-4-5"), dict(os.environ))  # type: ignore[arg-type]
        show(f"llm ({args.llm})", evaluate(LlmClassifier(chat), items))


if __name__ == "__main__":
    main()
