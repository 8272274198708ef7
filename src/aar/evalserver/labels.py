"""The eval server's view of one testbed's test labels: ids, labels, public / private parts, baselines.

Only this module reads the label side (``AAR_HOME/labels/<testbed>/``). The public / private division
of each test split is made once, when the testbed is written (``aar.labels.division``): only the
public half is published, so a submission holds predictions for exactly the public items
(``submit_ids``). The private half is scored only from replays of ideas (``aar.labels.replay``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aar.config import Settings
from aar.labels.division import load_division
from aar.labels.references import BaselinePredictions, load_baselines
from aar.labels.store import labels_dir, read_label_rows
from aar.w2s.scoring import correctness
from aar.w2s.testbeds.base import TEST_SPLITS, TestbedError

log = logging.getLogger("aar.evalserver")

TESTBED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PARTS: tuple[str, ...] = ("id", "ood", "combined")
#: Sides of the test items: the public half (released scores), the private half (finalize) and all of them
#: (trusted-side analyses, e.g. ``aar transfer``: never an agent-facing score).
VISIBILITIES: tuple[str, ...] = ("public", "private", "all")


@dataclass(frozen=True)
class Reference:
    """Weak (W) and ceiling (S) accuracy on one part: mean over seeds and SE over seeds."""

    weak: float
    weak_se: float
    ceiling: float
    ceiling_se: float


@dataclass
class TestbedLabels:
    """Labels of the test items of one testbed, in a fixed canonical order (``test_id`` then ``test_ood``)."""

    name: str
    ids: list[str]
    index: dict[str, int]
    labels: np.ndarray
    is_ood: np.ndarray
    public: np.ndarray
    parts: dict[tuple[str, str], np.ndarray]
    refs: dict[tuple[str, str], Reference] = field(default_factory=dict)
    weak_correct: np.ndarray | None = None
    ceiling_correct: np.ndarray | None = None
    weak_hard: np.ndarray | None = None
    method_correct: dict[str, np.ndarray] = field(default_factory=dict)  # shipped baselines, mean over seeds
    reference_correct: np.ndarray | None = None  # the sealed reference method (``aar baselines --reference``)
    baseline_problem: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.submit_idx = np.flatnonzero(self.public)
        self.submit_ids = [self.ids[i] for i in self.submit_idx]

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_public(self) -> int:
        return len(self.submit_idx)

    def expand(self, public_probs: np.ndarray) -> np.ndarray:
        """A submission's vector (public items, ``submit_ids`` order) placed in the canonical order of all
        test items, NaN on the private ones (which a submission never covers; ``score`` refuses them)."""
        full = np.full(self.n, np.nan)
        full[self.submit_idx] = public_probs
        return full

    def part(self, visibility: str, part: str) -> np.ndarray:
        """Indices of the items of ``part`` (id | ood | combined) in ``visibility`` (public | private | all)."""
        return self.parts[(visibility, part)]


def check_testbed_name(name: object) -> str:
    """Return ``name`` if it is a safe testbed name, else raise ``TestbedError``."""
    if not isinstance(name, str) or not TESTBED_NAME.match(name):
        raise TestbedError("testbed must be a name of 1-64 letters, digits, '.', '_' or '-'")
    return name


def load_labels(name: str, settings: Settings) -> TestbedLabels:
    """Load a testbed's test labels, its public / private division and its stored baselines."""
    check_testbed_name(name)
    if not labels_dir(name, settings).is_dir():
        raise TestbedError(f"unknown testbed {name!r}")
    rows: list[dict] = []
    split_of: list[str] = []
    for split in TEST_SPLITS:
        part_rows = read_label_rows(name, split, settings)
        rows.extend(part_rows)
        split_of.extend([split] * len(part_rows))
    ids = [str(r["id"]) for r in rows]
    index = {i: k for k, i in enumerate(ids)}
    if len(index) != len(ids):
        raise TestbedError(f"testbed {name!r}: duplicate test item ids in the label store")
    labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    if not np.isin(labels, (0, 1)).all():
        raise TestbedError(f"testbed {name!r}: labels must be 0 or 1")
    is_ood = np.array([s == "test_ood" for s in split_of])
    public_ids = load_division(name, ids, settings)
    public = np.array([i in public_ids for i in ids])
    parts: dict[tuple[str, str], np.ndarray] = {}
    for vis, mask in (("public", public), ("private", ~public), ("all", np.ones_like(public))):
        parts[(vis, "id")] = np.flatnonzero(mask & ~is_ood)
        parts[(vis, "ood")] = np.flatnonzero(mask & is_ood)
        parts[(vis, "combined")] = np.flatnonzero(mask)
    for key, idx in parts.items():
        if len(idx) == 0:
            raise TestbedError(f"testbed {name!r}: too few test items for a {key[0]} {key[1]} part")
    tl = TestbedLabels(name, ids, index, labels, is_ood, public, parts)
    _attach_baselines(tl, settings)
    return tl


