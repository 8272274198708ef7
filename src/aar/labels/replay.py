"""Replay a submitted idea on test items under fresh ids: the trusted side's check that a score came from a
method, not from labels an agent wrote for the items it saw.

:func:`build_view` writes a testbed *view* into a throw-away AAR_HOME: every published item (``strong_train``
too) under a fresh random id, the test splits cut to the chosen items, the weak model's outputs and the
strong model's feature rows carried over, under a fresh testbed name. A table keyed by item id that an agent
built in its sandbox does not carry over. The order is kept: a seeded method (bagging, say) draws the same
samples again, so an honest idea reproduces; a table keyed by position reproduces on the public items but
means nothing on the private ones, whose score is then the method's own. :func:`replay_submission` re-runs the
submission's idea folder (its snapshot, entry point unchanged) on two views, in a fresh sandbox with no
model API, no network and no hub (:func:`aar.analysis.rerun.rerun_idea`):

* on the *public* items, where its hard labels must agree with what it submitted on at least
  ``REPRODUCE_AT_LEAST`` of the items, else it is **not reproducible** and never a result;
* on the *private* items, scored here with its bootstrap SE and against the best shipped baseline on the
  same items (paired SE).

What it does not do yet (issue 19): the private half is still published today, so code that keys a table
by item *text* would still carry over; the private half must stop being published for that.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from aar.config import Settings
from aar.evalserver.labels import TestbedLabels
from aar.evalserver.models import BaselineComparison, Scores
from aar.w2s.features import FeatureStore, export_features, load_features, save_features
from aar.w2s.testbeds.base import PUBLIC_SPLITS, TEST_SPLITS, Split, Testbed, load_testbed, write_public

REPRODUCE_AT_LEAST = 0.99


@dataclasses.dataclass
class View:
    """A written view: its settings (a throw-away AAR_HOME), name, and ``{view id: original id}``."""

    settings: Settings
    name: str
    original: dict[str, str]


def build_view(name: str, test_ids: set[str], settings: Settings, home: Path) -> View:
    """Write a fresh-id view of testbed ``name`` with the test items in ``test_ids`` (see the module docstring)."""
    export_features(name, settings=settings)
    src, store = load_testbed(name, settings), load_features(name, settings)
    view_name = f"{name}-{secrets.token_hex(4)}"
    original: dict[str, str] = {}
    splits: dict[str, Split] = {}
    rows: dict[str, np.ndarray] = {}
    for split in PUBLIC_SPLITS:
        items = src[split].items
        keep = np.array([k for k, it in enumerate(items) if split not in TEST_SPLITS or it.id in test_ids], dtype=int)
        fresh = []
        for k in keep:
            new_id = f"i{secrets.token_hex(8)}"
            original[new_id] = items[k].id
            fresh.append(dataclasses.replace(items[k], id=new_id))
        splits[split] = Split(fresh, weak=src[split].require_weak()[keep])
        rows[split] = keep
    view = Testbed(view_name, src.format, splits, {**src.meta, "strong_model": store.spec.model_dump()})
    vs = Settings(home=home)
    write_public(view, vs)
    save_features(FeatureStore(view_name, src.format, store.spec, {s: store.x[s][rows[s]] for s in PUBLIC_SPLITS},
                               {s: store.zeroshot[s][rows[s]] for s in PUBLIC_SPLITS}, store.blocks, store.head_c),
                  load_testbed(view_name, vs), vs)
    return View(vs, view_name, original)


class Replay(BaseModel):
    """A submission's replay: reproducible on the public items, then scored on the private ones."""

    submission_id: str
    snapshot_id: str | None
    reproducible: bool
    reason: str | None = None
    public_agreement: float | None = None
    private: Scores | None = None
    vs_best_baseline: BaselineComparison | None = None
    seconds: float = 0.0


def _run_on(code: bytes, name: str, ids: set[str], settings: Settings, root: Path, sandbox: str,
            timeout_s: float) -> tuple[dict[str, float] | None, str | None, float]:
    """Predictions ``{original id: p}`` of the idea on a view of ``ids``, or the reason it failed."""
    from aar.analysis.rerun import IdeaRunError, rerun_idea

    home = Path(tempfile.mkdtemp(prefix="view-", dir=root))
    try:
        view = build_view(name, ids, settings, home)
        try:
            run = rerun_idea(code, view.name, view.settings, sandbox=sandbox, timeout_s=timeout_s,
                             hidden=[settings.home.resolve()])  # the real AAR_HOME (labels) around the view
        except IdeaRunError as exc:
            return None, str(exc), 0.0
        if not run.ok:
            return None, run.reason, run.seconds
        return {view.original[k]: p for k, p in run.predictions.items()}, None, run.seconds
    finally:
        shutil.rmtree(home, ignore_errors=True)


