"""Encoder runtimes: int8 ONNX agrees with PyTorch float32, has its own cache keys; float32 stays reachable."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aar.w2s.models import encoder
from aar.w2s.models.cache import MARKER, ArrayCache
from aar.w2s.models.encoder import ENCODE_STATS, EncoderSpec, embed_pools, embed_texts
from aar.w2s.models.runtime import RUNTIME_ENV, default_runtime

TEXTS = [
    "they are the progressive *wing* of the Republican Party",
    "the wing of a fowl",
    "a group within a political party that holds distinct views",
    "She *ran* the company for ten years",
    "move fast by using one's feet",
    "direct or control; projects, businesses, etc.",
    "The *bank* raised its interest rates again",
    "sloping land beside a body of water",
    "a financial institution that accepts deposits",
    "He sat on the *bank* of the river and fished",
    "a *light* meal before the show",
    "not heavy; of comparatively little weight",
    "electromagnetic radiation that can produce a visual sensation",
    "Add some extra plates to the dinner table",
    "(British informal) pretty and neat",
    "*Choose* a good husband for your daughter",
    "pick out, select, or choose from a number of alternatives",
    "an unusually long sentence that keeps going, with several clauses, commas and a *twist* at the very end",
    "twist",
    "a sharp bend in a road",
    "The committee will *table* the motion until next week",
    "a piece of furniture with a flat top and legs",
    "hold back to a later time",
    "",
] * 2


@pytest.fixture()
def cache_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AAR_HOME's cache folder, where the exported model goes (shared across sessions with AAR_TEST_CACHE)."""
    shared = os.environ.get("AAR_TEST_CACHE")
    home = Path(shared) / "runtime-home" if shared else tmp_path_factory.getbasetemp() / "runtime-home"
    monkeypatch.setenv("AAR_HOME", str(home))
    return home / "cache"


