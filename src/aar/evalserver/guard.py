"""Leak-resistant release of public scores: the Ladder (default), Thresholdout, and exact (trusted only).

Every mechanism sees a submission's true public accuracies and per-item losses and decides what to
release to one *scope* (a worker, or a whole team), given that scope's state. The state is a small
JSON object stored with each submission in the audit log, so a restarted server resumes every scope
exactly; the Ladder's loss vector of the best submission is recomputed from its stored predictions.

What they protect against: a worker (or team) learning test labels by watching scores move (flip one
item, resubmit), and over-fitting the released score by adaptive boosting. What they don't: a team that
shares its released values out of band only gets what each scope was released; exact mode protects
nothing and is logged with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aar.evalserver.config import TeamConfig
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


class Ladder:
    """Parameter-free Ladder (Blum & Hardt 2015): release only on a significant paired improvement.

    A submission replaces the scope's best when its mean public loss is below the best's by more than
    ``s / sqrt(n)``, where ``s`` is the sample standard deviation of the per-item loss differences
    (a one-standard-error paired test). Released accuracies are rounded to the ladder step. A single
    flipped item changes the loss by exactly ``1/n`` with ``s / sqrt(n) = 1/n``, so it is never released.
    """

    name = "ladder"

    def __init__(self, step: float | None = None) -> None:
        self.step = step

    def release(self, st: ScopeState, tl: TestbedLabels, acc: PartValues, loss: np.ndarray,
                sub_id: str, rng: np.random.Generator) -> tuple[Released, ScopeState]:
        n = len(loss)
        risk = float(loss.mean())
        if st.released is not None and st.loss is not None and st.best_risk is not None:
            diff = loss - st.loss
            s = float(diff.std(ddof=1)) if n > 1 else 0.0
            if not risk < st.best_risk - s / math.sqrt(n) - 1e-12:
                return as_released(st.released, False), st
        steps = ladder_steps(tl, self.step)
        rounded = PartValues(**{p: _round_to(getattr(acc, p), getattr(steps, p)) for p in PARTS})
        new = ScopeState(released=_released(tl, self.name, rounded, sub_id, steps), best_id=sub_id,
                         best_risk=risk, loss=loss)
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
                sub_id: str, rng: np.random.Generator) -> tuple[Released, ScopeState]:
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
                sub_id: str, rng: np.random.Generator) -> tuple[Released, ScopeState]:
        data = _released(tl, self.name, acc, sub_id, warning=EXACT_WARNING)
        return as_released(data, True), ScopeState(released=data, best_id=sub_id)


def mechanism_for(cfg: TeamConfig) -> Ladder | Thresholdout | Exact:
    """The release mechanism a team's configuration names."""
    if cfg.mechanism == "ladder":
        return Ladder(cfg.ladder_step)
    if cfg.mechanism == "thresholdout":
        th = cfg.thresholdout
        return Thresholdout(th.threshold, th.sigma, th.budget)
    return Exact()
