"""The stored references of a testbed: its baseline report and the weak / ceiling test predictions.

The eval server computes W and S from these predictions on the full test set of each part. This
module is light (no torch), so the eval server starts without loading any model code.
"""

from __future__ import annotations

import json

import numpy as np
from pydantic import BaseModel, Field

from aar.config import Settings, ensure_private_dir
from aar.labels.store import labels_dir
from aar.w2s.results import SCHEMA_VERSION, BaselineReport
from aar.w2s.scoring import accuracy, mean_se
from aar.w2s.testbeds.base import TestbedError


class BaselinePredictions(BaseModel):
    """Per-seed test predictions ``{item_id: P(label 1)}`` of the weak model, the ceiling, the sealed reference
    method (empty unless ``aar baselines --reference`` ran) and every shipped baseline method (``methods``: what
    finalize compares a team's results with, on the same items), trained on the published ``strong_train``; and
    ``private_world``: the same (``weak``, ``ceiling``, ``reference`` and each method) on the private items, each
    from its private world (:mod:`aar.labels.worlds`), where final scores come from."""

    schema_version: int = SCHEMA_VERSION
    testbed: str
    weak: list[dict[str, float]]
    ceiling: list[dict[str, float]]
    reference: list[dict[str, float]] = Field(default_factory=list)
    methods: dict[str, list[dict[str, float]]] = Field(default_factory=dict)
    private_world: dict[str, list[dict[str, float]]] = Field(default_factory=dict)

    def runs(self, which: str, world: str = "public") -> list[dict[str, float]]:
        """Per-seed predictions of ``which`` ("weak", "ceiling", "reference" or a method) in ``world``: "public"
        (trained on the published ``strong_train``), "private" (the private items, from the private worlds) or
        "each" (every item from its own world: the private world's predictions over the public one's)."""
        public = getattr(self, which) if which in ("weak", "ceiling", "reference") else self.methods.get(which, [])
        private = self.private_world.get(which, [])
        if world == "public":
            return public
        if world == "private":
            return private
        return [{**pub, **priv} for pub, priv in zip(public, private, strict=True)]

    def reference_accuracy(self, which: str, labels: dict[str, int], world: str = "public") -> tuple[float, float]:
        """Mean and SE over seeds of ``which`` ("weak" | "ceiling") accuracy on the items in ``labels`` in
        ``world`` (see :meth:`runs`)."""
        ids = list(labels)
        y = np.array([labels[i] for i in ids])
        return mean_se([accuracy(np.array([preds[i] for i in ids]), y) for preds in self.runs(which, world)])


def save_baselines(report: BaselineReport, preds: BaselinePredictions, settings: Settings) -> None:
    """Store a baseline report and its predictions on the label side of the testbed."""
    lab = ensure_private_dir(labels_dir(report.testbed, settings))
    (lab / "baselines.json").write_text(report.model_dump_json(indent=2))
    (lab / "baseline_predictions.json").write_text(preds.model_dump_json())


def load_baselines(testbed: str, settings: Settings) -> tuple[BaselineReport, BaselinePredictions]:
    """Load the stored baselines; raises ``TestbedError`` telling how to compute them when absent."""
    lab = labels_dir(testbed, settings)
    try:
        report = BaselineReport.model_validate_json((lab / "baselines.json").read_text())
        preds = BaselinePredictions.model_validate(json.loads((lab / "baseline_predictions.json").read_text()))
    except FileNotFoundError:
        raise TestbedError(
            f"no stored baselines for testbed {testbed!r} (run `aar baselines --testbed {testbed}`)"
        ) from None
    return report, preds
