"""Paired comparison of two prediction sets on the eval server's private half (trusted side).

"A beats B" needs the SE of the **difference** on the same items, not two separate SEs. For each
part (``id``, ``ood``, ``combined``) this scores both prediction sets on the private items with the
testbed's fixed W and S (means over seeds on the full test set, as the eval server uses) and
bootstraps the paired PGR difference over items.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from aar.config import Settings
from aar.labels.division import DEFAULT_FRACTION, DEFAULT_SEED, load_or_divide
from aar.labels.references import load_baselines
from aar.labels.store import read_label_rows
from aar.w2s.scoring import correctness
from aar.w2s.testbeds.base import TEST_SPLITS

PART_SPLITS = {"id": ("test_id",), "ood": ("test_ood",), "combined": TEST_SPLITS}


class PairedPart(BaseModel):
    """PGR of A and B on one part's private items, their difference and its paired bootstrap SE."""

    n: int
    pgr_a: float
    pgr_b: float
    se_a: float
    diff: float
    paired_se: float

    @property
    def z(self) -> float:
        return self.diff / self.paired_se if self.paired_se > 0 else float("inf") * np.sign(self.diff)


def _boot(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> float:
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return float(values[idx].mean(axis=1).std(ddof=1))


def paired_private(testbed: str, a: dict[str, float], b: dict[str, float], settings: Settings,
                   n_boot: int = 2000, seed: int = 0) -> dict[str, PairedPart]:
    """Compare predictions ``a`` and ``b`` ({item_id: P(label 1)}, every test item) on the private half."""
    report, _ = load_baselines(testbed, settings)
    rows, split_of = [], []
    for split in TEST_SPLITS:
        split_rows = read_label_rows(testbed, split, settings)
        rows += split_rows
        split_of += [split] * len(split_rows)
    public = load_or_divide(testbed, rows, split_of, DEFAULT_FRACTION, DEFAULT_SEED, settings)
    missing = [r["id"] for r in rows if r["id"] not in a or r["id"] not in b]
    if missing:
        raise ValueError(f"{len(missing)} test items lack a prediction (e.g. {missing[0]!r})")
    rng = np.random.default_rng(seed)
    out: dict[str, PairedPart] = {}
    for part, splits in PART_SPLITS.items():
        keep = [r for r, s in zip(rows, split_of, strict=True) if s in splits and r["id"] not in public]
        labels = np.array([r["label"] for r in keep])
        ca = correctness(np.array([a[r["id"]] for r in keep]), labels)
        cb = correctness(np.array([b[r["id"]] for r in keep]), labels)
        w, s = getattr(report.weak.acc, part), getattr(report.ceiling.acc, part)
        gap = s - w
        out[part] = PairedPart(n=len(keep), pgr_a=(ca.mean() - w) / gap, pgr_b=(cb.mean() - w) / gap,
                               se_a=_boot(ca, n_boot, rng) / gap, diff=(ca.mean() - cb.mean()) / gap,
                               paired_se=_boot(ca - cb, n_boot, rng) / gap)
    return out
