"""Result records of baselines (``aar baselines --json``) and the stored baseline predictions.

The JSON shape is a stable contract read by the eval server, the dashboard and other tools:
``{testbed, seeds, weak: {acc: {id, ood}}, ceiling: {acc: {id, ood}}, methods: [{name, acc, pgr, se}]}``.
The stored baseline predictions (weak and ceiling per test item) are label-side data: see
``aar.labels.baselines``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

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
    reference: MethodResult | None = None  # the sealed reference method (``aar baselines --reference``)
    config: dict = Field(default_factory=dict)
