"""The helper API an agent uses in its workspace: train, predict and check W2S ideas in seconds.

Everything runs on the public feature store (``aar.w2s.features``): the strong model's frozen item
features, its zero-shot scores and the weak model's published outputs. Nothing here can read a label,
so ``checks`` are label-free proxies (agreement with the weak model where it is confident, with the
strong model's zero-shot view, and with weak labels on ``strong_train``); the real score comes only
from the eval server, and the final one from a private test nobody sees::

    wb = Workbench("wordsense")
    head = wb.fit(wb.weak("strong_train") > 0.5)          # vanilla W2S
    preds = wb.predict_tests(head)
    print(wb.checks(preds))
    wb.save_predictions(preds, "runs/vanilla/predictions.jsonl")   # then submit_predictions
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aar.config import Settings
from aar.w2s.features import FeatureStore, load_features
from aar.w2s.models.base import fit_item_head, predict_item_head
from aar.w2s.models.head import HeadConfig, Loss, ProbabilityHead
from aar.w2s.testbeds.base import TEST_SPLITS, load_testbed

CONFIDENT_SHARE = 0.3  # the weak model's most confident share of test items used by the agreement check


class Workbench:
    """One testbed's public data and features, with fast head training (see the module docstring)."""

    def __init__(self, testbed: str, settings: Settings | None = None) -> None:
        self.testbed = load_testbed(testbed, settings)
        self.store: FeatureStore = load_features(testbed, settings)
        self.format = self.store.format
        self.default_c = self.store.head_c

    @property
    def views(self) -> list[str]:
        """Names of the feature blocks (one per encoder view), usable as ``cols``."""
        return list(self.store.blocks)

    def ids(self, split: str) -> list[str]:
        return self.testbed[split].ids

    def features(self, split: str, cols: list[str] | None = None) -> np.ndarray:
        """Feature rows of ``split``, optionally only the named view blocks."""
        x = self.store.x[split]
        if not cols:
            return x
        unknown = set(cols) - set(self.store.blocks)
        if unknown:
            raise ValueError(f"unknown views {sorted(unknown)}; known: {self.views}")
        return np.concatenate([x[:, slice(*self.store.blocks[c])] for c in cols], axis=1)

    def weak(self, split: str) -> np.ndarray:
        """The weak model's published P(label 1) on ``split`` (soft labels on strong_train)."""
        return self.testbed[split].require_weak()

    def zeroshot(self, split: str) -> np.ndarray:
        """The strong model's zero-shot score on ``split`` (swap-consistent; exactly half above 0.5)."""
        return self.store.zeroshot[split]

    def fit(self, targets: np.ndarray, *, rows: np.ndarray | None = None, weights: np.ndarray | None = None,
            C: float | None = None, loss: Loss = "bce", cols: list[str] | None = None, hidden: int = 0,
            seed: int = 0) -> Head:
        """Train a head on ``strong_train`` with soft ``targets`` in [0, 1] (one per strong_train item).

        ``rows`` restricts training to those items (indices or a boolean mask); ``weights`` are per item.
        """
        x = self.features("strong_train", cols)
        targets = np.asarray(targets, dtype=np.float64)
        if len(x) != len(targets):
            raise ValueError(f"strong_train has {len(x)} items but {len(targets)} targets were given")
        if rows is not None:
            x, targets = x[rows], targets[rows]
            weights = None if weights is None else np.asarray(weights, dtype=np.float64)[rows]
        config = HeadConfig(C=self.default_c if C is None else C, hidden=hidden)
        head = fit_item_head(x.astype(np.float64), targets, self.format, config,  # type: ignore[arg-type]
                             weights=weights, loss=loss, seed=seed)
        return Head(head, cols)

    def predict(self, head: Head, split: str) -> np.ndarray:
        return predict_item_head(head.head, self.features(split, head.cols).astype(np.float64),
                                 self.format)  # type: ignore[arg-type]

    def predict_tests(self, head: Head) -> dict[str, np.ndarray]:
        return {s: self.predict(head, s) for s in TEST_SPLITS}

    def checks(self, test_probs: dict[str, np.ndarray], strong_train: np.ndarray | None = None) -> dict[str, float]:
        """Label-free proxies of a prediction (higher is not always better: imitating W maximises some)."""
        out: dict[str, float] = {}
        for s in TEST_SPLITS:
            p, w, z = test_probs[s], self.weak(s), self.zeroshot(s)
            margin = np.abs(w - 0.5)
            top = margin >= np.quantile(margin, 1.0 - CONFIDENT_SHARE)
            out[f"{s}.agree_weak_confident"] = float(((p > 0.5) == (w > 0.5))[top].mean())
            out[f"{s}.agree_weak"] = float(((p > 0.5) == (w > 0.5)).mean())
            out[f"{s}.agree_zeroshot"] = float(((p > 0.5) == (z > 0.5)).mean())
            out[f"{s}.positive_rate"] = float((p > 0.5).mean())
        if strong_train is not None:
            out["strong_train.agree_weak"] = float(((strong_train > 0.5) == (self.weak("strong_train") > 0.5)).mean())
        return out

    def save_predictions(self, test_probs: dict[str, np.ndarray], path: str | Path) -> Path:
        """Write ``{"id", "prob"}`` lines for every test item: the file ``submit_predictions`` takes."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            for s in TEST_SPLITS:
                for item_id, p in zip(self.ids(s), test_probs[s], strict=True):
                    f.write(json.dumps({"id": item_id, "prob": round(float(p), 6)}) + "\n")
        return path


class Head:
    """A trained head and the view blocks it reads."""

    def __init__(self, head: ProbabilityHead, cols: list[str] | None) -> None:
        self.head = head
        self.cols = cols
