"""Turn normalised labelled records into a balanced ``Testbed`` with stable ids.

Shared by the Hugging Face and JSONL sources: records are ``(item, label, difficulty, group)`` where
group is ``"id"`` (train + ID test pool) or ``"ood"``. ID records are split into weak_train /
strong_train / test_id; labels are balanced within every difficulty level of every split by
down-sampling the majority label (pairwise items can instead be balanced by swapping A and B).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from aar.w2s.testbeds.base import Format, Item, Split, Testbed, TestbedError

ID_FRACTIONS = {"weak_train": 0.35, "strong_train": 0.40, "test_id": 0.25}


@dataclass(frozen=True)
class Record:
    item: Item
    label: int
    difficulty: str = "all"
    group: str = "id"


def stable_id(prefix: str, *parts: str) -> str:
    """A short id derived from the item's content, identical across runs and machines."""
    return f"{prefix}-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def swap_balance(records: list[Record], rng: np.random.Generator) -> list[Record]:
    """Pairwise only: swap A/B on half of each difficulty level so label 1 is exactly half (±1)."""
    out = []
    by_level: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_level[r.difficulty].append(r)
    for level in sorted(by_level):
        group = by_level[level]
        want = np.array([i % 2 for i in range(len(group))])
        rng.shuffle(want)
        for r, y in zip(group, want, strict=True):
            it = r.item
            if r.label != y:
                it = Item(it.id, it.prompt, it.answer_b or "", it.answer_a)
            out.append(Record(it, int(y), r.difficulty, r.group))
    return out


def downsample_balance(records: list[Record], rng: np.random.Generator) -> list[Record]:
    """Drop majority-label records within each difficulty level until labels are balanced."""
    by_key: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for r in records:
        by_key[(r.difficulty, r.label)].append(r)
    keep: list[Record] = []
    for level in sorted({d for d, _ in by_key}):
        pos, neg = by_key[(level, 1)], by_key[(level, 0)]
        k = min(len(pos), len(neg))
        for group in (pos, neg):
            keep += [group[i] for i in rng.permutation(len(group))[:k]]
    return keep


def assemble(
    name: str,
    fmt: Format,
    records: list[Record],
    *,
    seed: int = 0,
    meta: dict | None = None,
    max_items: int | None = None,
) -> Testbed:
    """Balance, shuffle and split records into the four W2S splits."""
    rng = np.random.default_rng(seed)
    if not records:
        raise TestbedError(f"testbed {name!r}: no records")
    ids = [r.item.id for r in records]
    if len(set(ids)) != len(ids):
        raise TestbedError(f"testbed {name!r}: duplicate item ids")
    balance = swap_balance if fmt == "pairwise" else downsample_balance
    pools = {g: [r for r in records if r.group == g] for g in ("id", "ood")}
    if not pools["id"] or not pools["ood"]:
        raise TestbedError(f"testbed {name!r} needs both in-distribution and OOD records")
    splits: dict[str, Split] = {}
    id_pool = [pools["id"][i] for i in rng.permutation(len(pools["id"]))]
    start = 0
    for split, frac in ID_FRACTIONS.items():
        n = int(round(frac * len(id_pool))) if split != "test_id" else len(id_pool) - start
        chunk = balance(id_pool[start : start + n], rng)
        splits[split] = _to_split(chunk, rng, max_items)
        start += n
    splits["test_ood"] = _to_split(balance(pools["ood"], rng), rng, max_items)
    tb = Testbed(name, fmt, splits, meta or {})
    tb.validate()
    return tb


def _to_split(records: list[Record], rng: np.random.Generator, max_items: int | None) -> Split:
    order = rng.permutation(len(records))
    if max_items is not None:
        order = order[:max_items]
    chosen = [records[i] for i in order]
    return Split(
        [r.item for r in chosen], np.array([r.label for r in chosen], dtype=np.int64), [r.difficulty for r in chosen]
    )
