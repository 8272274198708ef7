"""The eval server's public / private division of a testbed's test items, made once and stored.

In each (split, difficulty, label) stratum a ``fraction`` of the items is public (scores released
to workers); the rest is private (the final score). The division is stored in ``eval_split.json``
beside the labels, so every process scores against the same parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib

import numpy as np

from aar.config import Settings
from aar.labels.store import SALT_FILE, labels_dir

log = logging.getLogger("aar.evalserver")
SPLIT_FILE = "eval_split.json"
DEFAULT_FRACTION = 0.5  # the eval server's default public share
DEFAULT_SEED = 0


def _salt(name: str, settings: Settings) -> str:
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
    public = divide(rows, split_of, fraction, seed, name, _salt(name, settings))
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
