"""Statistical power of a testbed where it matters: on the eval server's private half of each test part.

W and S are fixed (computed once on the full test set), so a method's PGR on the private half moves
only with its own accuracy there. Reported per part: the bootstrap SE of vanilla's PGR, and the
bootstrap SE of the **paired** PGR difference between vanilla and the best other baseline on the
same private items (what an "A beats B" claim needs).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from aar.config import Settings
from aar.labels.division import load_division
from aar.w2s.results import BaselineReport
from aar.w2s.scoring import bootstrap_mean_se
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


def private_half_power(
    report: BaselineReport, correct: dict[str, dict[str, np.ndarray]], ids: dict[str, list[str]], settings: Settings
) -> dict[str, PartPower]:
    """Power per part; ``correct[method][split]`` is per-item correctness (mean over seeds) aligned with ``ids``."""
    public = load_division(report.testbed, [i for s in TEST_SPLITS for i in ids[s]], settings)
    out: dict[str, PartPower] = {}
    for part, split in PARTS.items():
        private = np.array([i not in public for i in ids[split]])
        gap = getattr(report.ceiling.acc, part) - getattr(report.weak.acc, part)
        others = [
            m
            for m in report.methods
            if m.name not in REFERENCE_METHODS and m.note is None and getattr(m.pgr, part) is not None
        ]
        best = max(others, key=lambda m: getattr(m.pgr, part)).name if others else None
        vanilla = correct.get("vanilla", {}).get(split)
        ok = gap > 0 and vanilla is not None and private.any()
        out[part] = PartPower(
            n_public=int((~private).sum()),
            n_private=int(private.sum()),
            vanilla_pgr_se=bootstrap_mean_se(vanilla[private]) / gap if ok and vanilla is not None else None,
            best_other=best,
            paired_se=(
                bootstrap_mean_se(vanilla[private] - correct[best][split][private]) / gap
                if ok and best is not None and vanilla is not None
                else None
            ),
        )
    return out
