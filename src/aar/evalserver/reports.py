"""Leaderboards (released values; admins also see true public scores) and the team's final selection.

Both read the audit log only (plus labels for the admin columns), so ``aar team finalize`` can select in
the admin's own process as well as through the server's admin route. A worker's *selected* submission
is its best by true public accuracy (earliest on ties); its private score comes from replaying its idea
on the never-published private half (``aar.labels.replay``), and the public-private gap then shows
over-fitting of the public part.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aar.evalserver.labels import PARTS, TestbedLabels
from aar.evalserver.models import (
    Board,
    BoardRow,
    FinalEntry,
    FinalReport,
    Leaderboard,
    PartValues,
    Released,
    Scores,
)
from aar.evalserver.scoring import score
from aar.evalserver.store import Store

LabelsFn = Callable[[str], TestbedLabels]


@dataclass
class _Worker:
    submissions: int = 0
    last_at: float = 0.0
    best: Released | None = None
    best_public: tuple[float, int, str] | None = None  # (acc, -seq, id): max acc, earliest seq
    flags: Counter[str] = field(default_factory=Counter)


def _better(new: Released, old: Released | None) -> bool:
    return old is None or (new.acc.combined or 0.0) >= (old.acc.combined or 0.0)


Collected = tuple[dict[str, dict[str, _Worker]], dict[str, Released], dict[str, str]]


def _collect(rows: Iterable[Any]) -> Collected:
    """Per testbed and worker: counts, flags, best released, best true public; team best per testbed."""
    boards: dict[str, dict[str, _Worker]] = {}
    team_best: dict[str, Released] = {}
    mechanism: dict[str, str] = {}
    for r in rows:
        w = boards.setdefault(r.testbed, {}).setdefault(r.worker_id, _Worker())
        w.submissions += 1
        w.last_at = max(w.last_at, r.created_at)
        released = Released.model_validate_json(r.released)
        if released.improved and released.from_submission == r.id and _better(released, w.best):
            w.best = released
        key = (r.public_acc, -r.seq, r.id)
        if w.best_public is None or key > w.best_public:
            w.best_public = key
        w.flags.update(f["kind"] for f in json.loads(r.flags))
        team_rel = Released.model_validate_json(r.team_released)
        if team_rel.improved and _better(team_rel, team_best.get(r.testbed)):
            team_best[r.testbed] = team_rel
        mechanism[r.testbed] = r.mechanism
    for rel in team_best.values():
        rel.improved, rel.from_submission = False, None
    return boards, team_best, mechanism


def public_gap(public: Scores, private: Scores) -> PartValues:
    """Public minus private accuracy per part (over-fitting to the released scores)."""
    return PartValues(**{p: round(getattr(public.acc, p) - getattr(private.acc, p), 4) for p in PARTS})


def selected_scores(store: Store, tl: TestbedLabels, sub_id: str, with_se: bool) -> Scores:
    """True public scores of one stored submission (admin only). Its private score comes only from a replay
    of its idea (``aar.labels.replay``): a submission never holds predictions for the private items."""
    return score(tl, tl.expand(stored_probs(store, tl, sub_id)), "public", with_se=with_se)


def stored_probs(store: Store, tl: TestbedLabels, sub_id: str) -> np.ndarray:
    """A stored submission's predictions, in the order of the published test items (``tl.submit_ids``)."""
    raw = store.predictions(sub_id)
    if raw is None:
        raise LookupError(f"submission {sub_id} has no stored predictions")
    probs = np.frombuffer(raw, dtype="<f8")
    if len(probs) != tl.n_public:
        raise LookupError(f"submission {sub_id} was made against an earlier version of testbed {tl.name!r}")
    return probs


def leaderboard(store: Store, team: str, testbed: str | None, admin: bool, labels: LabelsFn) -> Leaderboard:
    """A team's leaderboard per testbed; ``admin`` adds true public / private scores and their gap."""
    rows = (r for r in store.iter_all(team=team) if testbed is None or r.testbed == testbed)
    per_testbed, team_best, mechanism = _collect(rows)
    boards = []
    for tb in sorted(per_testbed):
        entries = []
        for worker_id, w in sorted(per_testbed[tb].items()):
            row = BoardRow(worker_id=worker_id, submissions=w.submissions, best=w.best, flags=dict(w.flags),
                           last_at=datetime.fromtimestamp(w.last_at, UTC))
            if row.best is not None:
                row.best.improved = False
            if admin and w.best_public is not None:
                sub_id = w.best_public[2]
                try:
                    row.best_public_submission = sub_id
                    row.public_true = selected_scores(store, labels(tb), sub_id, with_se=False)
                except (LookupError, ValueError):
                    row.best_public_submission = sub_id
            entries.append(row)
        entries.sort(key=lambda e: -(e.best.acc.combined or 0.0) if e.best else 0.0)
        boards.append(Board(testbed=tb, mechanism=mechanism[tb], team_best=team_best.get(tb),
                            workers=entries))
    return Leaderboard(team=team, boards=boards)


def finalize_team(store: Store, team: str, labels: LabelsFn, by: str, testbed: str | None = None,
                  record: bool = True) -> FinalReport:
    """Select each worker's submission (best true public score) with its public scores; append the selection
    to the log. The private scores come from replaying the selected ideas (``aar team finalize``)."""
    last_seq = store.max_seq()
    rows = (r for r in store.iter_all(team=team)
            if r.seq <= last_seq and (testbed is None or r.testbed == testbed))
    per_testbed, _, _ = _collect(rows)
    if not per_testbed:
        where = f" on testbed {testbed!r}" if testbed else ""
        raise LookupError(f"team {team!r} has no submissions{where}")
    entries: list[FinalEntry] = []
    best: list[FinalEntry] = []
    for tb in sorted(per_testbed):
        tl = labels(tb)
        tb_entries = []
        for worker_id, w in sorted(per_testbed[tb].items()):
            assert w.best_public is not None
            row = store.get(w.best_public[2])
            tb_entries.append(FinalEntry(worker_id=worker_id, testbed=tb, submission_id=w.best_public[2],
                                         snapshot_id=getattr(row, "snapshot_id", None), submissions=w.submissions,
                                         public=selected_scores(store, tl, w.best_public[2], with_se=True),
                                         flags=dict(w.flags)))
        entries.extend(tb_entries)
        best.append(max(tb_entries, key=lambda e: e.public.acc.combined or 0.0))
    report = FinalReport(team=team, created_at=datetime.now(UTC), last_seq=last_seq, workers=entries,
                         team_best=best)
    if record:
        store.append_finalization(team, report.model_dump(mode="json"), by, time.time())
    return report
