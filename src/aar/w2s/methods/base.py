"""What a W2S method sees and returns, and the registry of methods.

A method is a plain function ``run(ctx) -> MethodOutput``. The context holds the testbed's public
view (plus, on the trusted side only, ``strong_train`` labels for the ceiling), a factory for fresh
strong models, and the seed. The weak supervision is what the testbed publishes: the weak model's
soft labels on ``strong_train`` and its predictions on the test items; the weak model's own training
labels never reach a method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aar.w2s.models import W2SModel
from aar.w2s.testbeds.base import TEST_SPLITS, Split, Testbed


class MethodNotApplicable(Exception):
    """The method cannot run with this backend or testbed; the message says why."""


@dataclass
class MethodOutput:
    """P(label 1) for each test split, aligned with the split's items."""

    test_probs: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)


@dataclass
class ExperimentContext:
    """Everything a method may use. ``testbed`` hides test labels; strong_train labels only if trusted."""

    testbed: Testbed
    make_strong: Callable[[], W2SModel]
    seed: int = 0

    @property
    def strong_train(self) -> Split:
        return self.testbed["strong_train"]

    def weak_labels(self) -> np.ndarray:
        """Soft weak labels P(label 1) on ``strong_train`` (published by the testbed)."""
        return self.strong_train.require_weak()

    def weak_test_predictions(self) -> dict[str, np.ndarray]:
        """The weak model's P(label 1) on each test split (published by the testbed)."""
        return {s: self.testbed[s].require_weak() for s in TEST_SPLITS}

    def predict_tests(self, model: W2SModel) -> dict[str, np.ndarray]:
        return {s: model.predict_proba(self.testbed[s].items) for s in TEST_SPLITS}


MethodFn = Callable[[ExperimentContext], MethodOutput]
METHODS: dict[str, MethodFn] = {}
METHOD_DOCS: dict[str, str] = {}


def method(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register a method under ``name`` (plugin boundary; third parties may add their own)."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[name] = fn
        METHOD_DOCS[name] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        return fn

    return deco
