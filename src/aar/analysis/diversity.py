"""How diverse a team's ideas are over time: family entropy across active workers, and the Vendi score.

* :func:`family_entropy`: the Shannon entropy (bits) of a list of family labels.
* :func:`entropy_curve`: at every iteration step (a moment some worker starts a new idea), the entropy
  of the families of the ideas the active workers are working on, against the cumulative hill-climb
  hours (AAR-hours) so far, with a 90% band from bootstrapping the active workers (bias-corrected:
  resampling merges families, so a raw percentile band sits below the estimate); points with fewer
  than ``min_workers`` active workers are dropped (an entropy over 2 workers says little). A team
  whose workers converge on one family shows a falling curve ("entropy collapse").
* :func:`vendi_score`: the effective number of distinct ideas, ``exp`` of the entropy of the eigenvalues
  of the ideas' cosine-similarity matrix divided by its size (1 for identical ideas, n for n orthogonal
  ones), so a collapse shows even where the family labels are coarse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel


def family_entropy(families: Sequence[str]) -> float:
    """Shannon entropy in bits of the label distribution (0 for none or one family)."""
    if not families:
        return 0.0
    p = np.array(list(Counter(families).values()), dtype=float) / len(families)
    return float(max(0.0, -(p * np.log2(p)).sum()))  # never -0.0


@dataclass(frozen=True)
class IdeaStart:
    """A worker started working on an idea of ``family`` at ``hours`` (since the team started)."""

    worker: str
    hours: float
    family: str


class EntropyPoint(BaseModel):
    hours: float  # wall-clock hours since the team started
    aar_hours: float  # cumulative hill-climb hours of all workers so far
    active: int
    entropy: float
    low: float  # the 90% bootstrap band over active workers
    high: float


def entropy_curve(starts: Sequence[IdeaStart], worker_end: dict[str, float], min_workers: int = 5,
                  n_boot: int = 1000, ci: float = 0.9, seed: int = 0) -> list[EntropyPoint]:
    """The family entropy of the active workers' current ideas at each iteration step.

    Args:
        starts: every idea start of every worker.
        worker_end: the hour each worker stopped (its last activity); a worker is active from its
            first idea start until then.
        min_workers: points with fewer active workers are dropped.
        n_boot, ci, seed: the bootstrap over active workers (resampled with replacement).
    """
    rng = np.random.default_rng(seed)
    ordered = sorted(starts, key=lambda s: (s.hours, s.worker))
    first: dict[str, float] = {}
    for s in ordered:
        first.setdefault(s.worker, s.hours)
    current: dict[str, str] = {}
    points: list[EntropyPoint] = []
    for k, s in enumerate(ordered):
        current[s.worker] = s.family
        if k + 1 < len(ordered) and ordered[k + 1].hours == s.hours:
            continue  # one step per moment: several workers may start ideas at the same time
        t = s.hours
        active = [w for w in current if first[w] <= t <= worker_end.get(w, float("inf"))]
        if len(active) < min_workers:
            continue
        fams = [current[w] for w in active]
        value = family_entropy(fams)
        boot = np.array([family_entropy([fams[i] for i in rng.integers(0, len(fams), len(fams))])
                         for _ in range(n_boot)])
        # the plug-in entropy of a resample is biased low (duplicates merge families), so the percentile
        # band is shifted by the bootstrap's own bias estimate, then kept inside [0, log2(active)]
        shift = value - float(boot.mean())
        low, high = np.clip(np.quantile(boot, [(1 - ci) / 2, 1 - (1 - ci) / 2]) + shift, 0.0, np.log2(len(fams)))
        aar_hours = sum(max(0.0, min(t, worker_end.get(w, t)) - first[w]) for w in first if first[w] <= t)
        points.append(EntropyPoint(hours=t, aar_hours=aar_hours, active=len(active), entropy=value,
                                   low=float(low), high=float(high)))
    return points


def vendi_score(embeddings: np.ndarray) -> float:
    """The effective number of distinct rows of ``embeddings`` (cosine similarity kernel)."""
    n = len(embeddings)
    if n == 0:
        return 0.0
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    eig = np.linalg.eigvalsh(x @ x.T / n).clip(0.0)
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))
