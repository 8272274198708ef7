"""Helpers for eval-server tests: a synthetic testbed in a tmp AAR_HOME and a live server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from aar.auth import TokenStore
from aar.config import Settings, ensure_private_dir
from aar.db import make_engine
from aar.evalserver.app import create_app
from aar.evalserver.config import EvalServerConfig
from aar.labels.division import DEFAULT_SEED, load_or_divide
from aar.labels.references import BaselinePredictions, save_baselines
from aar.labels.store import labels_dir, write_testbed
from aar.w2s.results import SE, BaselineReport, ModelAcc, SplitAcc
from aar.w2s.testbeds.base import Item, Split, Testbed, load_testbed


@dataclass
class SyntheticTestbed:
    """What a test knows that a worker must not: labels, the unpublished private half and the baselines.

    ``test_ids`` and ``labels`` cover the published test items (what a submission holds); ``all_labels`` and
    ``private_ids`` add the private half, which only the label side and replays ever see."""

    name: str
    settings: Settings
    labels: dict[str, int]
    test_ids: list[str]
    strong_train_ids: list[str]
    weak: list[dict[str, float]]
    ceiling: list[dict[str, float]]
    all_labels: dict[str, int]
    private_ids: list[str]

    def public_ids(self) -> set[str]:
        return set(self.test_ids)


def noisy_predictions(labels: dict[str, int], acc: float, rng: np.random.Generator) -> dict[str, float]:
    """Probabilities whose hard labels are right on about ``acc`` of the items."""
    out = {}
    for i, y in labels.items():
        right = rng.random() < acc
        conf = 0.5 + 0.5 * rng.random() * 0.98 + 0.005
        p1 = conf if (y == 1) == right else 1 - conf
        out[i] = float(p1)
    return out


def make_testbed(settings: Settings, name: str = "tiny", n_test: int = 200, n_train: int = 20, seeds: int = 3,
                 weak_acc: float = 0.68, ceiling_acc: float = 0.9, seed: int = 0,
                 public_fraction: float | None = 0.5) -> SyntheticTestbed:
    """Write a binary testbed (public items, label store) and stored baselines under ``settings.home``.

    ``public_fraction``: the public share of the test items (the eval-server tests were calibrated on
    halves); None makes the division that ``aar testbed prepare`` makes."""
    rng = np.random.default_rng(seed)
    splits: dict[str, Split] = {}
    sizes = {"weak_train": n_train, "strong_train": n_train, "test_id": n_test, "test_ood": n_test}
    for split, n in sizes.items():
        items = [Item(f"{name}-{split}-{k:04d}", f"question {k} of {split}", f"candidate {k}")
                 for k in range(n)]
        labels = np.array([k % 2 for k in range(n)])
        rng.shuffle(labels)
        difficulty = ["easy" if k < n // 2 else "hard" for k in range(n)]
        splits[split] = Split(items, labels, difficulty)
    if public_fraction is not None:  # stored first, so writing the testbed keeps it
        rows = [{"id": it.id, "label": int(y), "difficulty": d} for s in ("test_id", "test_ood")
                for it, y, d in zip(splits[s].items, splits[s].require_labels(), splits[s].difficulty or [],
                                    strict=True)]
        ensure_private_dir(settings.labels_dir)
        ensure_private_dir(labels_dir(name, settings))
        load_or_divide(name, rows, ["test_id"] * n_test + ["test_ood"] * n_test, public_fraction, DEFAULT_SEED,
                       settings)
    write_testbed(Testbed(name, "binary", splits), settings)
    labels = {it.id: int(y) for s in ("test_id", "test_ood")
              for it, y in zip(splits[s].items, splits[s].require_labels(), strict=True)}
    weak = [noisy_predictions(labels, weak_acc, rng) for _ in range(seeds)]
    ceiling = [noisy_predictions(labels, ceiling_acc, rng) for _ in range(seeds)]
    zero = SplitAcc(id=0.0, ood=0.0)
    report = BaselineReport(testbed=name, seeds=seeds,
                            weak=ModelAcc(acc=SplitAcc(id=weak_acc, ood=weak_acc), se=SE(acc=zero)),
                            ceiling=ModelAcc(acc=SplitAcc(id=ceiling_acc, ood=ceiling_acc), se=SE(acc=zero)))
    private_world = {"weak": weak, "ceiling": ceiling}  # the private items' predictions, as if from their worlds
    save_baselines(report, BaselinePredictions(testbed=name, weak=weak, ceiling=ceiling, private_world=private_world),
                   settings)
    strong_ids = [it.id for it in splits["strong_train"].items]
    published = {i for s in ("test_id", "test_ood") for i in load_testbed(name, settings)[s].ids}
    public = {i: y for i, y in labels.items() if i in published}
    return SyntheticTestbed(name, settings, public, list(public), strong_ids, weak, ceiling, labels,
                            [i for i in labels if i not in published])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadServer:
    """A real uvicorn server in a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("eval server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class LiveEval:
    """A running eval server with its AAR_HOME, token store and an admin client."""

    url: str
    settings: Settings
    tokens: TokenStore
    testbed: SyntheticTestbed
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, worker: str | None = None, team: str = "t", admin: bool = False) -> httpx.Client:
        headers = {}
        if worker is not None or admin:
            token = self.tokens.create(worker or "root", team, "admin" if admin else "worker")
            headers["Authorization"] = f"Bearer {token}"
        c = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(c)
        return c

    def set_team(self, team: str, **config: Any) -> dict[str, Any]:
        r = self.client(admin=True).put(f"/v1/teams/{team}/config", json=config)
        assert r.status_code == 200, r.text
        return dict(r.json())


def start_live(tmp: Path, config: EvalServerConfig | None = None, database_url: str | None = None,
               **testbed: Any) -> tuple[ThreadServer, LiveEval]:
    settings = Settings(home=tmp / "home", database_url=database_url)
    tb = make_testbed(settings, **testbed)
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    server = ThreadServer(create_app(settings, config or EvalServerConfig(max_body_bytes=512 * 1024)))
    server.__enter__()
    ev = LiveEval(server.url, settings, tokens, tb)
    assert ev.client(admin=True).get("/v1/testbeds").status_code == 200  # loads labels: divides the test set
    return server, ev


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveEval]:
    """One server for the session (tests isolate themselves by team name); 100 ID + 100 OOD test items."""
    server, ev = start_live(tmp_path_factory.mktemp("eval"))
    yield ev
    for c in ev.clients:
        c.close()
    server.__exit__()


@pytest.fixture
def make_live(tmp_path: Path) -> Iterator[Callable[..., LiveEval]]:
    """Start a dedicated server (own AAR_HOME) with a given config / testbed size."""
    started: list[tuple[ThreadServer, LiveEval]] = []

    def start(config: EvalServerConfig | None = None, **testbed: Any) -> LiveEval:
        pair = start_live(tmp_path / f"s{len(started)}", config, **testbed)
        started.append(pair)
        return pair[1]

    yield start
    for server, ev in started:
        for c in ev.clients:
            c.close()
        server.__exit__()
