"""The public / private division of a testbed's test items, made once when the testbed is written.

In each (split, difficulty, label) stratum a ``fraction`` of the items is public (published, with
scores released to workers); the rest is private (never published; the final score replays ideas on
it). The division is stored in ``eval_split.json`` beside the labels and read back strictly, so the
published items and the eval server's public part are always the same set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib

import numpy as np

from aar.config import Settings
from aar.labels.store import SALT_FILE, labels_dir
from aar.w2s.testbeds.base import TEST_SPLITS, Testbed, TestbedError

log = logging.getLogger("aar.evalserver")
SPLIT_FILE = "eval_split.json"
DEFAULT_FRACTION = 0.4  # the public share: the private side gets 60% (final scores need the power; see worlds)
DEFAULT_SEED = 0
FOLD_SEED = 1  # the private world's folds (``aar.labels.worlds``) draw from another stream than the division


def stored_salt(name: str, settings: Settings) -> str:
    path = labels_dir(name, settings) / SALT_FILE
    return path.read_text().strip() if path.exists() else ""


def _ids_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def divide(rows: list[dict], split_of: list[str], fraction: float, seed: int, name: str, salt: str = "") -> set[str]:
    """Choose the public ids: in each (split, difficulty, label) stratum, a ``fraction`` of items.

    The choice draws from ``seed``, the testbed's name and its secret ``salt`` (so the division cannot
    be recomputed from public code)."""
    strata: dict[tuple[str, str, int], list[str]] = {}
    for row, split in zip(rows, split_of, strict=True):
        key = (split, str(row.get("difficulty", "all")), int(row["label"]))
        strata.setdefault(key, []).append(str(row["id"]))
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(salt.encode())])
    public: set[str] = set()
    for key in sorted(strata):
        ids = sorted(strata[key])
        order = rng.permutation(len(ids))
        k = int(np.floor(fraction * len(ids) + rng.random()))  # unbiased rounding of small strata
        public.update(ids[i] for i in order[:k])
    return public


def deal_folds(rows: list[dict], split_of: list[str], folds: int, name: str, salt: str = "") -> dict[str, int]:
    """Deal items into ``folds`` folds of (nearly) equal size within each (split, difficulty, label) stratum,
    in an order drawn from the testbed's name and secret ``salt``: ``{id: fold}``."""
    strata: dict[tuple[str, str, int], list[str]] = {}
    for row, split in zip(rows, split_of, strict=True):
        strata.setdefault((split, str(row.get("difficulty", "all")), int(row["label"])), []).append(str(row["id"]))
    rng = np.random.default_rng([FOLD_SEED, zlib.crc32(name.encode()), zlib.crc32(salt.encode())])
    fold: dict[str, int] = {}
    start = 0  # each stratum starts where the last one stopped, so the folds stay within one item of each other
    for key in sorted(strata):
        ids = sorted(strata[key])
        for k, i in enumerate(rng.permutation(len(ids))):
            fold[ids[i]] = (start + k) % folds
        start = (start + len(ids)) % folds
    return fold


def divide_test_items(tb: Testbed, settings: Settings) -> set[str]:
    """The public ids of labelled testbed ``tb``'s test items: the stored division if it still matches its
    items, else a new one (default fraction and seed), stored."""
    rows, split_of = [], []
    for split in TEST_SPLITS:
        part = tb[split]
        difficulty = part.difficulty or ["all"] * len(part)
        rows += [{"id": it.id, "label": int(y), "difficulty": d}
                 for it, y, d in zip(part.items, part.require_labels(), difficulty, strict=True)]
        split_of += [split] * len(part)
    return load_or_divide(tb.name, rows, split_of, DEFAULT_FRACTION, DEFAULT_SEED, settings)


def load_division(name: str, ids: list[str], settings: Settings) -> set[str]:
    """The stored public ids of testbed ``name`` whose test items are ``ids``; raises ``TestbedError`` when
    there is no division or it was made for other items (the testbed must be prepared again)."""
    path = labels_dir(name, settings) / SPLIT_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored.get("ids_hash") != _ids_hash(sorted(ids)):
        raise TestbedError(f"testbed {name!r} has no public / private division for its test items "
                           f"(prepared by an older aar?): run `aar testbed prepare {name}` again")
    return set(stored["public"])


def load_or_divide(
    name: str, rows: list[dict], split_of: list[str], fraction: float, seed: int, settings: Settings
) -> set[str]:
    path = labels_dir(name, settings) / SPLIT_FILE
    ids = [str(r["id"]) for r in rows]
    digest = _ids_hash(sorted(ids))
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("ids_hash") == digest:
            if stored.get("fraction") != fraction or stored.get("seed") != seed:
                log.warning(
                    "testbed %s keeps its existing public/private division (fraction %s, seed %s)",
                    name,
                    stored.get("fraction"),
                    stored.get("seed"),
                )
            return set(stored["public"])
        log.warning("testbed %s: test items changed since the public/private division; dividing anew", name)
    public = divide(rows, split_of, fraction, seed, name, stored_salt(name, settings))
    record = {
        "schema_version": 1,
        "testbed": name,
        "fraction": fraction,
        "seed": seed,
        "ids_hash": digest,
        "public": sorted(public),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return public
