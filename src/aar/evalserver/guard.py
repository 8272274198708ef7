"""Leak-resistant release of public scores: the Ladder (default), Thresholdout, and exact (trusted only).

Every mechanism sees a submission's public accuracies and per-item losses and decides what to release
to one *scope* (by default the whole team: ``release_scope = "team"``), given that scope's state. The
state is a small JSON object stored with each submission in the audit log, so a restarted server
resumes every scope exactly; the Ladder's loss vector of the best submission is recomputed from its
stored predictions.

Threat model. The attacker is a team of workers (any number, colluding, sharing everything) that
holds valid worker tokens, may submit any prediction vector within the team budget, and wants public
labels: to climb the leaderboard, and as ground truth to train the strong model on (which moves the
private score too). The default release rule (``Ladder`` with ``LadderConfig()`` and the default
detectors) combines five levers:

1. hard labels only: a probability of exactly 0.5 earns nothing, so "half credit" probes do not exist;
2. a fixed minimum improvement of one public standard error (0.5/sqrt(n) of accuracy, ``tau`` items)
   over the *better* of the team's best and the weak baseline W: a query moves the release only if it
   is right on ``tau`` more public items, so no query tests one item, a bad first submission buys no
   headroom, and at most ``errors(W) / tau`` releases ever happen per team and testbed;
3. Thresholdout-style noise on that threshold (Laplace, scale ``noise * tau``), drawn from a keyed
   hash of the team, testbed and hard-label vector: resubmitting the same vector cannot average it
   away;
4. one release state and one budget per team (workers get shares), so K workers are not K ladders;
5. withholding: a submission whose hard labels differ from an earlier team submission (within the
   detectors' window) on at most ``withhold_within`` items (10), or that a ``withhold`` detector flags, is
   recorded and charged but cannot move the release (jittering probabilities does not help: the
   distance is over hard labels).

Guarantee, as measured by ``tests/evalserver/test_eval_ladder_attacks.py`` at the default configuration:
across single flips, the anchor chain (hard and half-credit), adaptive group flips (with and without
jitter), random boosting and four colluding workers, starting from the weak model or from the attacker's
own model above W, a team recovers at most 50 public labels at >= 80% precision within the default team
budget (2,000 submissions; measured: none), and training on what it recovered does not move private PGR
beyond one SE. From a start at W the floor alone stops these attacks; from a model above W the minimum
gain and the withholding do (each ablation is measured). Limits: the bound is empirical, for these
attacks; information-theoretically each release still carries up to log2(queries) bits plus the rounded
value, and a team that already knows many labels (from outside) can spend them as anchors to buy
releases. Windows are finite (``detectors.window`` submissions): near-duplicates older than that are not
withheld, but they still draw the same noise when their hard labels are identical. Thresholdout and a
worker release scope are weaker and exist for comparison; exact mode protects nothing and is logged with
a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aar.evalserver.config import LadderConfig, TeamConfig
from aar.evalserver.labels import PARTS, TestbedLabels
from aar.evalserver.models import PartValues, Released
from aar.evalserver.scoring import pgr_values

EXACT_WARNING = "exact release mode: scores are exact and labels can be probed; trusted use only"


@dataclass
class ScopeState:
    """One scope's mechanism state; ``loss`` (Ladder's best per-item losses) is runtime only."""

    released: dict[str, Any] | None = None
    best_id: str | None = None
    best_risk: float | None = None
    budget_left: int | None = None
    t_hat: float | None = None
    loss: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"released": self.released, "best_id": self.best_id, "best_risk": self.best_risk,
                "budget_left": self.budget_left, "t_hat": self.t_hat}

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> ScopeState:
        data = data or {}
        return ScopeState(data.get("released"), data.get("best_id"), data.get("best_risk"),
                          data.get("budget_left"), data.get("t_hat"))


def nice_step(x: float) -> float:
    """The largest of 1, 2, 5 times a power of ten that is <= ``x``."""
    exp = math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * 10**exp <= x * (1 + 1e-9):
            return float(m * 10**exp)
    return float(10**exp)


def ladder_steps(tl: TestbedLabels, fixed: float | None) -> PartValues:
    """Rounding step per part: about one standard error of an accuracy there (0.5/sqrt(n)), or ``fixed``."""
    return PartValues(**{p: fixed or nice_step(0.5 / math.sqrt(len(tl.part("public", p)))) for p in PARTS})


def _round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def _released(tl: TestbedLabels, mechanism: str, acc: PartValues, sub_id: str,
              step: PartValues | None = None, **info: Any) -> dict[str, Any]:
    pgrs, reasons = pgr_values(tl, acc, "public")
    return Released(mechanism=mechanism, acc=acc, pgr=pgrs, pgr_reason=reasons, improved=True, step=step,
                    from_submission=sub_id, info=info).model_dump(mode="json")


def as_released(data: dict[str, Any], improved: bool, **info: Any) -> Released:
    """A stored release, marked as changed by this submission or not."""
    rel = Released.model_validate(data)
    rel.improved = improved
    rel.info = {**rel.info, **info}
    return rel


@dataclass
class Context:
    """What a release decision may use besides the scope state: withholding, the W floor, keyed noise.

    ``withhold`` names why this submission may not move the release (None: it may). ``floor`` is the
    weak baseline's per-item public loss. ``noise_u`` is a uniform draw in (0, 1) from a keyed hash of
    the submission's hard labels (the same vector always draws the same value).
    """

    withhold: str | None = None
    floor: np.ndarray | None = None
    noise_u: float = 0.5


def laplace_from_uniform(u: float, scale: float) -> float:
    """Inverse CDF of a Laplace(0, scale) distribution at ``u`` in (0, 1)."""
    u = min(max(u, 1e-12), 1 - 1e-12)
    return -scale * math.copysign(1.0, u - 0.5) * math.log(1 - 2 * abs(u - 0.5))


def nothing_released(mechanism: str, reason: str) -> Released:
    """The answer while a scope has no released value yet."""
    return Released(mechanism=mechanism, acc=PartValues(), pgr=PartValues(), improved=False,
                    info={"withheld": reason})


class Ladder:
    """The Ladder (Blum & Hardt 2015), hardened: release only on a fixed, significant, noisy improvement.

    A submission replaces the scope's best when (a) it is not withheld, (b) its public error count is
    below the reference's by at least ``tau + Lap(noise * tau)`` items (at least ``tau / 2``), where the
    reference is the better of the best and (``weak_floor``) the weak baseline W, and (c) the gain also
    clears the paired one-SE test ``s * sqrt(n)`` on the per-item loss differences. ``tau`` is the
    minimum improvement times the number n of public items (default one SE: 0.5/sqrt(n) of accuracy).
    Released accuracies are rounded to the ladder step. With ``LadderConfig(hard_labels=False,
    min_improvement=0, noise=0, weak_floor=False)`` this is the parameter-free Ladder.
    """

    name = "ladder"

    def __init__(self, step: float | None = None, cfg: LadderConfig | None = None) -> None:
        self.step = step
        self.cfg = cfg or LadderConfig()

    def tau(self, n: int) -> float:
        """The minimum improvement in public items."""
        share = self.cfg.min_improvement if self.cfg.min_improvement is not None else 0.5 / math.sqrt(n)
        return share * n

    def release(self, st: ScopeState, tl: TestbedLabels, acc: PartValues, loss: np.ndarray,
                sub_id: str, rng: np.random.Generator, ctx: Context | None = None) -> tuple[Released, ScopeState]:
        ctx = ctx or Context()
        if ctx.withhold is not None:
            if st.released is None:
                return nothing_released(self.name, ctx.withhold), st
            return as_released(st.released, False, withheld=ctx.withhold), st
        n = len(loss)
        ref = st.loss if st.released is not None else None
        if self.cfg.weak_floor and ctx.floor is not None and (ref is None or ctx.floor.sum() < ref.sum()):
            ref = ctx.floor
        if ref is not None:
            diff = loss - ref
            gain = -float(diff.sum())
            s = float(diff.std(ddof=1)) if n > 1 else 0.0
            tau = self.tau(n)
            need = max(tau / 2, tau + laplace_from_uniform(ctx.noise_u, self.cfg.noise * tau)) if tau else 0.0
            if not (gain > s * math.sqrt(n) + 1e-9 and gain >= need - 1e-9):
                if st.released is None:
                    return nothing_released(self.name, "not better than the weak baseline W by the minimum "
                                                       "improvement"), st
                return as_released(st.released, False), st
        steps = ladder_steps(tl, self.step)
        rounded = PartValues(**{p: _round_to(getattr(acc, p), getattr(steps, p)) for p in PARTS})
        new = ScopeState(released=_released(tl, self.name, rounded, sub_id, steps), best_id=sub_id,
                         best_risk=float(loss.mean()), loss=loss)
        return as_released(new.released or {}, True), new


class Thresholdout:
    """Thresholdout (Dwork et al. 2015) with the scope's last released value as the reference estimate.

    Each query compares the true public accuracy with the last released one; only when they differ by
    more than a noisy threshold ``T + Lap(4 sigma)`` is a fresh value released, with ``Lap(sigma)``
    noise, which spends one unit of the scope's budget (and redraws ``T_hat = T + Lap(2 sigma)``).
    Otherwise the last released value is returned. With the budget spent, nothing new is released.
    """

    name = "thresholdout"

    def __init__(self, threshold: float | None, sigma: float | None, budget: int) -> None:
        self.threshold, self.sigma, self.budget = threshold, sigma, budget

    def release(self, st: ScopeState, tl: TestbedLabels, acc: PartValues, loss: np.ndarray,
                sub_id: str, rng: np.random.Generator, ctx: Context | None = None) -> tuple[Released, ScopeState]:
        if ctx is not None and ctx.withhold is not None:
            if st.released is None:
                return nothing_released(self.name, ctx.withhold), st
            return as_released(st.released, False, withheld=ctx.withhold), st
        n = len(loss)
        t, sigma = self.threshold or 1.0 / math.sqrt(n), self.sigma or 0.25 / math.sqrt(n)
        budget = self.budget if st.budget_left is None else st.budget_left
        t_hat = st.t_hat if st.t_hat is not None else t + rng.laplace(0, 2 * sigma)
        if st.released is not None:
            if budget <= 0:
                return as_released(st.released, False, budget_left=0, exhausted=True), st
            ref = float(st.released["acc"]["combined"])
            if abs(float(acc.combined or 0.0) - ref) <= t_hat + rng.laplace(0, 4 * sigma):
                return as_released(st.released, False, budget_left=budget), st
            t_hat = t + rng.laplace(0, 2 * sigma)
        noisy = {}
        for p in PARTS:
            scale = sigma * math.sqrt(n / len(tl.part("public", p)))
            noisy[p] = round(min(1.0, max(0.0, float(getattr(acc, p)) + rng.laplace(0, scale))), 4)
        new = ScopeState(released=_released(tl, self.name, PartValues(**noisy), sub_id), best_id=sub_id,
                         budget_left=budget - 1, t_hat=t_hat)
        return as_released(new.released or {}, True, budget_left=budget - 1), new


class Exact:
    """Exact public scores (trusted use only): every query is answered exactly, so labels can be probed."""

    name = "exact"

    def release(self, st: ScopeState, tl: TestbedLabels, acc: PartValues, loss: np.ndarray,
                sub_id: str, rng: np.random.Generator, ctx: Context | None = None) -> tuple[Released, ScopeState]:
        data = _released(tl, self.name, acc, sub_id, warning=EXACT_WARNING)
        return as_released(data, True), ScopeState(released=data, best_id=sub_id)


def mechanism_for(cfg: TeamConfig) -> Ladder | Thresholdout | Exact:
    """The release mechanism a team's configuration names."""
    if cfg.mechanism == "ladder":
        return Ladder(cfg.ladder_step, cfg.ladder)
    if cfg.mechanism == "thresholdout":
        th = cfg.thresholdout
        return Thresholdout(th.threshold, th.sigma, th.budget)
    return Exact()
