"""Scoring and the probability head, checked against scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from aar.w2s.models.head import HeadConfig, ProbabilityHead
from aar.w2s.scoring import accuracy, bootstrap_se, correctness, pgr


def test_accuracy_matches_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(0)
    probs, labels = rng.random(1000), rng.integers(0, 2, 1000)
    assert accuracy(probs, labels) == pytest.approx(accuracy_score(labels, (probs > 0.5).astype(int)))


def test_ties_get_half_credit_and_pgr_edge_cases() -> None:
    assert correctness(np.array([0.5, 0.9, 0.1]), np.array([1, 1, 1])).tolist() == [0.5, 1.0, 0.0]
    assert pgr(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert pgr(0.7, 0.8, 0.8) is None
    assert pgr(0.7, 0.8, 0.6) is None


def test_bootstrap_se_shrinks_with_more_items() -> None:
    rng = np.random.default_rng(1)
    small = [rng.integers(0, 2, 100).astype(float) for _ in range(3)]
    large = [rng.integers(0, 2, 10000).astype(float) for _ in range(3)]
    assert bootstrap_se(*large)[0] < bootstrap_se(*small)[0]


def test_linear_head_matches_sklearn_logistic_regression() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 8))
    y = (x @ rng.normal(size=8) + 0.5 * rng.normal(size=400) > 0).astype(float)
    ours = ProbabilityHead(HeadConfig(C=0.3)).fit(x, y).predict_proba(x)
    ref = LogisticRegression(C=0.3, max_iter=5000, tol=1e-10).fit(x, y).predict_proba(x)[:, 1]
    assert np.abs(ours - ref).max() < 1e-3


def test_head_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="targets"):
        ProbabilityHead().fit(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        ProbabilityHead().fit(np.array([[np.nan, 1.0]]), np.zeros(1))


def test_logconf_moves_towards_the_students_own_view() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 5))
    truth = (x[:, 0] > 0).astype(float)
    weak = truth.copy()
    flip = rng.random(600) < 0.3
    weak[flip] = 1 - weak[flip]
    plain = ProbabilityHead(HeadConfig(C=0.05)).fit(x, weak).predict_proba(x)
    conf = ProbabilityHead(HeadConfig(C=0.05)).fit(x, weak, loss="logconf").predict_proba(x)
    # Same decisions (the signal is linear) but more confident: the hardened targets sharpen it.
    assert np.abs(conf - 0.5).mean() > np.abs(plain - 0.5).mean()
    assert ((conf > 0.5) == truth).mean() >= ((plain > 0.5) == truth).mean() - 0.01
