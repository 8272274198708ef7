"""A probability head trained on fixed features with torch: L2-regularised logistic regression
(full-batch L-BFGS, the same objective as scikit-learn's ``LogisticRegression(C=...)``), or a small
MLP when ``hidden > 0``.

Supports soft targets, per-item weights, and the logconf auxiliary confidence loss of Burns et al.
(2023): the target becomes ``(1 - a) * weak + a * hardened(student)``, with ``a`` ramped to
``aux_max`` over ``rounds`` refits, where the student's predictions are hardened at the threshold
that matches the weak labels' class balance.

The objective is convex for the linear head, so the seed changes only an MLP's initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

Loss = Literal["bce", "logconf"]


@dataclass
class HeadConfig:
    """Training settings for ``ProbabilityHead``; ``C`` is the inverse L2 strength, as in scikit-learn."""

    C: float = 1.0
    hidden: int = 0  # 0 = linear head
    max_iter: int = 200
    bias: bool = True
    aux_max: float = 0.5
    rounds: int = 4


def logconf_target(probs: torch.Tensor, weak: torch.Tensor, alpha: float) -> torch.Tensor:
    """Burns et al.'s auxiliary-confidence target: ``(1 - alpha) * weak + alpha * hardened(probs)``.

    The student's probabilities are hardened at the threshold that gives them the weak labels' class
    balance (at 0.5 when the weak labels are all one class or there is a single item). Shared by every
    backend that trains with ``loss="logconf"``.
    """
    probs = probs.detach()
    frac_pos = float((weak > 0.5).double().mean())
    if len(probs) < 2 or not 0.0 < frac_pos < 1.0:
        hardened = (probs > 0.5).to(weak.dtype)
    else:
        hardened = (probs > torch.quantile(probs, 1.0 - frac_pos)).to(weak.dtype)
    return (1 - alpha) * weak + alpha * hardened


def logconf_alpha(step: int, total: int, aux_max: float = 0.5, warmup: float = 0.2) -> float:
    """The logconf mixing weight at ``step`` of ``total``: ramped linearly to ``aux_max`` over ``warmup``."""
    return aux_max * min(1.0, step / max(1.0, warmup * total))


class ProbabilityHead:
    """Maps feature rows to P(label 1). For antisymmetric pair features use ``bias=False``."""

    def __init__(self, config: HeadConfig | None = None) -> None:
        self.config = config or HeadConfig()
        self.net: nn.Module | None = None

    def _build(self, dim: int) -> nn.Module:
        c = self.config
        if c.hidden:
            return nn.Sequential(nn.Linear(dim, c.hidden, bias=c.bias), nn.Tanh(), nn.Linear(c.hidden, 1, bias=c.bias))
        return nn.Linear(dim, 1, bias=c.bias)

    def fit(
        self,
        x: np.ndarray,
        targets: np.ndarray,
        *,
        weights: np.ndarray | None = None,
        loss: Loss = "bce",
        seed: int = 0,
    ) -> ProbabilityHead:
        """Fit on features ``x`` (n, d) and soft targets in [0, 1]."""
        if len(x) != len(targets):
            raise ValueError(f"{len(x)} feature rows but {len(targets)} targets")
        if not np.isfinite(x).all() or not np.isfinite(targets).all():
            raise ValueError("features and targets must be finite")
        torch.manual_seed(seed)
        xt = torch.tensor(x, dtype=torch.float64)
        weak = torch.tensor(np.clip(targets, 0.0, 1.0), dtype=torch.float64)
        wt = torch.tensor(np.ones(len(x)) if weights is None else weights, dtype=torch.float64)
        self.net = self._build(x.shape[1]).double()
        if self.config.hidden == 0:
            nn.init.zeros_(self.net.weight)  # type: ignore[arg-type]
        self._minimise(xt, weak, wt)
        if loss == "logconf":
            for r in range(1, self.config.rounds + 1):
                alpha = self.config.aux_max * r / self.config.rounds
                with torch.no_grad():
                    probs = torch.sigmoid(self.net(xt).squeeze(-1))
                self._minimise(xt, logconf_target(probs, weak, alpha), wt)
        return self

    def _minimise(self, x: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> None:
        assert self.net is not None
        net = self.net
        weights = [p for name, p in net.named_parameters() if name.endswith("weight")]
        opt = torch.optim.LBFGS(
            net.parameters(), lr=1.0, max_iter=self.config.max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-6
        )
        penalty = 1.0 / (2.0 * self.config.C)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logits = net(x).squeeze(-1)
            bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
            objective = (bce * w).sum() + penalty * sum((p**2).sum() for p in weights)
            objective.backward()
            return objective

        opt.step(closure)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("head is not fitted")
        with torch.no_grad():
            logits = self.net(torch.tensor(x, dtype=torch.float64)).squeeze(-1)
        return torch.sigmoid(logits).numpy()
