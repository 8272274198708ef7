"""Replay a submitted idea on test items under fresh ids: the trusted side's check that a score came from a
method, not from labels an agent wrote for the items it saw.

:func:`build_view` writes a testbed *view* into a throw-away AAR_HOME: every item under a fresh random id,
the test splits cut to the chosen items, the weak model's outputs and the strong model's feature rows carried
over, under a fresh testbed name; its ``strong_train`` is the published one, or the items of a private world
(:mod:`aar.labels.worlds`). The order is kept: a seeded method (bagging, say) draws the same samples again, so
an honest idea reproduces. :func:`replay_submission` re-runs the submission's idea folder (its snapshot, entry
point unchanged) in a fresh sandbox with no model API, no network and no hub
(:func:`aar.analysis.rerun.rerun_idea`):

* on the *public* items with the published ``strong_train`` (what it was submitted for), where its hard labels
  must agree with what it submitted on at least ``REPRODUCE_AT_LEAST`` of the items, else it is **not
  reproducible** and never a result;
* in each *private world*: trained on never-published items, tested on never-published items, scored here with
  its bootstrap SE and against the best shipped baseline run in the same worlds (paired SE).

No item of a private world was ever published (``aar.labels.store.write_testbed``), so no table an agent
built, keyed by id, position, text, weak output or feature row, covers a single one: not the items it is tested
on, nor those it trains on.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aar.analysis.rerun import Rerun
from aar.config import Settings
from aar.evalserver.labels import TestbedLabels
from aar.evalserver.models import FinalReport, Replay
from aar.evalserver.reports import public_gap
from aar.labels.store import load_full
from aar.labels.worlds import World, private_worlds, world_testbed
from aar.w2s.features import FeatureStore, compute_features, save_features, strong_spec
from aar.w2s.models.packaged import packaged_weight_dirs
from aar.w2s.testbeds.base import PUBLIC_SPLITS, TEST_SPLITS, Split, Testbed, load_testbed, write_public

REPRODUCE_AT_LEAST = 0.99


@dataclasses.dataclass
class View:
    """A written view: its settings (a throw-away AAR_HOME), name, and ``{view id: original id}``."""

    settings: Settings
    name: str
    original: dict[str, str]


def build_view(name: str, test_ids: set[str], settings: Settings, home: Path, *, world: World | None = None) -> View:
    """Write a fresh-id view of testbed ``name`` (public and private halves) with the test items in
    ``test_ids`` and the published ``strong_train``, or private ``world`` (its items; ``test_ids`` ignored)."""
    full = load_full(name, settings)
    src = world_testbed(full, world) if world is not None else full
    spec = strong_spec(src)
    view_name = f"{name}-{secrets.token_hex(4)}"
    original: dict[str, str] = {}
    splits: dict[str, Split] = {}
    for split in PUBLIC_SPLITS:
        items = src[split].items
        chosen = world is not None or split not in TEST_SPLITS
        part = src[split].select(k for k, it in enumerate(items) if chosen or it.id in test_ids)
        for k, it in enumerate(part.items):
            new_id = f"i{secrets.token_hex(8)}"
            original[new_id] = it.id
            part.items[k] = dataclasses.replace(it, id=new_id)
        splits[split] = part
    view = Testbed(view_name, src.format, splits, {**src.meta, "strong_model": spec.model_dump()})
    vs = Settings(home=home)
    write_public(view, vs)
    store = compute_features(view, spec, settings)
    if world is not None:
        rotate_blocks(store, np.random.default_rng(secrets.randbits(128)))
    save_features(store, load_testbed(view_name, vs), vs)
    return View(vs, view_name, original)


def rotate_blocks(store: FeatureStore, rng: np.random.Generator) -> None:
    """Turn each view's block of feature columns by its own random rotation, the same for every split.

    A private world's features then live in a space no published row was ever in: a head fitted in an
    agent's sandbox (on labels it wrote for published items) and shipped as weights no longer applies, while
    what a method learns inside the world is unchanged in distribution (an L2-regularised linear head, kNN
    and PCA are rotation-equivariant; zero-shot scores are kept as they are)."""
    for start, stop in store.blocks.values():
        q, r = np.linalg.qr(rng.standard_normal((stop - start, stop - start)))
        q *= np.sign(np.diag(r))  # Haar-distributed
        for split, x in store.x.items():
            store.x[split][:, start:stop] = (x[:, start:stop].astype(np.float64) @ q).astype(x.dtype)


def rerun_on_view(code: bytes, name: str, ids: set[str], settings: Settings, *, sandbox: str = "bwrap",
                  timeout_s: float = 1800.0, replace: dict[str, bytes] | None = None,
                  world: World | None = None) -> Rerun:
    """Run the idea folder ``code`` on a fresh-id view of testbed ``name`` whose test items are ``ids`` (with the
    published ``strong_train``) or private ``world``'s, and return its predictions under the original ids
    (trusted side only: a view may hold private items). The view lives under ``runs/replays`` and is removed
    afterwards; the real AAR_HOME is masked in the sandbox. Raises ``IdeaRunError`` when the archive is
    refused."""
    from aar.analysis.rerun import rerun_idea

    root = settings.runs_dir / "replays"
    root.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="view-", dir=root))
    try:
        view = build_view(name, ids, settings, home, world=world)
        hidden = [settings.home.resolve(), settings.cache_dir.resolve(), *packaged_weight_dirs()]
        run = rerun_idea(code, view.name, view.settings, sandbox=sandbox, timeout_s=timeout_s, replace=replace,
                         hidden=hidden)  # the real AAR_HOME (labels) around the view, and every encoder's weights
        return run.model_copy(update={"testbed": name,
                                      "predictions": {view.original[k]: p for k, p in run.predictions.items()}})
    finally:
        shutil.rmtree(home, ignore_errors=True)


def each_world(name: str, settings: Settings, *, public: bool = True) -> list[tuple[str, set[str], World | None]]:
    """Where each test item of testbed ``name`` is run: ``(where, test ids, world)`` for the public items with
    the published ``strong_train`` (world None; unless not ``public``) and for each private world."""
    parts: list[tuple[str, set[str], World | None]] = []
    if public:
        parts.append(("on the public items", {i for s in TEST_SPLITS for i in load_testbed(name, settings)[s].ids},
                      None))
    worlds = private_worlds(name, settings)
    return parts + [(f"in private world {j} of {len(worlds)}", w.test_ids, w) for j, w in enumerate(worlds, 1)]


def rerun_everywhere(code: bytes, name: str, settings: Settings, *, sandbox: str = "bwrap",
                     timeout_s: float = 1800.0, replace: dict[str, bytes] | None = None,
                     public: bool = True) -> Rerun:
    """Run the idea folder ``code`` on every test item of testbed ``name``, each in its own world: the public
    items with the published ``strong_train`` (unless not ``public``), the private items in the private worlds
    (:mod:`aar.labels.worlds`). One run per world; the first that fails ends it and says where."""
    merged: dict[str, float] = {}
    seconds = 0.0
    for where, ids, world in each_world(name, settings, public=public):
        run = rerun_on_view(code, name, ids, settings, sandbox=sandbox, timeout_s=timeout_s, replace=replace,
                            world=world)
        seconds += run.seconds
        if not run.ok:
            return run.model_copy(update={"reason": f"{where}: {run.reason}", "seconds": round(seconds, 2),
                                          "predictions": {}})
        merged.update(run.predictions)
    return Rerun(testbed=name, ok=True, seconds=round(seconds, 2), stderr_tail=run.stderr_tail, predictions=merged)


def _run_on(code: bytes, name: str, ids: set[str] | None, settings: Settings, sandbox: str,
            timeout_s: float) -> tuple[dict[str, float] | None, str | None, float]:
    """Predictions ``{original id: p}`` of the idea on the public view of ``ids`` (None: on every private item,
    each in its private world), or why it failed."""
    from aar.analysis.rerun import IdeaRunError

    try:
        run = (rerun_everywhere(code, name, settings, sandbox=sandbox, timeout_s=timeout_s, public=False)
               if ids is None else rerun_on_view(code, name, ids, settings, sandbox=sandbox, timeout_s=timeout_s))
    except IdeaRunError as exc:
        return None, str(exc), 0.0
    return (run.predictions, None, run.seconds) if run.ok else (None, run.reason, run.seconds)


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
    public = set(tl.submit_ids)
    pub, why, t1 = _run_on(code, tl.name, public, settings, sandbox, timeout_s)
    if pub is None:
        return not_reproducible(f"on the public items: {why}", seconds=t1)
    agreement = float(np.mean([(pub[i] > 0.5) == (submitted[i] > 0.5) for i in tl.submit_ids]))
    if agreement < REPRODUCE_AT_LEAST:
        return not_reproducible(f"its hard labels agree with its own submission on {agreement:.1%} of the public "
                                f"items (needs {REPRODUCE_AT_LEAST:.0%})", agreement, t1)
    priv, why, t2 = _run_on(code, tl.name, None, settings, sandbox, timeout_s)
    if priv is None:
        return not_reproducible(f"on the private items, {why}", agreement, t1 + t2)
    probs = np.array([priv.get(i, np.nan) for i in tl.ids], dtype=np.float64)  # NaN on the public items
    return Replay(submission_id=submission_id, snapshot_id=snapshot_id, reproducible=True,
                  public_agreement=round(agreement, 4), private=score(tl, probs, "private", with_se=True),
                  vs_best_baseline=compare_with_best_baseline(tl, probs, "private"), seconds=round(t1 + t2, 2))


def replay_finalists(settings: Settings, report: FinalReport, fetch_code: Callable[[str], bytes],
                     *, sandbox: str = "bwrap", timeout_s: float = 1800.0,
                     progress: Callable[[str], None] | None = None) -> FinalReport:
    """Replay each selected submission of a finalize report once (``fetch_code(snapshot id)`` gives its idea
    folder) and return the report with each entry's replay, private scores, gap and paired comparison."""
    from aar.db import make_engine
    from aar.evalserver.labels import load_labels
    from aar.evalserver.reports import stored_probs
    from aar.evalserver.store import Store

    store = Store(make_engine(settings.sqlite_url("evalserver")))
    labels: dict[str, TestbedLabels] = {}
    done: dict[str, Replay] = {}
    for e in [*report.workers, *report.team_best]:
        if e.submission_id not in done:
            if progress:
                progress(f"replaying {e.worker_id}'s {e.submission_id} on {e.testbed}")
            if e.testbed not in labels:
                labels[e.testbed] = load_labels(e.testbed, settings)
            tl = labels[e.testbed]
            try:
                submitted = dict(zip(tl.submit_ids, stored_probs(store, tl, e.submission_id).tolist(), strict=True))
                code = fetch_code(e.snapshot_id) if e.snapshot_id else None
            except LookupError as exc:  # replay where the eval server's store is
                done[e.submission_id] = Replay(submission_id=e.submission_id, snapshot_id=e.snapshot_id,
                                               reproducible=False, reason=f"not in this AAR_HOME's eval store: {exc}")
            except Exception as exc:  # noqa: BLE001 - any failure to fetch is a verdict, not a crash
                done[e.submission_id] = Replay(submission_id=e.submission_id, snapshot_id=e.snapshot_id,
                                               reproducible=False, reason=f"its code cannot be fetched: {exc}")
            else:
                done[e.submission_id] = replay_submission(tl, submitted, e.submission_id, e.snapshot_id, code,
                                                          settings, sandbox=sandbox, timeout_s=timeout_s)
        r = done[e.submission_id]
        e.replay, e.private, e.vs_best_baseline = r, r.private, r.vs_best_baseline
        e.gap = public_gap(e.public, r.private) if r.private else None
    return report
