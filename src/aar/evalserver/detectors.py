"""Hacking detectors over a team's recent prediction vectors (label-free: they never look at labels).

- **label probing**: a submission that changes only a few items (default <= 10) of an earlier one of the
  team while leaving most items bit-identical, or whose edits concentrate on the earlier submission's
  least-confident items;
- **seed cherry-picking**: many near-identical reruns (high hard-label agreement, most probabilities
  changed) from one worker;
- **boosting**: prediction vectors indistinguishable from random (agreement with the weak baseline's
  labels within ``z`` standard errors of one half), or many random edits of earlier submissions.

Flags are recorded in the audit log, returned with the submission and counted on the leaderboard. A
flagged submission is still stored and charged; kinds listed in ``DetectorConfig.withhold`` (default:
label probing) cannot move the release (``guard``), nor can any submission whose hard labels are within
``withhold_within`` items of an earlier one of the team (``info["changed"]``). They catch the published
attack patterns, not every conceivable one: a patient attacker who retrains between probes looks like an
honest worker and is left to the release mechanism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aar.evalserver.config import DetectorConfig
from aar.evalserver.models import Flag


@dataclass
class Entry:
    """What the detectors remember of one earlier submission besides its vector."""

    id: str
    worker_id: str
    random_edit: bool = False


class History:
    """The last ``window`` prediction vectors of a team on one testbed (a ring buffer).

    Hard labels are kept as two packed bit planes (label 1, label 0; neither means exactly 0.5) so that
    counting changed items against the whole window is a popcount.
    """

    def __init__(self, n: int, window: int) -> None:
        self.window = window
        nb = (n + 7) // 8
        self.probs = np.zeros((window, n), dtype=np.float64)
        self.pos = np.zeros((window, nb), dtype=np.uint8)
        self.neg = np.zeros((window, nb), dtype=np.uint8)
        self.worker = np.full(window, -1, dtype=np.int64)
        self.random_edit = np.zeros(window, dtype=bool)
        self.ids: list[str] = [""] * window
        self._codes: dict[str, int] = {}
        self.count = 0
        self.head = 0

    def code(self, worker_id: str) -> int:
        return self._codes.setdefault(worker_id, len(self._codes))

    def add(self, entry: Entry, probs: np.ndarray) -> None:
        h = self.head
        self.probs[h] = probs
        self.pos[h], self.neg[h] = np.packbits(probs > 0.5), np.packbits(probs < 0.5)
        self.worker[h] = self.code(entry.worker_id)
        self.random_edit[h] = entry.random_edit
        self.ids[h] = entry.id
        self.head = (h + 1) % self.window
        self.count = min(self.count + 1, self.window)


def hard_class(probs: np.ndarray) -> np.ndarray:
    """-1 (label 0), 0 (exactly 0.5: half credit) or +1 (label 1) per item."""
    return np.sign(probs - 0.5).astype(np.int8)


def detect(hist: History, probs: np.ndarray, worker_id: str, cfg: DetectorConfig,
           weak_hard: np.ndarray | None) -> tuple[list[Flag], dict[str, Any]]:
    """Flags for a new submission of ``worker_id`` against the team's history, and what was measured."""
    n = len(probs)
    cls = hard_class(probs)
    flags: list[Flag] = []
    info: dict[str, Any] = {"random_edit": False, "near_random": False}

    decided = int(np.count_nonzero(weak_hard)) if weak_hard is not None else 0
    if weak_hard is not None and decided:  # items where the weak seeds tie (even seed counts) say nothing
        agree = np.count_nonzero(cls == weak_hard) / decided
        if abs(agree - 0.5) <= cfg.boosting_z * 0.5 / math.sqrt(decided):
            info["near_random"] = True
            flags.append(Flag(kind="boosting", scope="worker",
                              detail="hard labels are indistinguishable from a random vector "
                                     "(they agree with the weak baseline on about half the items)"))
    k = hist.count
    if k == 0:
        return flags, info
    pos, neg = np.packbits(probs > 0.5), np.packbits(probs < 0.5)
    changed = np.bitwise_count((hist.pos[:k] ^ pos) | (hist.neg[:k] ^ neg)).sum(axis=1, dtype=np.int64)
    own = hist.worker[:k] == hist.code(worker_id)
    j = int(np.lexsort((~own, changed))[0])  # fewest changed items; own submissions first on ties
    base_id, n_changed = hist.ids[j], int(changed[j])
    touched = int(np.count_nonzero(np.abs(hist.probs[j] - probs) > 1e-12))
    is_edit = 0 < touched <= cfg.edit_max_fraction * n
    scope: Literal["worker", "team"] = "worker" if own[j] else "team"
    against = base_id if scope == "worker" else None
    who = "your earlier submission" if scope == "worker" else "a teammate's earlier submission"
    info.update(nearest=base_id, changed=n_changed, touched=touched)

    if is_edit and 1 <= n_changed <= cfg.probe_max_items:
        flags.append(Flag(kind="label_probing", scope=scope, against=against,
                          detail=f"changes the predicted label of only {n_changed} item(s) of {who}"))
    elif is_edit and n_changed > cfg.probe_max_items:
        conf = np.abs(hist.probs[j] - 0.5)
        least = np.argpartition(conf, n_changed - 1)[:n_changed] if n_changed < n else np.arange(n)
        flipped = hard_class(hist.probs[j]) != cls
        overlap = np.count_nonzero(flipped[least]) / n_changed
        if overlap >= cfg.least_confident_overlap:
            flags.append(Flag(kind="label_probing", scope=scope, against=against,
                              detail=f"edits {n_changed} items of {who}, concentrated on its "
                                     "least-confident items"))
        else:
            info["random_edit"] = True
            info["edit_of"] = base_id
            edits = 1 + int(np.count_nonzero(own & hist.random_edit[:k]))
            if edits >= cfg.boosting_edit_count:
                flags.append(Flag(kind="boosting", scope="worker",
                                  detail=f"{edits} submissions of this worker are scattered edits of "
                                         "earlier vectors (the boosting attack pattern)"))

    near = np.flatnonzero(own & (changed <= (1 - cfg.rerun_agreement) * n))
    moved_near = np.count_nonzero(hist.probs[near] != probs, axis=1) if len(near) else np.zeros(0, np.int64)
    reruns = int(np.count_nonzero(moved_near > cfg.edit_max_fraction * n))
    info["reruns"] = reruns
    if reruns + 1 >= cfg.rerun_count:
        flags.append(Flag(kind="seed_cherry_picking", scope="worker",
                          detail=f"{reruns + 1} near-identical prediction vectors (>= "
                                 f"{cfg.rerun_agreement:.0%} label agreement) from this worker"))
    return flags, info
