"""Built-in offline testbeds from WordNet 3.0 (Debian ``wordnet-base``): word-sense choice and verification.

Each item shows a sentence taken from the gloss examples of one sense of a word (the prompt is the
sentence itself) and asks which definition fits the word as used there. ``wordsense`` (pairwise):
A/B = the true sense's definition vs. another sense of the same word, with lengths within ±20%.
``wordsense-verify`` (binary): one definition, true or another sense's.

Construction, against known shortcuts:
- adversarial filtering: 20% of the items are removed, drawn from those the full MiniLM's
  context–definition cosine rule gets right, so the strong model's zero-shot rule leaves room;
- the "longer answer is correct" rate is balanced to exactly 50%, and A/B order (or True/False) is
  balanced within every difficulty level (difficulty = how many senses the word has);
- ID = nouns and verbs (weak_train 450, strong_train 3300, test_id 1000); OOD = adjectives
  (test_ood 1200). The small weak_train and large strong_train follow the W2S setting: the weak
  supervisor learns from little ground truth, the student sees many weakly labelled items.
- The prompt is the bare sentence: a question template shared by every item dilutes mean-pooled
  sentence embeddings, which made the weak model fall below 0.55 OOD.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aar.w2s.models.cache import ArrayCache
from aar.w2s.models.encoder import EncoderSpec, embed_texts
from aar.w2s.testbeds.base import Format, Item, Split, Testbed
from aar.w2s.testbeds.wordnet import read_index, read_synsets, wordnet_dir

ADVERSARIAL_DROP = 0.20
LENGTH_TOLERANCE = 0.20
ID_SIZES = {"weak_train": 450, "strong_train": 3300, "test_id": 1000}
OOD_SIZE = 1200
MAX_EXAMPLES_PER_SENSE = 2
ID_POS: tuple[str, ...] = ("n", "v")
OOD_POS: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class SenseCase:
    """A word in context with its true definition and a same-word distractor definition."""

    id: str
    pos: str
    word: str
    context: str
    true_def: str
    other_def: str
    n_senses: int

    @property
    def prompt(self) -> str:
        return self.context


def _difficulty(n_senses: int) -> str:
    return "2-3 senses" if n_senses <= 3 else ("4-7 senses" if n_senses <= 7 else "8+ senses")


def collect_cases(pos: str, rng: np.random.Generator, root: Path | None = None) -> list[SenseCase]:
    """All (word, sense, example, distractor) cases of one part of speech, deduplicated by sentence."""
    synsets, index = read_synsets(pos, root), read_index(pos, root)
    cases: list[SenseCase] = []
    seen: set[tuple[str, str]] = set()
    for word in sorted(index):
        offsets = index[word]
        if len(offsets) < 2 or not re.fullmatch(r"[a-z][a-z \-']*", word):
            continue
        pattern = re.compile(r"\b" + re.escape(word) + r"\b", re.IGNORECASE)
        for off in offsets:
            true = synsets[off]
            examples = [e for e in true.examples if pattern.search(e) and (word, e) not in seen]
            if not examples:
                continue
            n = len(true.definition)
            others = [
                synsets[o].definition
                for o in offsets
                if o != off
                and abs(len(synsets[o].definition) - n) <= LENGTH_TOLERANCE * n
                and synsets[o].definition != true.definition
            ]
            if not others:
                continue
            for context in examples[:MAX_EXAMPLES_PER_SENSE]:
                seen.add((word, context))
                uid = hashlib.sha256(f"{pos}|{word}|{off}|{context}".encode()).hexdigest()[:12]
                cases.append(
                    SenseCase(
                        f"ws-{uid}",
                        pos,
                        word,
                        context,
                        true.definition,
                        others[int(rng.integers(len(others)))],
                        len(offsets),
                    )
                )
    return cases


def adversarial_filter(
    cases: list[SenseCase], rng: np.random.Generator, cache: ArrayCache | None, encoder: str = "minilm",
    rate: float = ADVERSARIAL_DROP,
) -> list[SenseCase]:
    """Drop ``rate`` of all cases, drawn from those the ``encoder``'s context–definition cosine gets right."""
    spec = EncoderSpec(name=encoder)
    ctx = embed_texts(spec, [c.prompt for c in cases], cache)
    right = (ctx * embed_texts(spec, [c.true_def for c in cases], cache)).sum(1)
    wrong = (ctx * embed_texts(spec, [c.other_def for c in cases], cache)).sum(1)
    correct = np.flatnonzero(right > wrong)
    n_drop = min(len(correct), int(round(rate * len(cases))))
    drop = set(rng.choice(correct, size=n_drop, replace=False).tolist())
    return [c for i, c in enumerate(cases) if i not in drop]


