"""A testbed's room for research: how far the sealed reference method gets above every shipped baseline.

Measured where final scores come from: on the private half of each test part, in the private worlds
(:mod:`aar.labels.worlds`), with W and S from the same world on the same items. A testbed has room when every
shipped baseline stays at or below :data:`MAX_BASELINE_PGR`, the reference (:mod:`aar.labels.sealed`, which
uses only what agents get) reaches :data:`MIN_REFERENCE_PGR`, and its lead over the best baseline is at least
:data:`MIN_LEAD_SE` paired SEs. A team's progress is then its share of that headroom
(:func:`aar.w2s.scoring.headroom_share`).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from aar.config import Settings
from aar.labels.card import Criterion
from aar.labels.division import load_division
from aar.labels.power import PARTS, seed_mean_correctness
from aar.w2s.results import BaselineReport
from aar.w2s.scoring import bootstrap_mean_se
from aar.w2s.testbeds.base import TEST_SPLITS

REFERENCE = "reference"
MAX_BASELINE_PGR, MIN_REFERENCE_PGR, MIN_LEAD_SE = 0.35, 0.60, 4.0


class PartRoom(BaseModel):
    """Private-half PGRs of every shipped baseline and of the reference on one part, and the reference's lead."""

    n_private: int
    baselines: dict[str, float]
    best: str | None
    reference: float | None
    reference_se: float | None
    lead: float | None  # reference - best baseline, PGR units
    lead_se: float | None  # paired bootstrap SE of that difference


def private_half_room(
    report: BaselineReport, private_preds: dict[str, list[dict[str, float]]], labels: dict[str, int],
    ids: dict[str, list[str]], settings: Settings
) -> dict[str, PartRoom]:
    """Room per part from the private world's per-seed predictions (``weak``, ``ceiling``, each baseline method
    and :data:`REFERENCE` among ``private_preds``), ``labels`` of the test items and ``ids`` per split. SEs are
    bootstraps over the private items of the numerator (``reference - weak``; the paired ``reference - best``)."""
    public = load_division(report.testbed, [i for s in TEST_SPLITS for i in ids[s]], settings)
    names = [m.name for m in report.methods if m.name not in ("weak", "ceiling") and m.note is None]
    out: dict[str, PartRoom] = {}
    for part, split in PARTS.items():
        private = [i for i in ids[split] if i not in public]
        y = np.array([labels[i] for i in private])
        correct = {
            m: seed_mean_correctness(runs, private, y)
            for m, runs in private_preds.items()
            if runs and private and (m in names or m in ("weak", "ceiling", REFERENCE))
        }
        if "weak" not in correct or "ceiling" not in correct:
            out[part] = PartRoom(n_private=len(private), baselines={}, best=None, reference=None, reference_se=None,
                                 lead=None, lead_se=None)
            continue
        weak = correct["weak"]
        gap = float(correct["ceiling"].mean() - weak.mean())
        pgr = {m: float((c.mean() - weak.mean()) / gap) for m, c in correct.items()
               if m not in ("weak", "ceiling") and gap > 0}
        baselines = {m: v for m, v in pgr.items() if m != REFERENCE}
        best = max(baselines, key=lambda m: baselines[m]) if baselines else None
        ref = pgr.get(REFERENCE)  # not None: its correctness is in ``correct``
        out[part] = PartRoom(
            n_private=len(private),
            baselines=baselines,
            best=best,
            reference=ref,
            reference_se=bootstrap_mean_se(correct[REFERENCE] - weak) / gap if ref is not None else None,
            lead=ref - baselines[best] if ref is not None and best is not None else None,
            lead_se=(bootstrap_mean_se(correct[REFERENCE] - correct[best]) / gap
                     if ref is not None and best is not None else None),
        )
    return out


def room_criteria(room: dict[str, PartRoom]) -> list[Criterion]:
    """The room criteria per part, with their measured values."""
    out = []
    for key, r in room.items():
        best = None if r.best is None else r.baselines[r.best]
        out += [
            Criterion(name=f"best shipped baseline PGR, private half ({key}): {r.best}", value=best,
                      target=f"<= {MAX_BASELINE_PGR}", passed=best is not None and best <= MAX_BASELINE_PGR),
            Criterion(name=f"reference PGR, private half ({key})", value=r.reference, se=r.reference_se,
                      target=f">= {MIN_REFERENCE_PGR}",
                      passed=r.reference is not None and r.reference >= MIN_REFERENCE_PGR),
            Criterion(name=f"reference - {r.best}, private half ({key})", value=r.lead, se=r.lead_se,
                      target=f">= {MIN_LEAD_SE:g} paired SE",
                      passed=r.lead is not None and r.lead_se is not None and r.lead >= MIN_LEAD_SE * r.lead_se),
        ]
    return out
