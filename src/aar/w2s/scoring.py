"""Accuracy, PGR and bootstrap standard errors: the one definition every part of aar uses."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def correctness(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-item correctness in {0, 0.5, 1}: p > 0.5 predicts label 1, p == 0.5 earns half credit."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    hard = np.where(probs > 0.5, 1, 0)
    score = (hard == labels).astype(np.float64)
    score[probs == 0.5] = 0.5
    return score


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean correctness of probability predictions against 0/1 labels."""
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(correctness(probs, labels).mean())


def pgr(acc: float, weak: float, ceiling: float) -> float | None:
    """Performance gap recovered; None when the ceiling does not beat the weak model."""
    if not (math.isfinite(acc) and math.isfinite(weak) and math.isfinite(ceiling)) or ceiling <= weak:
        return None
    return (acc - weak) / (ceiling - weak)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) == 0:
        return float("nan"), float("nan")
    se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else 0.0
    return float(arr.mean()), se


def bootstrap_mean_se(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> float:
    """Bootstrap SE of the mean of per-item ``values`` (e.g. a paired correctness difference)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return float(values[idx].mean(axis=1).std(ddof=1))


def bootstrap_se(
    correct: np.ndarray,
    weak_correct: np.ndarray,
    ceiling_correct: np.ndarray,
    *,
    n_boot: int = 500,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap SE of (accuracy, PGR) over test items, resampling items jointly for all three models.

    Each argument is a per-item correctness vector over the same items; the PGR SE ignores resamples
    where the ceiling does not beat the weak model.
    """
    rng = np.random.default_rng(seed)
    n = len(correct)
    idx = rng.integers(0, n, size=(n_boot, n))
    acc = correct[idx].mean(axis=1)
    w = weak_correct[idx].mean(axis=1)
    s = ceiling_correct[idx].mean(axis=1)
    ok = s > w
    pg = (acc[ok] - w[ok]) / (s[ok] - w[ok])
    return float(acc.std(ddof=1)), float(pg.std(ddof=1)) if ok.sum() > 1 else float("nan")


def headroom_share(
    correct: np.ndarray, best_correct: np.ndarray, reference_correct: np.ndarray
) -> tuple[float | None, float | None]:
    """Share of the headroom between the best baseline and the reference that ``correct`` recovers, with its SE.

    All three are per-item correctness vectors over the same items. The share is
    ``mean(correct - best) / mean(reference - best)``; its SE comes from the paired per-item differences by the
    delta method. ``(None, None)`` when the reference does not beat the best baseline (no headroom to share).
    """
    gain = np.asarray(correct, dtype=np.float64) - best_correct
    room = np.asarray(reference_correct, dtype=np.float64) - best_correct
    if len(room) == 0 or room.mean() <= 0:
        return None, None
    share = float(gain.mean() / room.mean())
    se = float((gain - share * room).std(ddof=1) / math.sqrt(len(room)) / room.mean()) if len(room) > 1 else 0.0
    return share, se
