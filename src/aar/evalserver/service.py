"""The eval server's core: validate, score, guard, detect, persist, answer (no HTTP in here).

All in-memory state (mechanism states, budgets, detector history, the hash chain's head) is a cache of
the audit log: it is loaded lazily from the log and changed only on the event loop, in submission
order, before the row is queued for a group commit. A submission is answered only after its commit.
If a commit fails, the caches are dropped and reloaded from the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aar.auth import Principal
from aar.config import Settings, ensure_private_dir
from aar.db import make_engine
from aar.evalserver.budget import Budgets
from aar.evalserver.config import EvalServerConfig, TeamConfig
from aar.evalserver.detectors import Entry, History, detect
from aar.evalserver.guard import EXACT_WARNING, Context, ScopeState, mechanism_for
from aar.evalserver.labels import PARTS, TestbedLabels, load_labels
from aar.evalserver.models import Flag, PartValues, Released, SubmissionList, SubmissionOut, TestbedInfo
from aar.evalserver.scoring import item_correctness, references, score
from aar.evalserver.store import StaleState, Store, Writer, row_hash
from aar.evalserver.validate import Invalid, Submission, parse_submission, predictions_vector
from aar.w2s.testbeds.base import TEST_SPLITS, TestbedError

log = logging.getLogger("aar.evalserver")
#: Bodies above this size are parsed and validated in a worker thread, off the event loop.
INLINE_PARSE_BYTES = 256 * 1024


class Forbidden(Exception):
    """Answered 403."""


class NotFound(Exception):
    """Answered 404."""


class Unavailable(Exception):
    """Answered 503: the submission was not recorded."""


def pred_hash(testbed: str, probs: np.ndarray) -> str:
    """sha256 over the testbed name and the float64 probabilities in canonical item order."""
    return hashlib.sha256(testbed.encode() + b"\0" + np.ascontiguousarray(probs, "<f8").tobytes()).hexdigest()


def release_key(settings: Settings) -> bytes:
    """The secret that keys the release noise (``AAR_HOME/evalserver/release.key``, created once)."""
    path = ensure_private_dir(settings.home / "evalserver") / "release.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        raise RuntimeError(f"{path} is damaged: remove it to draw a new release key") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def hard_correct(tl: TestbedLabels, probs: np.ndarray) -> np.ndarray:
    """Per-item hard-label correctness (``p > 0.5`` means label 1; exactly 0.5 is never right)."""
    return (np.where(probs > 0.5, 1, np.where(probs < 0.5, 0, -1)) == tl.labels).astype(np.float64)


def withhold_reason(flags: list[Flag], info: dict[str, Any], cfg: TeamConfig) -> str | None:
    """Why a submission may not move the release, or None (exact mode withholds nothing)."""
    if cfg.mechanism == "exact":
        return None
    changed = info.get("changed")
    if changed is not None and changed <= cfg.detectors.withhold_within:
        return (f"its hard labels differ from an earlier submission of the team on only {changed} item(s) "
                f"(at most {cfg.detectors.withhold_within})")
    kinds = sorted({f.kind for f in flags} & set(cfg.detectors.withhold))
    if kinds:
        return f"flagged as {', '.join(kinds)}"
    return None


def own_or_admin(principal: Principal, team: str, worker: str | None = None) -> None:
    """Raise ``Forbidden`` unless the principal is an admin or (of ``team`` and, if given, is ``worker``)."""
    if principal.is_admin:
        return
    if principal.team != team or (worker is not None and principal.worker_id != worker):
        raise Forbidden("a worker may read its own data only")


class EvalService:
    """Scores submissions for many teams; one instance per server process."""

    def __init__(self, settings: Settings, config: EvalServerConfig, store: Store | None = None) -> None:
        self.settings, self.config = settings, config
        self.store = store or Store(make_engine(settings.sqlite_url("evalserver")))
        self.gen = 0
        self.writer = Writer(self.store.engine, config.commit_batch, on_failure=self._on_commit_failure)
        self.budgets = Budgets(self.store.usage)
        self._noise_key = release_key(settings)
        self.rng = np.random.default_rng()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._labels: dict[str, TestbedLabels] = {}
        self._labels_lock = threading.Lock()
        self._warned: set[str] = set()
        self._team_cfg: dict[str, TeamConfig] = {}
        self._reset_caches()

    def _reset_caches(self) -> None:
        self._states: dict[tuple[str, ...], ScopeState] = {}
        self._history: dict[tuple[str, str], History] = {}
        self.budgets.forget()
        self._prev_hash = self.store.last_hash()

    def _on_commit_failure(self, failed_gen: int) -> None:  # writer thread
        log.error("a commit of the audit log failed; reloading state from the log")

        def invalidate() -> None:
            self.gen = max(self.gen, failed_gen) + 1
            self._reset_caches()

        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(invalidate)

    def close(self) -> None:
        self.writer.close()

    # ------------------------------------------------------------------ testbeds and teams
    def labels(self, name: str) -> TestbedLabels:
        """A testbed's labels (loaded once per process); ``Invalid`` 422 when unknown."""
        found = self._labels.get(name)
        if found is not None:
            return found
        with self._labels_lock:  # leaderboards and finalisation load labels from worker threads
            if name not in self._labels:
                try:
                    self._labels[name] = load_labels(name, self.settings)
                except TestbedError as exc:
                    raise Invalid(422, str(exc)) from None
            return self._labels[name]

    def testbeds(self, principal: Principal) -> list[TestbedInfo]:
        root = self.settings.labels_dir
        out = []
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for name in names:
            if all((root / name / f"{s}.jsonl").exists() for s in TEST_SPLITS):
                try:
                    tl = self.labels(name)
                except Invalid:
                    continue
                mechanism = self.team_config(principal.team).mechanism
                out.append(TestbedInfo(name=name, n_items=tl.n_public, mechanism=mechanism, baselines=bool(tl.refs)))
        return out

    def team_config(self, team: str) -> TeamConfig:
        if team not in self._team_cfg:
            stored = self.store.team_config(team)
            self._team_cfg[team] = TeamConfig.model_validate(stored) if stored else self.config.team_defaults
        return self._team_cfg[team]

    def set_team_config(self, team: str, cfg: TeamConfig, by: Principal) -> TeamConfig:
        """Append a team's new configuration to the log and use it from the next submission on."""
        self.store.append_team_config(team, cfg.model_dump(mode="json"), by.worker_id, time.time())
        self._team_cfg[team] = cfg
        for key in [k for k in self._states if k[1] == team]:  # reload: the loss rule may have changed
            del self._states[key]
        if cfg.mechanism == "exact":
            log.warning("team %s now uses exact release: %s", team, EXACT_WARNING)
        return cfg

    # ------------------------------------------------------------------ state caches
    def _state(self, key: tuple[str, ...], tl: TestbedLabels, hard: bool) -> ScopeState:
        if key in self._states:
            return self._states[key]
        kind, team, testbed, mech = key[0], key[1], key[2], key[3]
        worker = key[4] if kind == "worker" else None
        st = ScopeState.from_json(self.store.scope_state(team, testbed, mech, worker))
        if mech == "ladder" and st.best_id is not None:
            raw = self.store.predictions(st.best_id)
            probs = None if raw is None else np.frombuffer(raw, dtype="<f8")
            if probs is None or len(probs) != tl.n_public:
                st = ScopeState()  # the testbed changed since: start a fresh ladder
            else:
                c = hard_correct(tl, tl.expand(probs)) if hard else item_correctness(tl, tl.expand(probs))
                st.loss = 1.0 - c[tl.part("public", "combined")]
        self._states[key] = st
        return st

    def _history_for(self, team: str, tl: TestbedLabels, window: int) -> History:
        key = (team, tl.name)
        hist = self._history.get(key)
        if hist is None or hist.window != window:
            hist = History(tl.n_public, window)
            for row in self.store.recent(team, tl.name, window):
                probs = np.frombuffer(row.predictions, dtype="<f8")
                if len(probs) == tl.n_public:
                    info = json.loads(row.detect)
                    hist.add(Entry(row.id, row.worker_id, bool(info.get("random_edit"))), probs)
            self._history[key] = hist
        return hist

    # ------------------------------------------------------------------ submit
    async def submit(self, principal: Principal, body: bytes, content_type: str | None) -> SubmissionOut:
        """Validate, score, release and durably record one submission; raises on refusal."""
        if len(body) > INLINE_PARSE_BYTES:  # keep the event loop free while a large body is parsed
            # json's C parser holds the GIL for a whole object, so a thread alone does not free the loop:
            # bound the number of entries first (a byte count, microseconds per megabyte)
            if body.count(b",") > self.config.max_items + 8:
                raise Invalid(422, f"more than {self.config.max_items} predictions in one body")
            sub, tl, probs = await asyncio.to_thread(self._parse, body, content_type)
        else:
            sub, tl, probs = self._parse(body, content_type)
        cfg = self.team_config(principal.team)
        now = time.time()
        budget = self.budgets.check(principal.team, principal.worker_id, cfg, now)
        out, row = self._process(principal, sub.testbed, probs, tl, cfg, now,
                                 {"seed": sub.seed, "note": sub.note, "snapshot_id": sub.snapshot_id})
        out.budget = budget
        fut = self.writer.put(row, self.gen)
        try:
            await asyncio.wrap_future(fut)
        except StaleState as exc:
            raise Unavailable(str(exc)) from None
        except Exception as exc:
            log.exception("could not persist submission %s", row["id"])
            raise Unavailable("the audit log could not be written; the submission was not recorded") from exc
        return out

    def _parse(self, body: bytes, content_type: str | None) -> tuple[Submission, TestbedLabels, np.ndarray]:
        sub = parse_submission(body, content_type)
        tl = self.labels(sub.testbed)
        return sub, tl, predictions_vector(sub, tl)

    def _process(self, principal: Principal, testbed: str, probs: np.ndarray, tl: TestbedLabels,
                 cfg: TeamConfig, now: float, extra: dict[str, Any]) -> tuple[SubmissionOut, dict[str, Any]]:
        team, worker = principal.team, principal.worker_id
        sub_id = "sub_" + secrets.token_hex(12)
        full = tl.expand(probs)
        correct = item_correctness(tl, full)
        true_public = score(tl, full, "public", correct=correct, with_se=True)  # audit + report SEs (~0.1 s)
        hist = self._history_for(team, tl, cfg.detectors.window)
        flags, info = detect(hist, probs, worker, cfg.detectors,
                             None if tl.weak_hard is None else tl.weak_hard[tl.submit_idx])
        mech = mechanism_for(cfg)
        hard = mech.name == "ladder" and cfg.ladder.hard_labels
        rel_correct = hard_correct(tl, full) if hard else correct
        acc = PartValues(**{p: float(rel_correct[tl.part("public", p)].mean()) for p in PARTS})
        loss = 1.0 - rel_correct[tl.part("public", "combined")]
        key: tuple[str, ...] = (("team", team, testbed, mech.name) if cfg.release_scope == "team"
                                else ("worker", team, testbed, mech.name, worker))
        ctx = Context(withhold=withhold_reason(flags, info, cfg), floor=self._weak_floor(tl),
                      noise_u=self._noise_u(team, testbed, probs))
        released, new_st = mech.release(self._state(key, tl, hard), tl, acc, loss, sub_id, self.rng, ctx)
        if not released.improved:
            released.from_submission = None  # the best may be a teammate's: a worker sees its own only
        team_rel = released.model_copy(update={"from_submission": None})
        info["withheld"] = ctx.withhold
        warning = None
        if mech.name == "exact":
            warning = EXACT_WARNING
            if team not in self._warned:  # once per team and process; every response also carries it
                self._warned.add(team)
                log.warning("team %s: %s", team, EXACT_WARNING)
        row: dict[str, Any] = {
            "id": sub_id, "created_at": now, "team": team, "worker_id": worker, "testbed": testbed,
            "mechanism": mech.name, "pred_hash": pred_hash(testbed, probs), "n_items": tl.n_public, **extra,
            "public_acc": float(true_public.acc.combined or 0.0),
            "true_public": true_public.model_dump_json(), "released": released.model_dump_json(),
            "team_released": team_rel.model_dump_json(),
            "flags": json.dumps([f.model_dump(mode="json") for f in flags]), "detect": json.dumps(info),
            "state": json.dumps({key[0]: new_st.to_json()}),
            "prev_hash": self._prev_hash,
        }
        row["row_hash"] = row_hash(row)
        row["predictions"] = np.ascontiguousarray(probs, "<f8").tobytes()
        self._states[key] = new_st
        hist.add(Entry(sub_id, worker, bool(info.get("random_edit"))), probs)
        self.budgets.record(team, worker, now)
        self._prev_hash = row["row_hash"]
        out = SubmissionOut(id=sub_id, created_at=datetime.fromtimestamp(now, UTC), team=team,
                            worker_id=worker, testbed=testbed, mechanism=mech.name,
                            pred_hash=row["pred_hash"], **extra, released=released, team_best=team_rel,
                            baselines=self._public_refs(tl),
                            flags=flags, warning=warning)
        return out, row

    @staticmethod
    def _weak_floor(tl: TestbedLabels) -> np.ndarray | None:
        """The weak baseline's public per-item loss, averaged over its seeds (sums to n (1 - W))."""
        if tl.weak_correct is None:
            return None
        floor: np.ndarray = 1.0 - tl.weak_correct[tl.part("public", "combined")]
        return floor

    def _noise_u(self, team: str, testbed: str, probs: np.ndarray) -> float:
        """A uniform draw in (0, 1) keyed by the server secret, the team, testbed and hard labels."""
        bits = np.packbits(probs > 0.5).tobytes() + np.packbits(probs < 0.5).tobytes()
        digest = hmac.new(self._noise_key, f"{team}\0{testbed}\0".encode() + bits, hashlib.sha256).digest()
        return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64

    @staticmethod
    def _public_refs(tl: TestbedLabels) -> Any:
        if "public_refs" not in tl.cache:
            tl.cache["public_refs"] = references(tl, "public")
        return tl.cache["public_refs"]

    # ------------------------------------------------------------------ reading back
    def submission_out(self, row: Any) -> SubmissionOut:
        return SubmissionOut(
            id=row.id, seq=row.seq, created_at=datetime.fromtimestamp(row.created_at, UTC), team=row.team,
            worker_id=row.worker_id, testbed=row.testbed, mechanism=row.mechanism, pred_hash=row.pred_hash,
            seed=row.seed, note=row.note, snapshot_id=row.snapshot_id,
            released=Released.model_validate_json(row.released),
            team_best=Released.model_validate_json(row.team_released),
            flags=[Flag.model_validate(f) for f in json.loads(row.flags)],
            warning=EXACT_WARNING if row.mechanism == "exact" else None)

    def get_submission(self, principal: Principal, sub_id: str) -> SubmissionOut:
        row = self.store.get(sub_id)
        if row is None:
            raise NotFound(f"no submission {sub_id!r}")
        own_or_admin(principal, row.team, row.worker_id)
        return self.submission_out(row)

    def list_submissions(self, principal: Principal, worker: str | None, testbed: str | None, after: int,
                         limit: int) -> SubmissionList:
        worker = worker or (None if principal.is_admin else principal.worker_id)
        team = None if principal.is_admin else principal.team
        if worker is not None:
            own_or_admin(principal, principal.team, worker)
        rows = self.store.list(team=team, worker=worker, testbed=testbed, after=after, limit=limit)
        nxt = rows[-1].seq if len(rows) == limit else None
        return SubmissionList(submissions=[self.submission_out(r) for r in rows], next_after=nxt)
