"""The encoder fine-tuning backend: partial fine-tuning learns, predictions are content-cached."""

from __future__ import annotations

import numpy as np

from aar.config import Settings
from aar.labels.store import load_labelled
from aar.w2s.models import ModelSpec, build_model
from aar.w2s.testbeds.base import Item


def test_partial_finetune_learns_and_caches_predictions(small_home: Settings, tmp_path) -> None:
    tb = load_labelled("wordsense", small_home)
    items = tb["weak_train"].items[:64]
    labels = tb["weak_train"].labels[:64].astype(float)
    spec = ModelSpec(
        backend="encoder_finetune",
        options={"layers": 2, "trainable_layers": 1, "epochs": 3, "lr": 1e-3, "batch_size": 16},
    )
    model = build_model(spec, "pairwise", tmp_path)
    model.fit(items, labels)
    probs = model.predict_proba(items)
    assert np.mean(model.losses[-4:]) < np.mean(model.losses[:4])  # type: ignore[attr-defined]
    assert ((probs > 0.5) == labels).mean() > 0.6
    swapped = [Item(it.id, it.prompt, it.answer_b or "", it.answer_a) for it in items]
    assert np.allclose(model.predict_proba(swapped), 1 - probs, atol=1e-5)
    again = build_model(spec, "pairwise", tmp_path).fit(items, labels)
    assert np.allclose(again.predict_proba(items), probs)
    assert again._net is None  # type: ignore[attr-defined]  # served from the cache, not retrained