def balance_length(cases: list[SenseCase], rng: np.random.Generator) -> list[SenseCase]:
    """Keep equal numbers of cases where the true definition is longer and where it is shorter."""
    longer = [c for c in cases if len(c.true_def) > len(c.other_def)]
    shorter = [c for c in cases if len(c.true_def) < len(c.other_def)]
    k = min(len(longer), len(shorter))
    keep = {c.id for group in (longer, shorter) for c in rng.permutation(np.array(group, dtype=object))[:k]}
    return [c for c in cases if c.id in keep]


def to_split(cases: list[SenseCase], fmt: Format, rng: np.random.Generator) -> Split:
    """Turn cases into items with labels balanced within each difficulty level."""
    by_level: dict[str, list[SenseCase]] = defaultdict(list)
    for c in cases:
        by_level[_difficulty(c.n_senses)].append(c)
    items, labels, levels = [], [], []
    for level in sorted(by_level):
        group = by_level[level]
        flags = np.array([i % 2 for i in range(len(group))])
        rng.shuffle(flags)
        for c, y in zip(group, flags, strict=True):
            if fmt == "pairwise":
                a, b = (c.other_def, c.true_def) if y == 1 else (c.true_def, c.other_def)
                items.append(Item(c.id, c.prompt, a, b))
            else:
                items.append(Item(c.id, c.prompt, c.true_def if y == 1 else c.other_def))
            labels.append(int(y))
            levels.append(level)
    order = rng.permutation(len(items))
    return Split([items[i] for i in order], np.array(labels)[order], [levels[i] for i in order])


def build_wordsense(
    fmt: Format,
    seed: int = 0,
    cache_dir: Path | None = None,
    name: str | None = None,
    max_cases: int | None = None,
    filter_encoder: str = "minilm",
    drop: dict[str, float] | None = None,
) -> Testbed:
    """Build the word-sense testbed in ``fmt`` (pairwise choice or binary verification).

    ``filter_encoder`` is the strong model whose zero-shot cosine rule the adversarial filter works
    against; ``drop`` the share of items it removes per group (``{"id": .., "ood": ..}``, default
    ``ADVERSARIAL_DROP`` each). ``max_cases`` caps the candidate pool per group before filtering,
    for quick small builds.
    """
    rates = {"id": ADVERSARIAL_DROP, "ood": ADVERSARIAL_DROP, **(drop or {})}
    rng = np.random.default_rng(seed)
    cache = ArrayCache(cache_dir) if cache_dir else None
    root = wordnet_dir()
    pools = {}
    for group, poses in (("id", ID_POS), ("ood", OOD_POS)):
        cases = [c for pos in poses for c in collect_cases(pos, rng, root)]
        if max_cases is not None:
            cases = [cases[i] for i in sorted(rng.permutation(len(cases))[:max_cases])]
        cases = balance_length(adversarial_filter(cases, rng, cache, filter_encoder, rates[group]), rng)
        pools[group] = [cases[i] for i in rng.permutation(len(cases))]
    splits: dict[str, Split] = {}
    start = 0
    id_pool = pools["id"]
    scale = min(1.0, len(id_pool) / sum(ID_SIZES.values()))
    for split, size in ID_SIZES.items():
        n = int(size * scale)
        splits[split] = to_split(id_pool[start : start + n], fmt, rng)
        start += n
    splits["test_ood"] = to_split(pools["ood"][:OOD_SIZE], fmt, rng)
    meta = {
        "source": "builtin",
        "description": "WordNet word-sense " + ("choice (A/B)" if fmt == "pairwise" else "verification (True/False)"),
        "construction": __doc__,
        "data": "WordNet 3.0 (Princeton University), Debian package wordnet-base",
        "adversarial_filter": {"encoder": filter_encoder, "drop": rates},
    }
    return Testbed(name or ("wordsense" if fmt == "pairwise" else "wordsense-verify"), fmt, splits, meta)
