"""The public feature store: the strong model's frozen item features and zero-shot scores per published split.

Exported once per (testbed, strong model) on the host, into the testbed's public folder
(``testbeds/<name>/features/<key>/``), so a sandbox that sees only that folder can train and predict
in seconds without the encoders, the shared embedding cache or anything outside the published splits.
Everything here is computed from public items alone: item features (for pairwise items the
antisymmetric difference ``f(B) - f(A)``), the column block of each encoder view, and the strong
model's swap-consistent, rank-balanced zero-shot scores.

Layout: ``meta.json``, ``<split>.npy`` (float32 rows), ``<split>.zeroshot.npy``, then ``COMPLETE``,
written last into a temporary folder renamed into place (a reader never sees half a store).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aar.config import Settings, get_settings
from aar.w2s.models.cache import MARKER, content_key, move_into_place
from aar.w2s.spec import ModelSpec
from aar.w2s.testbeds.base import PUBLIC_SPLITS, Testbed, TestbedError, load_testbed, public_dir

FEATURES_VERSION = 1


@dataclass
class FeatureStore:
    """Loaded features of one testbed: ``x[split]`` rows, ``zeroshot[split]``, and each view's columns."""

    testbed: str
    format: str
    spec: ModelSpec
    x: dict[str, np.ndarray]
    zeroshot: dict[str, np.ndarray]
    blocks: dict[str, tuple[int, int]]
    head_c: float


def _key(tb: Testbed, spec: ModelSpec) -> str:
    ids = {s: tb[s].ids for s in PUBLIC_SPLITS}
    return content_key(FEATURES_VERSION, spec.model_dump(), ids)[:16]


def strong_spec(tb: Testbed) -> ModelSpec:
    """The strong model of ``tb``: the one its ``testbed.json`` records (``strong_model``, e.g. a replay
    view under a fresh name), else the registry default for its name."""
    from aar.w2s.testbeds import default_models

    recorded = tb.meta.get("strong_model")
    return ModelSpec.model_validate(recorded) if recorded else default_models(tb.name)[1]


def store_dir(tb: Testbed, spec: ModelSpec, settings: Settings) -> Path:
    return public_dir(tb.name, settings) / "features" / _key(tb, spec)


def export_features(testbed: str, strong: ModelSpec | None = None, settings: Settings | None = None) -> Path:
    """Compute (or find) the public feature store of ``testbed``'s strong model; returns its folder.

    Raises ``TestbedError`` when the strong model is not a frozen-feature encoder (fine-tuned and
    causal-LM models have no fixed features to export).
    """
    settings = settings or get_settings()
    tb = load_testbed(testbed, settings)
    spec = strong or strong_spec(tb)
    dest = store_dir(tb, spec, settings)
    if (dest / MARKER).exists():
        return dest
    return save_features(compute_features(tb, spec, settings), tb, settings)


def compute_features(tb: Testbed, spec: ModelSpec, settings: Settings) -> FeatureStore:
    """The feature rows and zero-shot scores of every published split of ``tb`` (embeddings come from the
    per-text cache where it has them)."""
    from aar.w2s.methods.elicitation import consistent_zero_shot
    from aar.w2s.models import build_model
    from aar.w2s.models.encoder import EncoderModel

    model = build_model(spec, tb.format, settings.cache_dir)
    if not isinstance(model, EncoderModel):
        raise TestbedError(f"the feature store needs a frozen-feature encoder strong model, not {spec.backend!r}")
    blocks: dict[str, tuple[int, int]] = {}
    x: dict[str, np.ndarray] = {}
    zs: dict[str, np.ndarray] = {}
    for split in PUBLIC_SPLITS:
        items = tb[split].items
        cols, start = [], 0
        for k, view in enumerate(model.views):
            one = EncoderModel(tb.format, views=[view], cache_dir=settings.cache_dir)
            part = one.item_features(items).astype(np.float32)
            blocks[f"{k}:{view.spec.name}"] = (start, start + part.shape[1])
            start += part.shape[1]
            cols.append(part)
        x[split], zs[split] = np.concatenate(cols, axis=1), consistent_zero_shot(model, items)
    return FeatureStore(tb.name, tb.format, spec, x, zs, blocks, model.head_config.C)


def save_features(store: FeatureStore, tb: Testbed, settings: Settings) -> Path:
    """Write ``store`` as the feature store of ``tb`` (whose splits its rows follow); returns its folder.

    Written into a temporary folder and moved into place, so a reader never sees half a store."""
    dest = store_dir(tb, store.spec, settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".tmp-"))
    try:
        for split in PUBLIC_SPLITS:
            np.save(tmp / f"{split}.npy", store.x[split], allow_pickle=False)
            np.save(tmp / f"{split}.zeroshot.npy", store.zeroshot[split], allow_pickle=False)
        meta = {"version": FEATURES_VERSION, "testbed": tb.name, "format": tb.format, "spec": store.spec.model_dump(),
                "blocks": store.blocks, "head_c": store.head_c, "rows": {s: len(tb[s]) for s in PUBLIC_SPLITS}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        (tmp / MARKER).write_text("")
        os.chmod(tmp, 0o755)
        move_into_place(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def load_features(testbed: str, settings: Settings | None = None, strong: ModelSpec | None = None) -> FeatureStore:
    """The exported feature store of ``testbed`` (its default strong model unless ``strong`` is given)."""
    settings = settings or get_settings()
    tb_dir = public_dir(testbed, settings) / "features"
    tb = load_testbed(testbed, settings)
    spec = strong or strong_spec(tb)
    folder = store_dir(tb, spec, settings)
    if not (folder / MARKER).exists():
        raise TestbedError(f"no feature store for {testbed!r} under {tb_dir} (`aar worker run` exports it)")
    meta = json.loads((folder / "meta.json").read_text())
    x = {s: np.load(folder / f"{s}.npy", allow_pickle=False) for s in PUBLIC_SPLITS}
    zs = {s: np.load(folder / f"{s}.zeroshot.npy", allow_pickle=False) for s in PUBLIC_SPLITS}
    blocks = {k: (int(a), int(b)) for k, (a, b) in meta["blocks"].items()}
    return FeatureStore(testbed, meta["format"], spec, x, zs, blocks, float(meta["head_c"]))