def replay_submission(tl: TestbedLabels, submitted: dict[str, float], submission_id: str, snapshot_id: str | None,
                      code: bytes | None, settings: Settings, *, sandbox: str = "bwrap",
                      timeout_s: float = 1800.0) -> Replay:
    """Re-run the idea on the public items (must reproduce ``submitted``) and on the private items (scored)."""
    from aar.evalserver.scoring import compare_with_best_baseline, score

    def not_reproducible(why: str | None, agreement: float | None = None, seconds: float = 0.0) -> Replay:
        return Replay(submission_id=submission_id, snapshot_id=snapshot_id, reproducible=False, reason=why,
                      public_agreement=agreement, seconds=seconds)

    if code is None:
        return not_reproducible("no idea folder was submitted with it (submit with idea_dir)")
    root = settings.runs_dir / "replays"
    root.mkdir(parents=True, exist_ok=True)
    public = {tl.ids[i] for i in np.flatnonzero(tl.public)}
    pub, why, t1 = _run_on(code, tl.name, public, settings, root, sandbox, timeout_s)
    if pub is None:
        return not_reproducible(f"on the public items: {why}", seconds=t1)
    agreement = float(np.mean([(pub[i] > 0.5) == (submitted[i] > 0.5) for i in public]))
    if agreement < REPRODUCE_AT_LEAST:
        return not_reproducible(f"its hard labels agree with its own submission on {agreement:.1%} of the public "
                                f"items (needs {REPRODUCE_AT_LEAST:.0%})", agreement, t1)
    private = {tl.ids[i] for i in np.flatnonzero(~tl.public)}
    priv, why, t2 = _run_on(code, tl.name, private, settings, root, sandbox, timeout_s)
    if priv is None:
        return not_reproducible(f"on the private items: {why}", agreement, t1 + t2)
    probs = np.array([priv.get(i, 0.5) for i in tl.ids], dtype=np.float64)  # only private items are scored
    return Replay(submission_id=submission_id, snapshot_id=snapshot_id, reproducible=True,
                  public_agreement=round(agreement, 4), private=score(tl, probs, "private", with_se=True),
                  vs_best_baseline=compare_with_best_baseline(tl, probs, "private"), seconds=round(t1 + t2, 2))


def replay_finalists(settings: Settings, team: str, entries: list, fetch_code: Callable[[str], bytes],
                     *, sandbox: str = "bwrap", timeout_s: float = 1800.0,
                     progress: Callable[[str], None] | None = None) -> list[Replay]:
    """Replay each finalize entry's selected submission (``fetch_code(snapshot id)`` gives its folder)."""
    from aar.db import make_engine
    from aar.evalserver.labels import load_labels
    from aar.evalserver.reports import stored_probs
    from aar.evalserver.store import Store

    store = Store(make_engine(settings.sqlite_url("evalserver")))
    labels: dict[str, TestbedLabels] = {}
    out: list[Replay] = []
    for e in entries:
        if progress:
            progress(f"replaying {e.worker_id}'s {e.submission_id} on {e.testbed}")
        if e.testbed not in labels:
            labels[e.testbed] = load_labels(e.testbed, settings)
        tl = labels[e.testbed]
        row = store.get(e.submission_id)
        snap = getattr(row, "snapshot_id", None)
        submitted = dict(zip(tl.ids, stored_probs(store, tl, e.submission_id).tolist(), strict=True))
        try:
            code = fetch_code(snap) if snap else None
        except Exception as exc:  # noqa: BLE001 - any failure to fetch is a verdict, not a crash
            out.append(Replay(submission_id=e.submission_id, snapshot_id=snap, reproducible=False,
                              reason=f"its code cannot be fetched: {exc}"))
            continue
        out.append(replay_submission(tl, submitted, e.submission_id, snap, code, settings, sandbox=sandbox,
                                     timeout_s=timeout_s))
    return out
