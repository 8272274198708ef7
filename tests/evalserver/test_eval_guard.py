"""Release mechanisms in isolation: the Ladder's paired test and rounding, Thresholdout's budget, state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from evalkit import make_testbed

from aar.config import Settings
from aar.evalserver.config import LadderConfig
from aar.evalserver.guard import Context, Exact, Ladder, ScopeState, Thresholdout, laplace_from_uniform, nice_step
from aar.evalserver.labels import TestbedLabels as Labels
from aar.evalserver.labels import load_labels
from aar.evalserver.models import PartValues


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory) -> Labels:
    settings = Settings(home=tmp_path_factory.mktemp("guard"))
    make_testbed(settings, n_test=100)  # 100 public items
    return load_labels("tiny", settings)


def acc_of(loss: np.ndarray) -> PartValues:
    a = float(1 - loss.mean())
    return PartValues(id=a, ood=a, combined=a)


def run(mech, st: ScopeState, tl: Labels, loss: np.ndarray, sid: str, seed: int = 0):  # type: ignore[no-untyped-def]
    return mech.release(st, tl, acc_of(loss), loss, sid, np.random.default_rng(seed))


@pytest.mark.parametrize(("x", "step"), [(0.5, 0.5), (0.0707, 0.05), (0.035, 0.02), (0.0158, 0.01),
                                         (0.1, 0.1), (0.0049, 0.002)])
def test_nice_step(x: float, step: float) -> None:
    assert nice_step(x) == pytest.approx(step)


CLASSIC = LadderConfig(hard_labels=False, min_improvement=0, noise=0, weak_floor=False)


def test_ladder_paired_test(tl: Labels) -> None:
    """The parameter-free rule (the hardened Ladder's paired-test part)."""
    n = tl.n_public
    rng = np.random.default_rng(0)
    base = (rng.random(n) < 0.3).astype(float)  # 1 = wrong
    ladder = Ladder(cfg=CLASSIC)
    rel, st = run(ladder, ScopeState(), tl, base, "s0")
    assert rel.improved and st.best_id == "s0"
    wrong = np.flatnonzero(base == 1)
    one = base.copy()
    one[wrong[0]] = 0  # one more item right: exactly one SE better, never enough
    rel, st2 = run(ladder, st, tl, one, "s1")
    assert not rel.improved and st2 is st and rel.from_submission == "s0"
    two = one.copy()
    two[wrong[1]] = 0  # two more right, nothing worse: clears s / sqrt(n)
    rel, st3 = run(ladder, st, tl, two, "s2")
    assert rel.improved and st3.best_id == "s2"
    worse = base.copy()
    worse[np.flatnonzero(base == 0)[:5]] = 1
    rel, st4 = run(ladder, st3, tl, worse, "s3")
    assert not rel.improved and st4.best_id == "s2"
    # a net gain of 2 spread over 10 changed items is within noise (sqrt(10) > 2): not released
    mixed = two.copy()
    right = np.flatnonzero(two == 0)
    mixed[right[:4]] = 1
    mixed[np.flatnonzero(two == 1)[:6]] = 0
    rel, _ = run(ladder, st3, tl, mixed, "s4")
    assert not rel.improved


def test_hardened_ladder_needs_the_minimum_gain_over_the_weak_floor(tl: Labels) -> None:
    n = tl.n_public  # 100 public items: tau = 0.05 * 100 = 5 items
    ladder = Ladder(cfg=LadderConfig(noise=0))
    assert ladder.tau(n) == pytest.approx(5.0)
    floor = np.zeros(n)
    floor[:30] = 1  # W is right on 70 items
    bad = np.zeros(n)
    bad[:50] = 1
    rel, st = ladder.release(ScopeState(), tl, acc_of(bad), bad, "a", np.random.default_rng(0), Context(floor=floor))
    assert not rel.improved and rel.acc.combined is None and "weak baseline" in rel.info["withheld"]
    four = floor.copy()
    four[:4] = 0  # 4 items better than W: below tau
    rel, st = ladder.release(st, tl, acc_of(four), four, "b", np.random.default_rng(0), Context(floor=floor))
    assert not rel.improved
    six = floor.copy()
    six[:6] = 0
    rel, st = ladder.release(st, tl, acc_of(six), six, "c", np.random.default_rng(0), Context(floor=floor))
    assert rel.improved and st.best_id == "c"
    withheld = np.zeros(n)
    rel, st2 = ladder.release(st, tl, acc_of(withheld), withheld, "d", np.random.default_rng(0),
                              Context(withhold="too close", floor=floor))
    assert not rel.improved and st2 is st and rel.info["withheld"] == "too close"


def test_keyed_noise_is_laplace() -> None:
    u = np.random.default_rng(0).random(20000)
    draws = np.array([laplace_from_uniform(float(x), 2.0) for x in u])
    assert abs(np.median(draws)) < 0.1 and np.mean(np.abs(draws)) == pytest.approx(2.0, rel=0.05)
    assert laplace_from_uniform(0.5, 3.0) == 0.0


def test_ladder_rounds_to_its_step(tl: Labels) -> None:
    loss = np.zeros(tl.n_public)
    loss[:37] = 1
    rel, _ = run(Ladder(), ScopeState(), tl, loss, "a")
    assert rel.step is not None and rel.step.combined == pytest.approx(0.05)
    assert rel.acc.combined == pytest.approx(0.65)  # 0.63 rounded to 0.05
    rel, _ = run(Ladder(step=0.1), ScopeState(), tl, loss, "b")
    assert rel.acc.combined == pytest.approx(0.6)


def test_thresholdout_releases_only_big_changes_within_budget(tl: Labels) -> None:
    n = tl.n_public
    mech = Thresholdout(threshold=0.05, sigma=1e-9, budget=2)
    loss = np.zeros(n)
    loss[:40] = 1
    rel, st = run(mech, ScopeState(), tl, loss, "a")
    assert rel.improved and st.budget_left == 1
    assert rel.acc.combined == pytest.approx(0.6, abs=1e-3)
    small = loss.copy()
    small[:2] = 0  # +0.02: below the threshold, the old value comes back
    rel, st2 = run(mech, st, tl, small, "b")
    assert not rel.improved and rel.acc.combined == pytest.approx(0.6, abs=1e-3) and st2.budget_left == 1
    big = loss.copy()
    big[:20] = 0  # +0.2: released, one unit of budget spent
    rel, st3 = run(mech, st, tl, big, "c")
    assert rel.improved and rel.acc.combined == pytest.approx(0.8, abs=1e-3) and st3.budget_left == 0
    rel, st4 = run(mech, st3, tl, np.zeros(n), "d")
    assert not rel.improved and rel.info.get("exhausted") and st4 is st3


def test_exact_and_state_round_trip(tl: Labels) -> None:
    loss = np.zeros(tl.n_public)
    loss[:13] = 1
    rel, st = run(Exact(), ScopeState(), tl, loss, "x")
    assert rel.acc.combined == pytest.approx(0.87) and "trusted" in rel.info["warning"]
    st.loss = loss
    back = ScopeState.from_json(st.to_json())
    assert back.released == st.released and back.best_id == "x" and back.loss is None


def test_labels_loader_refuses_unsafe_names(tmp_path: Path) -> None:
    from aar.w2s.testbeds.base import TestbedError

    for name in ("../x", "", "a/b", ".hidden", "x" * 65):
        with pytest.raises(TestbedError):
            load_labels(name, Settings(home=tmp_path))
