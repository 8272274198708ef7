"""Statistical power of a testbed where it matters: on the private half of each test part, in the private
world (:mod:`aar.labels.worlds`) where final scores come from.

Reported per part: the bootstrap SE of vanilla's PGR, and the bootstrap SE of the **paired** PGR difference
between vanilla and the best other baseline on the same private items (what an "A beats B" claim needs), with
W and S measured in the same world on the same items.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from aar.config import Settings
from aar.labels.division import load_division
from aar.w2s.results import BaselineReport
from aar.w2s.scoring import bootstrap_mean_se, correctness
from aar.w2s.testbeds.base import TEST_SPLITS

PARTS = {"id": "test_id", "ood": "test_ood"}
REFERENCE_METHODS = ("weak", "ceiling", "vanilla")


class PartPower(BaseModel):
    """Sizes of the public and private halves and the private-half standard errors of one part."""

    n_public: int
    n_private: int
    vanilla_pgr_se: float | None
    best_other: str | None
    paired_se: float | None


def seed_mean_correctness(runs: list[dict[str, float]], items: list[str], y: np.ndarray) -> np.ndarray:
    """Per-item correctness on ``items`` (labels ``y``), the mean over the per-seed predictions ``runs``."""
    return np.mean([correctness(np.array([run[i] for i in items]), y) for run in runs], axis=0)


def private_half_power(
    report: BaselineReport, private_preds: dict[str, list[dict[str, float]]], labels: dict[str, int],
    ids: dict[str, list[str]], settings: Settings
) -> dict[str, PartPower]:
    """Power per part from the private world's per-seed predictions ``private_preds[method]`` (``{id: p}`` on
    the private items; ``weak`` and ``ceiling`` among them), ``labels`` of the test items and ``ids`` per split;
    the best other baseline is the one with the best PGR in ``report``."""
    public = load_division(report.testbed, [i for s in TEST_SPLITS for i in ids[s]], settings)
    out: dict[str, PartPower] = {}
    for part, split in PARTS.items():
        private = [i for i in ids[split] if i not in public]
        y = np.array([labels[i] for i in private])

        def correct(method: str, private: list[str] = private, y: np.ndarray = y) -> np.ndarray | None:
            runs = private_preds.get(method)
            return seed_mean_correctness(runs, private, y) if runs and private else None

        others = [
            m
            for m in report.methods
            if m.name not in REFERENCE_METHODS and m.note is None and getattr(m.pgr, part) is not None
            and m.name in private_preds
        ]
        best = max(others, key=lambda m: getattr(m.pgr, part)).name if others else None
        weak, ceiling, vanilla = correct("weak"), correct("ceiling"), correct("vanilla")
        gap = float(ceiling.mean() - weak.mean()) if weak is not None and ceiling is not None else 0.0
        theirs = correct(best) if best is not None else None
        ok = gap > 0 and vanilla is not None
        out[part] = PartPower(
            n_public=len(ids[split]) - len(private),
            n_private=len(private),
            vanilla_pgr_se=bootstrap_mean_se(vanilla) / gap if ok and vanilla is not None else None,
            best_other=best,
            paired_se=(
                bootstrap_mean_se(vanilla - theirs) / gap
                if ok and theirs is not None and vanilla is not None
                else None
            ),
        )
    return out
