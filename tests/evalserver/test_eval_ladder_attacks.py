"""Label-recovery attacks spend a whole team budget: each recovers many labels on the old rule, few now."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from evalkit import SyntheticTestbed
from ladderkit import (
    CLASSIC,
    EXACT,
    Pipeline,
    anchor_chain,
    colluding_chains,
    group_flips,
    make_service,
    pipeline,
    random_boosting,
    single_flips,
)
from sklearn.linear_model import LogisticRegression

from aar.evalserver.config import DetectorConfig, LadderConfig, TeamConfig
from aar.evalserver.service import EvalService

BUDGET = 2000  # TeamConfig().team_max_total: the default team budget

Attack = Callable[[Pipeline, int], dict[int, int]]

ATTACKS: dict[str, tuple[Attack, TeamConfig, int]] = {
    # name: (attack, control configuration where it works, queries the control needs)
    "single_flips": (single_flips, EXACT, 150),
    "chain_half_credit": (lambda p, q: anchor_chain(p, q, half=True), CLASSIC, 600),
    "chain_hard": (lambda p, q: anchor_chain(p, q, half=False), CLASSIC, 1200),
    "group_flips": (lambda p, q: group_flips(p, q, jitter=False), CLASSIC, 1400),
    "group_flips_jitter": (lambda p, q: group_flips(p, q, jitter=True), CLASSIC, 1400),
    "random_boosting": (random_boosting, EXACT, BUDGET),
    "colluding_workers": (colluding_chains, CLASSIC, 600),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EvalService, SyntheticTestbed]]:
    """One in-process eval server: 500 ID + 500 OOD test items, half of them public."""
    svc, tb = make_service(tmp_path_factory.mktemp("ladder"))
    yield svc, tb
    svc.close()


#: What each attack recovered at the default configuration (filled by the tests below, reused for PGR).
RECOVERED: dict[str, dict[int, int]] = {}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_recovers_few_labels_at_default(served: tuple[EvalService, SyntheticTestbed], name: str) -> None:
    svc, tb = served
    attack, control, queries = ATTACKS[name]
    worked = pipeline(svc, tb, f"{name}-control", control)
    before = attack(worked, queries)
    # control: on the old rule (or exact scores) the attack recovers > 50 public labels at >= 80%
    assert worked.outcome(before).breaks_goal, worked.outcome(before)
    now = pipeline(svc, tb, f"{name}-default", None)  # the server's default team configuration
    after = RECOVERED[name] = attack(now, BUDGET + 100)  # refused once the team budget is spent
    result = now.outcome(after)
    assert now.used <= BUDGET
    if name == "colluding_workers":  # four workers tried 4 x 2,100 queries: one team budget, not four
        assert now.used == BUDGET and worked.used > BUDGET
    assert not result.breaks_goal, result
    assert result.public_correct <= 10, result  # measured: 0 for every attack


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_from_a_model_above_w(served: tuple[EvalService, SyntheticTestbed], name: str) -> None:
    """The attacker first gets an honest release (its own 0.85 model), then attacks from there."""
    svc, tb = served
    attack = ATTACKS[name][0]
    p = pipeline(svc, tb, f"{name}-strong", None, base_acc=0.85)
    result = p.outcome(attack(p, BUDGET + 100))
    assert result.public_correct <= 10, result  # measured: 0 for every attack


def test_minimum_gain_and_withholding_are_what_stop_group_flips_above_w(
        served: tuple[EvalService, SyntheticTestbed]) -> None:
    """Control for the test above: without those two levers group flips from a 0.85 model recover labels."""
    svc, tb = served
    ablated = TeamConfig(ladder=LadderConfig(min_improvement=0, noise=0),
                         detectors=DetectorConfig(withhold_within=0, withhold=[]))
    p = pipeline(svc, tb, "strong-ablated", ablated, base_acc=0.85)
    result = p.outcome(group_flips(p, BUDGET, jitter=True))
    assert result.public_correct >= 10 and result.precision >= 0.8, result


def test_honest_progress_is_still_released(served: tuple[EvalService, SyntheticTestbed]) -> None:
    """A team whose models really improve sees each significant improvement released."""
    svc, tb = served
    p = pipeline(svc, tb, "honest", None)
    rng = np.random.default_rng(0)
    y = p.tl.labels
    released = []
    for acc in (0.60, 0.75, 0.85, 0.95):  # W is about 0.68 on these items
        right = rng.random(p.tl.n) < acc
        conf = 0.55 + 0.44 * rng.random(p.tl.n)  # a real model: every probability its own
        rel = p.submit(np.where(right == (y == 1), conf, 1 - conf))
        assert rel is not None
        released.append(rel.improved)
    assert released == [False, True, True, True]  # below W nothing; then each step is ~4 SE


def _train_private_acc(tb: SyntheticTestbed, p: Pipeline, claims: dict[int, int], seed: int = 0) -> float:
    """A logistic head on synthetic features: weak labels for train items, plus the recovered test labels.

    Features carry the label along one direction; the weak labeller's boundary is tilted along another
    (about 74% right), which true labels pull back. Returns the head's accuracy on the private items.
    """
    rng = np.random.default_rng(seed)
    y_test = p.tl.labels
    n_train = 2000
    y_train = rng.integers(0, 2, n_train)

    def feats(y: np.ndarray) -> np.ndarray:
        x = rng.normal(size=(len(y), 8))
        x[:, 0] += 1.2 * (2 * y - 1)
        return x

    x_train, x_test = feats(y_train), feats(y_test)
    weak_train = (x_train[:, 0] + 1.5 * x_train[:, 1] > 0).astype(int)  # systematic weak-label errors
    idx = np.array(sorted(claims), dtype=int)
    x = np.vstack([x_train, x_test[idx]]) if len(idx) else x_train
    t = np.concatenate([weak_train, [claims[i] for i in idx]]) if len(idx) else weak_train
    w = np.concatenate([np.ones(n_train), np.full(len(idx), 4.0)])  # a keen attacker up-weights them
    head = LogisticRegression(max_iter=500).fit(x, t, sample_weight=w)
    private = p.tl.part("private", "combined")
    return float((head.predict(x_test[private]) == y_test[private]).mean())


def test_recovered_labels_do_not_move_private_pgr(served: tuple[EvalService, SyntheticTestbed]) -> None:
    """Training on everything the default run of every attack recovered moves private PGR < 1 SE."""
    svc, tb = served
    p = pipeline(svc, tb, "pgr-default", None)
    pooled: dict[int, int] = {}
    for name, (attack, _, _) in ATTACKS.items():
        if name not in RECOVERED:  # run alone: repeat the attack
            RECOVERED[name] = attack(pipeline(svc, tb, f"pgr-{name}", None), BUDGET)
        pooled.update(RECOVERED[name])
    base = _train_private_acc(tb, p, {})
    with_claims = _train_private_acc(tb, p, pooled)
    n_private = len(p.tl.part("private", "combined"))
    se = float(np.sqrt(base * (1 - base) / n_private))  # SE of accuracy; PGR's SE scales the same way
    assert abs(with_claims - base) <= se
    # control: the labels exact scores give away (single flips) do move it
    leaked = single_flips(pipeline(svc, tb, "pgr-exact", EXACT), BUDGET)
    assert _train_private_acc(tb, p, leaked) - base > se
