"""Diversity numbers against hand-computed values: family entropy, the entropy curve over active workers
(steps, dropped points, AAR-hours, bootstrap band), and the Vendi score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aar.analysis.diversity import IdeaStart, entropy_curve, family_entropy, vendi_score


def test_family_entropy_in_bits() -> None:
    assert family_entropy([]) == 0 and str(family_entropy(["a", "a"])) == "0.0"  # not -0.0
    assert family_entropy(["a", "b"]) == pytest.approx(1.0)
    assert family_entropy(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert family_entropy(["a", "a", "a", "b"]) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_entropy_curve_by_hand() -> None:
    """Five workers start distinct families at hour 0; at hour 1 three of them switch to one family;
    a sixth worker starts at hour 2 and w4 has stopped by then."""
    starts = [IdeaStart(f"w{i}", 0.0, fam) for i, fam in enumerate(["a", "b", "c", "d", "e"])]
    starts += [IdeaStart(w, 1.0, "a") for w in ("w1", "w2", "w3")]
    starts += [IdeaStart("w5", 2.0, "b")]
    end = {"w0": 3.0, "w1": 3.0, "w2": 3.0, "w3": 3.0, "w4": 1.5, "w5": 3.0}
    points = entropy_curve(starts, end, min_workers=5, n_boot=200)
    assert [p.hours for p in points] == [0.0, 1.0, 2.0]
    assert points[0].entropy == pytest.approx(math.log2(5)) and points[0].active == 5 and points[0].aar_hours == 0
    # hour 1: a a a a e -> p = (0.8, 0.2)
    assert points[1].entropy == pytest.approx(-(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2)))
    assert points[1].aar_hours == pytest.approx(5.0)  # five workers, one hour each
    # hour 2: w4 stopped at 1.5; w5 joined: a a a a b -> same mix; AAR-hours 4 x 2 + 1.5 + 0
    assert points[2].active == 5 and points[2].aar_hours == pytest.approx(9.5)
    for p in points:
        assert 0 <= p.low <= p.entropy + 1e-9 and p.low <= p.high <= math.log2(5) + 1e-9
    assert points[0].high == pytest.approx(math.log2(5))  # all distinct: the estimate is the band's top
    assert points[1].low < points[1].entropy < points[1].high  # a real band around the mixed step
    dropped = entropy_curve(starts, end, min_workers=6)
    assert dropped == []  # never six active workers at once


def test_vendi_score() -> None:
    assert vendi_score(np.ones((4, 3))) == pytest.approx(1.0)  # one idea, four times
    assert vendi_score(np.eye(5)) == pytest.approx(5.0)  # five unrelated ideas
    two = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)
    assert vendi_score(two) == pytest.approx(2.0)
    assert vendi_score(np.zeros((0, 3))) == 0.0
