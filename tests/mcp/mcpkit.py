"""MCP-test helpers (a uniquely named module): a tiny synthetic testbed and live eval server + hub."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.labels.references import BaselinePredictions, save_baselines
from aar.labels.store import write_testbed
from aar.servicekit import serve_in_thread
from aar.w2s.results import SE, BaselineReport, ModelAcc, SplitAcc
from aar.w2s.testbeds import base as tb


def make_testbed(settings: Settings, name: str = "tiny", n: int = 60) -> dict[str, int]:
    """A synthetic binary testbed with stored baselines; returns the labels of its published test items (test
    side only; what a submission covers)."""
    rng = np.random.default_rng(0)
    splits = {}
    for split in ("weak_train", "strong_train", "test_id", "test_ood"):
        items = [tb.Item(f"{name}-{split}-{k:03d}", f"q {k}", f"c {k}") for k in range(n)]
        labels = np.array([k % 2 for k in range(n)])
        rng.shuffle(labels)
        splits[split] = tb.Split(items, labels, ["easy"] * n)
    write_testbed(tb.Testbed(name, "binary", splits), settings)
    labels = {it.id: int(y) for s in ("test_id", "test_ood")
              for it, y in zip(splits[s].items, splits[s].labels, strict=True)}

    def preds(acc: float) -> dict[str, float]:
        return {i: (0.9 if (y == 1) == (rng.random() < acc) else 0.1) for i, y in labels.items()}

    zero = SplitAcc(id=0.0, ood=0.0)
    report = BaselineReport(testbed=name, seeds=2,
                            weak=ModelAcc(acc=SplitAcc(id=0.65, ood=0.65), se=SE(acc=zero)),
                            ceiling=ModelAcc(acc=SplitAcc(id=0.9, ood=0.9), se=SE(acc=zero)))
    weak, ceiling = [preds(0.65), preds(0.65)], [preds(0.9), preds(0.9)]
    save_baselines(report, BaselinePredictions(testbed=name, weak=weak, ceiling=ceiling,
                                               private_world={"weak": weak, "ceiling": ceiling}), settings)
    published = tb.load_testbed(name, settings)
    return {i: labels[i] for s in ("test_id", "test_ood") for i in published[s].ids}


@pytest.fixture
def services(tmp_path: Path):
    from aar.evalserver.app import create_app as eval_app
    from aar.hub.app import HubConfig
    from aar.hub.app import create_app as hub_app

    settings = Settings(home=tmp_path / "home")
    labels = make_testbed(settings)
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    with serve_in_thread(eval_app(settings)) as eval_url, \
            serve_in_thread(hub_app(settings, HubConfig(eval_url=eval_url))) as hub_url:
        yield {"eval": eval_url, "hub": hub_url, "tokens": tokens, "labels": labels, "home": settings.home}