def _torch_reference(texts: list[str]) -> np.ndarray:
    """Mean-pooled, normalised MiniLM embeddings straight from transformers (float32), one text at a time."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from aar.w2s.models.packaged import resolve_model_path

    path = resolve_model_path("minilm")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            batch = tokenizer([text], truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**batch).last_hidden_state[0]
            rows.append(torch.nn.functional.normalize(hidden.mean(0), dim=-1).numpy())
    return np.stack(rows)


def test_int8_features_depend_on_batch_mates_and_float32_do_not(cache_root: Path) -> None:
    """Why int8 is opt-in: dynamic quantisation scales by the batch's maximum, so a cached int8 row
    depends on what it was batched with; float32 masks padding exactly."""
    text, mates = TEXTS[0], [t * 3 for t in TEXTS[1:12]]
    for runtime, tolerance in (("torch", 1e-6), ("onnx-int8", None)):
        spec = EncoderSpec(name="minilm", runtime=runtime)
        alone = encoder._encode_batches(spec, [text], ("mean",), cache_root)["mean"][0]
        batched = encoder._encode_batches(spec, [text, *mates], ("mean",), cache_root)["mean"][0]
        if tolerance:
            np.testing.assert_allclose(alone, batched, atol=tolerance)
        else:
            assert 0.95 < float(alone @ batched) < 0.9999


def test_float32_path_is_reachable_and_matches_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNTIME_ENV, "torch")
    spec = EncoderSpec(name="minilm")
    assert spec.runtime == default_runtime() == "torch"
    texts = TEXTS[:8]
    got = embed_texts(spec, texts)
    np.testing.assert_allclose(got, _torch_reference(texts), atol=1e-5)


def test_unknown_runtime_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="runtime"):
        EncoderSpec(runtime="tensorrt")
    monkeypatch.setenv(RUNTIME_ENV, "fp8")
    with pytest.raises(ValueError, match=RUNTIME_ENV):
        EncoderSpec()


def test_cache_keys_differ_between_runtimes_and_float32_keys_are_unchanged() -> None:
    fp32, int8 = EncoderSpec(name="minilm", runtime="torch"), EncoderSpec(name="minilm", runtime="onnx-int8")
    # the float32 id is exactly what it was before runtimes existed, so existing caches stay valid
    assert fp32.cache_id() == {"name": "minilm", "layers": None, "max_length": 128, "pool": "mean-norm"}
    assert int8.cache_id() != fp32.cache_id()
    assert int8.cache_id()["runtime"] == "onnx-int8" and "quant" in int8.cache_id()
    assert replace(int8, pool="target").cache_id() != int8.cache_id()


@pytest.mark.parametrize("pool", ["mean", "target"])
def test_int8_agrees_with_float32(pool: str, cache_root: Path) -> None:
    texts = sorted(set(TEXTS))
    fp32 = encoder._encode_batches(EncoderSpec(name="minilm", runtime="torch"), texts, (pool,))[pool]
    int8 = encoder._encode_batches(EncoderSpec(name="minilm", runtime="onnx-int8"), texts, (pool,), cache_root)[pool]
    cos = (fp32 * int8).sum(1)
    assert cos.mean() > 0.98 and cos.min() > 0.93, (cos.mean(), cos.min())


def test_export_leaves_the_torch_model_in_eval_mode(tmp_path: Path) -> None:
    from aar.w2s.models.packaged import resolve_model_path
    from aar.w2s.models.runtime import onnx_model

    _, model = encoder._load(resolve_model_path("minilm"), 1)
    onnx_model(resolve_model_path("minilm"), 1, model, tmp_path)
    assert not any(m.training for m in model.modules())  # else dropout would corrupt later float32 features


def test_export_is_content_addressed_and_reused(cache_root: Path) -> None:
    encoder._encode_batches(EncoderSpec(name="minilm", runtime="onnx-int8"), TEXTS[:2], ("mean",), cache_root)
    exported = [p.parent for p in (cache_root / "onnx").glob(f"*/{MARKER}")]
    assert exported and all((p / "model.onnx").exists() for p in exported)
    before = sorted(p.name for p in (cache_root / "onnx").iterdir())
    encoder._encode_batches(EncoderSpec(name="minilm", runtime="onnx-int8"), TEXTS[:2], ("mean",), cache_root)
    assert sorted(p.name for p in (cache_root / "onnx").iterdir()) == before  # no second export


@pytest.mark.parametrize("runtime", ["torch", "onnx-int8"])
def test_one_forward_pass_serves_both_pools_and_never_mixes_runtimes(
    runtime: str, tmp_path: Path, cache_root: Path
) -> None:
    """(``cache_root`` points AAR_HOME at the exported model.)"""
    cache = ArrayCache(tmp_path / "features")
    spec = EncoderSpec(name="minilm", runtime=runtime)
    texts = TEXTS[:12]
    before = replace(ENCODE_STATS)
    both = embed_pools(spec, texts, ("mean", "target"), cache)
    assert ENCODE_STATS.since(before).texts == len(set(texts))  # once, not once per pool
    before = replace(ENCODE_STATS)
    np.testing.assert_allclose(embed_texts(spec, texts, cache), both["mean"])
    np.testing.assert_allclose(embed_texts(replace(spec, pool="target"), texts, cache), both["target"])
    assert ENCODE_STATS.since(before).texts == 0
    other = EncoderSpec(name="minilm", runtime="onnx-int8" if runtime == "torch" else "torch")
    assert embed_texts(other, texts[:3], cache).shape == (3, 384)
    assert ENCODE_STATS.since(before).texts == 3  # the other runtime's features are not the cached ones
    namespaces = {p.name for p in (tmp_path / "features" / "embeddings").iterdir()}
    assert len(namespaces) == 3


def test_cuda_is_the_default_only_where_a_device_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    from aar.w2s.models import runtime

    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    monkeypatch.setattr(runtime, "cuda_available", lambda: True)
    assert default_runtime() == "cuda-fp16"
    monkeypatch.setenv(RUNTIME_ENV, "onnx-int8")  # an explicit choice wins
    assert default_runtime() == "onnx-int8"
    monkeypatch.delenv(RUNTIME_ENV)
    monkeypatch.setattr(runtime, "cuda_available", lambda: False)
    assert default_runtime() == "torch"
    spec = EncoderSpec(name="minilm", runtime="cuda-fp16")
    assert spec.cache_id()["runtime"] == "cuda-fp16"  # float16 GPU features never mix with CPU ones
    with pytest.raises(ValueError, match="needs a CUDA device"):
        encoder._encode_batches(spec, TEXTS[:2], ("mean",))
