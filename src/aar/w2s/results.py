"""Result records of baselines (``aar baselines --json``) and the stored baseline predictions.

The JSON shape is a stable contract read by the eval server, the dashboard and other tools:
``{testbed, seeds, weak: {acc: {id, ood}}, ceiling: {acc: {id, ood}}, methods: [{name, acc, pgr, se}]}``.
Baseline predictions (weak and ceiling, per seed, per test item) live on the label side so the eval
server can compute W and S on any subset of the test items (e.g. its public / private parts).
"""

from __future__ import annotations

import json

import numpy as np
from pydantic import BaseModel, Field

from aar.config import Settings, ensure_private_dir
from aar.w2s.scoring import accuracy, mean_se
from aar.w2s.testbeds.base import TestbedError, labels_dir

SCHEMA_VERSION = 1


class SplitAcc(BaseModel):
    """Accuracy per test split (None where a method did not run)."""

    id: float | None
    ood: float | None
    combined: float | None = None


class SplitPGR(BaseModel):
    id: float | None
    ood: float | None
    combined: float | None


class SE(BaseModel):
    acc: SplitAcc
    pgr: SplitPGR | None = None


class ModelAcc(BaseModel):
    """Accuracy of a reference model (weak or ceiling): mean over seeds, with SE over seeds."""

    acc: SplitAcc
    se: SE


class MethodResult(BaseModel):
    name: str
    acc: SplitAcc
    pgr: SplitPGR
    se: SE
    seconds: float = 0.0
    note: str | None = None


class BaselineReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    testbed: str
    seeds: int
    weak: ModelAcc
    ceiling: ModelAcc
    methods: list[MethodResult] = Field(default_factory=list)
    config: dict = Field(default_factory=dict)


class BaselinePredictions(BaseModel):
    """Per-seed test predictions ``{item_id: P(label 1)}`` of the weak model and the ceiling."""

    schema_version: int = SCHEMA_VERSION
    testbed: str
    weak: list[dict[str, float]]
    ceiling: list[dict[str, float]]

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
