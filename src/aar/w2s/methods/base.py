"""What a W2S method sees and returns, and the registry of methods.

A method is a plain function ``run(ctx) -> MethodOutput``. The context holds the testbed (public
view plus, on the trusted side only, ``strong_train`` labels for the ceiling), factories for fresh
weak and strong models, and the seed. Weak labels for ``strong_train`` are computed once per context
and shared, so several methods in one run reuse one weak model.
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
    make_weak: Callable[[], W2SModel]
    make_strong: Callable[[], W2SModel]
    seed: int = 0
    _weak: W2SModel | None = None
    _weak_labels: np.ndarray | None = None

    @property
    def weak_train(self) -> Split:
        return self.testbed["weak_train"]

    @property
    def strong_train(self) -> Split:
        return self.testbed["strong_train"]

    def weak_model(self) -> W2SModel:
        """The weak model trained on ``weak_train`` ground truth (trained once per context)."""
        if self._weak is None:
            split = self.weak_train
            self._weak = self.make_weak().fit(split.items, split.require_labels().astype(float), seed=self.seed)
        return self._weak

    def weak_labels(self) -> np.ndarray:
        """Soft weak labels P(label 1) on ``strong_train``."""
        if self._weak_labels is None:
            self._weak_labels = self.weak_model().predict_proba(self.strong_train.items)
        return self._weak_labels

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