def _attach_baselines(tl: TestbedLabels, settings: Settings) -> None:
    """Compute W and S on every part from the stored per-seed baseline predictions."""
    try:
        _, preds = load_baselines(tl.name, settings)
    except TestbedError as exc:
        tl.baseline_problem = str(exc)
        return
    if not preds.weak or not preds.ceiling:
        tl.baseline_problem = "stored baselines hold no predictions"
        return
    private = [tl.ids[i] for i in tl.part("private", "combined")]
    for which in ("weak", "ceiling"):
        for seed_preds in getattr(preds, which):
            if any(i not in seed_preds for i in tl.ids):
                tl.baseline_problem = f"stored {which} baseline predictions do not cover the test items"
                return
        runs = preds.private_world.get(which)
        if not runs or len(runs) != len(getattr(preds, which)) or any(i not in run for run in runs for i in private):
            tl.baseline_problem = (f"stored baselines have no {which} predictions from the private world (made by an "
                                   f"older aar?): run `aar baselines --testbed {tl.name}` again")
            return
    _set_refs(tl, preds)


def _set_refs(tl: TestbedLabels, preds: BaselinePredictions) -> None:
    """W and S per part; per-item correctness of W, S and each baseline method.

    Public: trained on the published ``strong_train``, on the *full* test set of each part (so the public /
    private division never moves a released score's denominator). Private: in the private worlds
    (``aar.labels.worlds``) on the private items, where replays of finalists are scored too. All (trusted-side
    analyses such as ``aar transfer``, which run ideas the same way): every item in its own world. The per-item
    vectors hold the public world's correctness on public items and the private world's on private ones.
    """
    full = {"id": np.flatnonzero(~tl.is_ood), "ood": np.flatnonzero(tl.is_ood), "combined": np.arange(tl.n)}
    for part, idx in full.items():
        for vis, world, items in (("public", "public", idx), ("private", "private", tl.part("private", part)),
                                  ("all", "each", idx)):
            subset = {tl.ids[i]: int(tl.labels[i]) for i in items}
            w, w_se = preds.reference_accuracy("weak", subset, world)
            s, s_se = preds.reference_accuracy("ceiling", subset, world)
            tl.refs[(vis, part)] = Reference(w, w_se, s, s_se)

    def item_correct(which: str) -> np.ndarray | None:
        runs = preds.runs(which, "each")
        if not runs or any(i not in run for run in runs for i in tl.ids):
            return None
        return np.mean([correctness(np.array([run[i] for i in tl.ids]), tl.labels) for run in runs], axis=0)

    for name in preds.methods:
        if len(preds.runs(name, "private")) == len(preds.runs(name)) and (c := item_correct(name)) is not None:
            tl.method_correct[name] = c
    tl.weak_correct, tl.ceiling_correct = item_correct("weak"), item_correct("ceiling")
    if preds.reference and len(preds.runs("reference", "private")) == len(preds.reference):
        tl.reference_correct = item_correct("reference")
    weak = np.array([[p[i] for i in tl.ids] for p in preds.weak], dtype=np.float64)
    tl.weak_hard = np.sign(weak.mean(axis=0) - 0.5).astype(np.int8)
