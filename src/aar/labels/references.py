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
    """Per-seed test predictions ``{item_id: P(label 1)}`` of the weak model, the ceiling and every shipped
    baseline method (``methods``: what finalize compares a team's results with, on the same items)."""

    schema_version: int = SCHEMA_VERSION
    testbed: str
    weak: list[dict[str, float]]
    ceiling: list[dict[str, float]]
    methods: dict[str, list[dict[str, float]]] = Field(default_factory=dict)

    def reference_accuracy(self, which: str, labels: dict[str, int]) -> tuple[float, float]:
        """Mean and SE over seeds of ``which`` ("weak" | "ceiling") accuracy on the items in ``labels``."""
        ids = list(labels)
        y = np.array([labels[i] for i in ids])
        accs = [accuracy(np.array([preds[i] for i in ids]), y) for preds in getattr(self, which)]
        return mean_se(accs)


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
