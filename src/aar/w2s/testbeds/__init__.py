"""The testbed registry: built-in offline testbeds, Hugging Face testbeds, and ``jsonl:PATH``.

``build_testbed`` builds a labelled testbed in memory from its source and a secret salt; writing it
(public splits, label store, card) is the trusted side's job (``aar.labels.prepare``). Each entry
declares its **label sources**: the files a testbed's labels can be derived from, which the sandbox
hides from research agents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from aar.config import Settings, get_settings
from aar.w2s.spec import ModelSpec
from aar.w2s.testbeds.base import Format, Item, Testbed, TestbedError, public_dir, salted_seed

DEFAULT_TESTBED = "wordsense"

# The embedded default pair. Weak: the packaged MiniLM truncated to its first layer. Strong: one head
# over frozen MPNet-base and full MiniLM features of the sentence, the definition and the marked word:
# how close the definition is to the sentence, to the word in context (its contextual embedding) and
# to the word alone. No "joint" (sentence + definition as one text) features: they were 60% of the
# tokens MPNet embeds and added nothing once the word-level features are in (issue 20: on the stored
# wordsense salt S - W went from 0.165 / 0.156 with joints to 0.169 / 0.161 without them).
STRONG_VIEWS = [
    {"name": name, "features": ["product", "cosine", "answer", "target_product", "target_cosine", "word_cosine"]}
    for name in ("mpnet", "minilm")
]
ENCODER_WEAK = ModelSpec(backend="encoder", options={"layers": 1, "features": ["product", "cosine"]})
ENCODER_STRONG = ModelSpec(backend="encoder", options={"views": STRONG_VIEWS, "C": 0.1})
# Binary verification pair. Weak: the first MiniLM layer, with the marked word's contextual embedding
# (it can tell a little whether a definition is about the word). Strong: the same features as above.
VERIFY_WEAK = ModelSpec(backend="encoder", options={"layers": 1, "features": ["product", "cosine", "target_cosine"]})
VERIFY_STRONG = ModelSpec(backend="encoder", options={"views": STRONG_VIEWS, "C": 0.3})
# wordsense-room (experimental, issue 17): a weak model that also sees the marked word out of context, so its
# errors are nearly independent of the strong model's zero-shot rule (error correlation 0.03-0.07 instead of
# 0.28 at the same accuracy), and a harsher adversarial filter that holds that rule lower.
ROOM_WEAK = ModelSpec(backend="encoder", options={"views": [
    {"layers": 1, "features": ["product", "cosine"]}, {"name": "mpnet", "features": ["word_cosine"]},
    {"features": ["word_cosine"]}]})
ROOM_DROP = {"id": 0.28, "ood": 0.26}
ROOM_SIZES = {"test_id": 5400, "weak_train": 600}  # a smaller test_id keeps strong_train above 8,000
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
    build: Callable[[str, int | None, Settings], Testbed]
    weak: ModelSpec
    strong: ModelSpec
    label_sources: tuple[str, ...] = ()


class TestbedInfo(BaseModel):
    """One row of ``aar testbed list --json`` (a stable contract)."""

    name: str
    format: str
    source: str
    offline: bool
    default: bool
    prepared: bool = False
    description: str = ""
    label_sources: list[str] = []


def _wordsense(name: str, fmt: Format, drop: dict[str, float] | None = None, sizes: dict[str, int] | None = None
               ) -> Callable[[str, int | None, Settings], Testbed]:
    """The builder of the registry entry ``name``; ``sizes`` apply to full builds only (small builds scale)."""

    def build(salt: str, max_items: int | None, settings: Settings) -> Testbed:
        from aar.w2s.models.warm import warm_features
        from aar.w2s.testbeds.wordsense import build_wordsense

        models = default_models(name)

        def warm(candidates: list[Item]) -> int:  # every feature either model needs, as one cold-path job
            return warm_features([(spec, candidates) for spec in models], fmt, settings.cache_dir)

        return build_wordsense(fmt, salt, cache_dir=settings.cache_dir, max_cases=max_items, warm=warm, drop=drop,
                               sizes=sizes if max_items is None else None)

    return build


def _hf(name: str) -> Callable[[str, int | None, Settings], Testbed]:
    def build(salt: str, max_items: int | None, settings: Settings) -> Testbed:
        from aar.w2s.testbeds.hf import load_hf_testbed

        return load_hf_testbed(name, seed=salted_seed(salt), max_items=max_items)

    return build


WORDNET_SOURCES = ("/usr/share/wordnet", "/usr/local/share/wordnet", "$WNSEARCHDIR")  # as wordnet.SEARCH_DIRS
HF_SOURCES = ("~/.cache/huggingface", "$HF_HOME", "$AAR_HF_LOCAL_DIR")


REGISTRY: dict[str, TestbedEntry] = {
    e.name: e
    for e in [
        TestbedEntry(
            "wordsense",
            "pairwise",
            "builtin",
            True,
            "WordNet word-sense choice (A/B), nouns+verbs ID, adjectives OOD",
            _wordsense("wordsense", "pairwise"),
            ENCODER_WEAK,
            ENCODER_STRONG,
            WORDNET_SOURCES,
        ),
        TestbedEntry(
            "wordsense-room",
            "pairwise",
            "builtin",
            True,
            "Experimental: wordsense with a decorrelated weak model and a harsher filter (issue 17)",
            _wordsense("wordsense-room", "pairwise", ROOM_DROP, ROOM_SIZES),
            ROOM_WEAK,
            ENCODER_STRONG,
            WORDNET_SOURCES,
        ),
        TestbedEntry(
            "wordsense-verify",
            "binary",
            "builtin",
            True,
            "WordNet word-sense verification (True/False), nouns+verbs ID, adjectives OOD",
            _wordsense("wordsense-verify", "binary"),
            VERIFY_WEAK,
            VERIFY_STRONG,
            WORDNET_SOURCES,
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
            HF_SOURCES,
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
            HF_SOURCES,
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
            HF_SOURCES,
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
            label_sources=list(e.label_sources),
        )
        for e in REGISTRY.values()
    ]
    if settings.testbeds_dir.exists():
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
                        label_sources=[str(meta["path"])] if "path" in meta else [],
                    )
                )
    return rows


def testbed_name(name: str) -> str:
    """The name a testbed is stored under: the registry name, or the file stem for ``jsonl:PATH``."""
    if name.startswith("jsonl:"):
        from aar.w2s.testbeds.jsonl import jsonl_name

        return jsonl_name(Path(name[6:]))
    if name not in REGISTRY:
        raise TestbedError(f"unknown testbed {name!r}; known: {', '.join(REGISTRY)} (or jsonl:PATH)")
    return name


def build_testbed(name: str, salt: str = "", max_items: int | None = None, settings: Settings | None = None) -> Testbed:
    """Build (not write) a labelled testbed by registry name or ``jsonl:PATH``, every random choice from ``salt``.

    ``aar testbed prepare`` always passes the testbed's secret salt; the empty default gives a
    reproducible public build (for tests and inspection only).
    """
    settings = settings or get_settings()
    if name.startswith("jsonl:"):
        from aar.w2s.testbeds.jsonl import load_jsonl_testbed

        return load_jsonl_testbed(Path(name[6:]), seed=salted_seed(salt), max_items=max_items)
    tb = REGISTRY[testbed_name(name)].build(salt, max_items, settings)
    tb.name = name  # the registry name is authoritative (several entries share one builder)
    return tb


def label_sources(name: str, settings: Settings | None = None) -> list[str]:
    """The files a testbed's labels can be derived from (the sandbox hides them)."""
    for info in list_testbeds(settings):
        if info.name == name:
            return info.label_sources
    raise TestbedError(f"unknown testbed {name!r}")


def all_label_sources(settings: Settings | None = None) -> list[Path]:
    """Every registered or prepared testbed's label sources as paths (``~`` and ``$VARS`` expanded; unset skipped)."""
    paths: set[Path] = set()
    for info in list_testbeds(settings):
        for source in info.label_sources:
            expanded = os.path.expanduser(os.path.expandvars(source))
            if "$" not in expanded:
                paths.add(Path(expanded))
    return sorted(paths)


def default_models(name: str) -> tuple[ModelSpec, ModelSpec]:
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
    "all_label_sources",
    "build_testbed",
    "default_models",
    "label_sources",
    "list_testbeds",
    "testbed_name",
]
