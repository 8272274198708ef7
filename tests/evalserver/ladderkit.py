"""Label-recovery attacks on the release pipeline, run in process (no HTTP) with a fake clock.

``Pipeline`` drives ``EvalService``'s real submission path (budgets, detectors, withholding, the release
mechanism, team state) without the commit, so an attack can spend a whole team budget in seconds. Each
attack returns the labels it claims to have recovered (item index -> label); ``Outcome`` scores those
claims on the public items, which is what the guarantee in ``aar.evalserver.guard`` bounds. Attacks probe
the published items (an agent knows no other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from evalkit import SyntheticTestbed, make_testbed, noisy_predictions

from aar.auth import Principal
from aar.config import Settings
from aar.evalserver.budget import BudgetExceeded
from aar.evalserver.config import DetectorConfig, EvalServerConfig, LadderConfig, TeamConfig
from aar.evalserver.labels import TestbedLabels
from aar.evalserver.models import Released
from aar.evalserver.service import EvalService

#: The parameter-free Ladder with per-worker state and budgets: the release rule before issue 8.
CLASSIC = TeamConfig(mechanism="ladder", release_scope="worker", max_per_hour=60, max_total=2000,
                     team_max_per_hour=None, team_max_total=None,
                     ladder=LadderConfig(hard_labels=False, min_improvement=0, noise=0, weak_floor=False),
                     detectors=DetectorConfig(withhold_within=0, withhold=[]))
EXACT = TeamConfig(mechanism="exact")


@dataclass
class Outcome:
    """Claims scored on public items: how many, how many right, precision."""

    public_claims: int
    public_correct: int

    @property
    def precision(self) -> float:
        return self.public_correct / self.public_claims if self.public_claims else 0.0

    @property
    def breaks_goal(self) -> bool:
        """More than 50 public labels at >= 80% precision: the issue-8 goal is broken."""
        return self.public_correct > 50 and self.precision >= 0.8

    def __str__(self) -> str:
        return f"{self.public_claims} public claims, {self.public_correct} right ({self.precision:.0%})"


@dataclass
class Pipeline:
    """One team on an in-process eval server; ``submit`` answers like the API (None: over budget)."""

    svc: EvalService
    tl: TestbedLabels
    tb: SyntheticTestbed
    team: str
    now: float = 1.0e9
    step_s: float = 61.0
    used: int = 0
    workers: list[str] = field(default_factory=lambda: ["w0", "w1", "w2", "w3"])
    base: np.ndarray | None = None  # the attacker's own model; None: its weak model
    _next: int = 0

    def submit(self, probs: np.ndarray, worker: str | None = None) -> Released | None:
        """Submit as ``worker``, or as the next team member with budget left (round robin).

        With per-worker release state an attacker keeps to one worker (its ladder), so ``None`` means w0.
        ``probs`` covers every test item (an attack's index space); only the published ones are sent.
        """
        cfg = self.svc.team_config(self.team)
        if worker is None and cfg.release_scope == "worker":
            worker = self.workers[0]
        candidates = [worker] if worker else [self.workers[(self._next + k) % len(self.workers)]
                                             for k in range(len(self.workers))]
        for w in candidates:
            if not self._ready(w, cfg):
                continue
            self._next = (self.workers.index(w) + 1) % len(self.workers) if w in self.workers else self._next
            out, _ = self.svc._process(Principal(w, self.team, "worker"), self.tl.name, probs[self.tl.submit_idx],
                                       self.tl, cfg,
                                       self.now, {"seed": None, "note": None, "snapshot_id": None})
            self.now += self.step_s
            self.used += 1
            return out.released
        return None

    def _ready(self, worker: str, cfg: TeamConfig) -> bool:
        """Whether ``worker`` may submit, waiting out hourly limits (a patient attacker); False when spent."""
        while True:
            try:
                self.svc.budgets.check(self.team, worker, cfg, self.now)
                return True
            except BudgetExceeded as exc:
                if "total" in str(exc):
                    return False
                self.now += exc.retry_after

    def outcome(self, claims: dict[int, int]) -> Outcome:
        pub = set(self.tl.part("public", "combined").tolist())
        keys = [i for i in claims if i in pub]
        return Outcome(len(keys), sum(claims[i] == int(self.tl.labels[i]) for i in keys))

    def weak_guess(self) -> np.ndarray:
        """The attacker's starting model: ``base``, or its weak model (the first weak baseline seed)."""
        if self.base is not None:
            return self.base
        return np.array([self.tb.weak[0][i] for i in self.tl.ids])


def make_service(tmp: Path, n_test: int = 500) -> tuple[EvalService, SyntheticTestbed]:
    settings = Settings(home=tmp / "home")
    tb = make_testbed(settings, n_test=n_test, seed=4)
    return EvalService(settings, EvalServerConfig()), tb


def pipeline(svc: EvalService, tb: SyntheticTestbed, team: str, cfg: TeamConfig | None,
             base_acc: float | None = None) -> Pipeline:
    """A team on ``svc`` (``cfg`` None: the server default); ``base_acc``: the attacker starts from its
    own model of that accuracy (above W, so its first submission is honestly released)."""
    if cfg is not None:
        svc.set_team_config(team, cfg, Principal("root", "admin", "admin"))
    tl = svc.labels(tb.name)
    base = None
    if base_acc is not None:
        guess = noisy_predictions(tb.all_labels, base_acc, np.random.default_rng(42))
        base = np.array([guess[i] for i in tl.ids])
    return Pipeline(svc, tl, tb, team, base=base)


# ---------------------------------------------------------------------------------------------- attacks
def _signal(rel: Released | None, before: float | None) -> int:
    """+1 when the released score went up (or the release moved), -1 when it went down, 0 otherwise."""
    if rel is None or rel.acc.combined is None:
        return 0
    if rel.mechanism == "exact":
        return 0 if before is None else int(np.sign(rel.acc.combined - before))
    return 1 if rel.improved else 0


def single_flips(p: Pipeline, queries: int) -> dict[int, int]:
    """Flip one item of the weak vector at a time; read its label off the change in the released score."""
    base = (p.weak_guess() > 0.5).astype(float)
    rel = p.submit(base)
    r0 = rel.acc.combined if rel else None
    claims = {}
    for i in p.tl.submit_idx[:queries]:  # the published items: the only ones an agent knows of
        probe = base.copy()
        probe[i] = 1 - probe[i]
        s = _signal(p.submit(probe), r0)
        if s:
            claims[i] = int(probe[i]) if s > 0 else int(base[i])
    return claims


def anchor_chain(p: Pipeline, queries: int, half: bool, anchors: list[int] | None = None,
                 worker: str | None = None, seed: int = 11) -> dict[int, int]:
    """The anchor chain: move x and known-wrong anchors to their right side; a release says x was wrong.

    The chain (re)starts by moving a pair of items to 0.5 until a pair is released (both public and
    wrong: their labels are then known, and they are anchors). Each query then moves ``need`` anchors
    to their right side and x to 0.5 (``half``: x stays an anchor after a hit) or across (hard: a hit
    spends the anchor). ``anchors`` (indices with labels known from outside) are kept wrong in the base
    and spent first; ``need`` doubles after 20 queries in a row release nothing.
    """
    rng = np.random.default_rng(seed)
    weak = (p.weak_guess() > 0.5).astype(int)
    cur = weak.astype(float)
    known = {a: int(p.tl.labels[a]) for a in anchors or []}
    bank = list(known)
    cur[bank] = [1 - known[a] for a in bank]
    claims: dict[int, int] = {}
    if p.submit(cur, worker) is None:
        return claims
    spent, need, misses = 1, 1, 0
    order = [int(i) for i in rng.permutation(p.tl.submit_idx) if int(i) not in known]  # published items
    while spent < queries and len(order) >= 2:
        probe = cur.copy()
        if len(bank) < need:  # (re)start: a pair at 0.5 is released iff both are public and wrong
            tested = [order.pop(), order.pop()]
            probe[tested] = 0.5
        else:
            used, x = bank[:need], order.pop()
            probe[used] = [known[a] for a in used]
            probe[x] = 0.5 if half else 1 - cur[x]
            tested = [x]
        rel = p.submit(probe, worker)
        spent += 1
        if rel is None:
            break
        if not rel.improved:
            for i in tested if len(tested) == 2 else []:  # a failed pair says little: retry each later
                order.insert(int(rng.integers(len(order) + 1)), i)
            misses += 1
            if misses >= 40 and 2 * need <= len(bank):
                need, misses = 2 * need, 0
            continue
        cur, misses = probe, 0
        for i in tested:
            known[i] = claims[i] = 1 - int(weak[i])
        if len(tested) == 1:
            bank = bank[need:]
        if half or len(tested) == 2:
            bank += tested
    return claims


def group_flips(p: Pipeline, queries: int, jitter: bool, sizes: tuple[int, ...] = (2, 4, 12, 24)) -> dict[int, int]:
    """Flip random groups of the weak vector; keep (and claim) a group whenever the release moves.

    Adaptive: the group size grows whenever 200 queries in a row moved nothing. ``jitter`` redraws every
    probability on its side of 0.5 so that no two vectors share a single bit-identical value.
    """
    rng = np.random.default_rng(5)
    cur = (p.weak_guess() > 0.5).astype(float)
    claims: dict[int, int] = {}

    def shape(hard: np.ndarray) -> np.ndarray:
        if not jitter:
            return hard
        return np.where(hard > 0.5, 0.51 + 0.48 * rng.random(len(hard)), 0.49 - 0.48 * rng.random(len(hard)))

    if p.submit(shape(cur)) is None:
        return claims
    k, quiet = 0, 0
    for _ in range(queries - 1):
        g = rng.choice(p.tl.submit_idx, sizes[k], replace=False)  # published items
        probe = cur.copy()
        probe[g] = 1 - probe[g]
        rel = p.submit(shape(probe))
        if rel is None:
            break
        if rel.improved:
            cur = probe
            claims.update({int(i): int(probe[i]) for i in g})
            quiet = 0
        else:
            quiet += 1
            if quiet >= 200 and k + 1 < len(sizes):
                k, quiet = k + 1, 0
    return claims


def random_boosting(p: Pipeline, queries: int, flip: float = 0.05) -> dict[int, int]:
    """Random perturbations of the weak vector; claim the flips whose queries raised the released score."""
    rng = np.random.default_rng(3)
    base = (p.weak_guess() > 0.5).astype(float)
    first = p.submit(base)
    r0 = first.acc.combined if first and first.acc.combined is not None else 0.0
    masks = rng.random((queries - 1, p.tl.n)) < flip
    deltas = np.zeros(len(masks))
    for j, mask in enumerate(masks):
        rel = p.submit(np.where(mask, 1 - base, base))
        if rel is None:
            masks = masks[:j]
            deltas = deltas[:j]
            break
        value = rel.acc.combined
        deltas[j] = 0.0 if value is None else (value - r0 if rel.mechanism == "exact" or rel.improved else 0.0)
    with_i = (deltas[:, None] * masks).sum(0) / np.maximum(masks.sum(0), 1)
    without_i = (deltas[:, None] * ~masks).sum(0) / np.maximum((~masks).sum(0), 1)
    gain = with_i - without_i
    return {int(i): int(1 - base[i]) for i in np.flatnonzero(gain > 0.5 / p.tl.n_public)}


def colluding_chains(p: Pipeline, queries: int) -> dict[int, int]:
    """Four workers of one team each run the half-credit chain on their own; claims are pooled."""
    claims: dict[int, int] = {}
    for k, w in enumerate(p.workers):
        claims.update(anchor_chain(p, queries, half=True, worker=w, seed=100 + k))
    return claims


Attack = Callable[[Pipeline], dict[int, int]]
