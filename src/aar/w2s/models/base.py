"""The model contract every backend meets, and the pairwise / binary feature plumbing they share.

A ``W2SModel`` is trained on items with soft targets (P(label 1): B better, or candidate correct) and
predicts probabilities. Pairwise models are antisymmetric by construction: swapping A and B turns a
prediction p into 1 - p, so answer position can never be a learned shortcut.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from aar.w2s.models.head import HeadConfig, Loss, ProbabilityHead
from aar.w2s.testbeds.base import Format, Item


class W2SModel(ABC):
    """A trainable probability model over testbed items."""

    name: str = "model"

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt

    @abstractmethod
    def fit(
        self,
        items: Sequence[Item],
        targets: np.ndarray,
        *,
        weights: np.ndarray | None = None,
        loss: Loss = "bce",
        seed: int = 0,
    ) -> W2SModel:
        """Train on ``items`` with soft ``targets`` in [0, 1] (hard labels are 0/1 targets)."""

    @abstractmethod
    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        """P(label 1) for each item."""

    def zero_shot(self, items: Sequence[Item]) -> np.ndarray:
        """Untrained scores in [0, 1] that rank items by P(label 1); not calibrated or balanced."""
        raise NotImplementedError(f"the {self.name} backend has no zero-shot mode")


class FeatureModel(W2SModel):
    """A model that maps each (prompt, answer) to a fixed feature vector and trains a head on top.

    Pairwise items use the antisymmetric difference ``f(prompt, B) - f(prompt, A)`` with swap
    augmentation and a bias-free head; binary items use ``f(question, candidate)`` directly.
    """

    def __init__(self, fmt: Format, head: HeadConfig | None = None) -> None:
        super().__init__(fmt)
        self.head_config = head or HeadConfig()
        self.head: ProbabilityHead | None = None

    @abstractmethod
    def answer_features(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        """Feature rows for (prompt, answer) pairs."""

    def item_features(self, items: Sequence[Item]) -> np.ndarray:
        prompts = [it.prompt for it in items]
        fa = self.answer_features(prompts, [it.answer_a for it in items])
        if self.fmt == "binary":
            return fa
        fb = self.answer_features(prompts, [it.answer_b or "" for it in items])
        return fb - fa

    def fit(self, items, targets, *, weights=None, loss="bce", seed=0):  # type: ignore[no-untyped-def]
        self.head = fit_item_head(self.item_features(items), targets, self.fmt, self.head_config,
                                  weights=weights, loss=loss, seed=seed)
        return self

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        if self.head is None:
            raise RuntimeError(f"{self.name} model is not trained")
        return predict_item_head(self.head, self.item_features(items), self.fmt)


def fit_item_head(x: np.ndarray, targets: np.ndarray, fmt: Format, config: HeadConfig, *,
                  weights: np.ndarray | None = None, loss: Loss = "bce", seed: int = 0) -> ProbabilityHead:
    """Train a head on item feature rows: pairwise rows get swap augmentation and no bias, binary rows a bias."""
    targets = np.asarray(targets, dtype=np.float64)
    config = HeadConfig(**{**config.__dict__, "bias": fmt == "binary"})
    if fmt == "pairwise":
        x = np.concatenate([x, -x])
        targets = np.concatenate([targets, 1.0 - targets])
        weights = None if weights is None else np.concatenate([weights, weights])
    return ProbabilityHead(config).fit(x, targets, weights=weights, loss=loss, seed=seed)


def predict_item_head(head: ProbabilityHead, x: np.ndarray, fmt: Format) -> np.ndarray:
    """P(label 1) of item feature rows; pairwise MLP heads are made antisymmetric by averaging with the swap."""
    p = head.predict_proba(x)
    if fmt == "pairwise" and head.config.hidden:
        p = (p + 1.0 - head.predict_proba(-x)) / 2.0
    return p
