"""The causal_lm backend on a tiny Qwen2 / Qwen3 built from a config (offline tokenizer from MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aar.w2s.models import ModelSpec, build_model
from aar.w2s.models.tiny import build_tiny_causal_lm, tokenizer_path
from aar.w2s.testbeds.base import Item


def _tiny_model(tmp_path: Path, arch: str) -> str:
    return build_tiny_causal_lm(tmp_path / arch, arch)


def _items(n: int) -> tuple[list[Item], np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    items = [
        Item(f"i{i}", f"question {i}", "red apple" if y else "green pear", "green pear" if y else "red apple")
        for i, y in enumerate(labels)
    ]
    return items, labels


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_lora_training_learns_a_simple_rule(tmp_path: Path, arch: str) -> None:
    path = _tiny_model(tmp_path, arch)
    items, labels = _items(48)
    model = build_model(
        ModelSpec(
            backend="causal_lm",
            options={
                "model": path,
                "tokenizer": tokenizer_path(),
                "lr": 5e-3,
                "epochs": 12,
                "batch_size": 8,
                "max_length": 64,
                "lora_r": 8,
            },
        ),
        "pairwise",
    )
    before = model.zero_shot(items)
    model.fit(items, labels.astype(float))
    after = model.predict_proba(items)
    assert before.shape == after.shape == (48,)
    assert np.mean(model.losses[-6:]) < np.mean(model.losses[:6])
    assert ((after > 0.5) == labels).mean() > 0.8
    # zero_shot keeps reading the frozen base model (adapter disabled).
    assert np.allclose(model.zero_shot(items), before, atol=1e-5)


def test_binary_format_and_missing_model_error(tmp_path: Path) -> None:
    model = build_model(ModelSpec(backend="causal_lm", options={"model": str(tmp_path / "nope")}), "binary")
    with pytest.raises(ValueError, match="cannot load causal LM"):
        model.predict_proba([Item("x", "q", "c")])


def test_critic_verdict_parsing_and_reward() -> None:
    from aar.w2s.models.critic_grpo import parse_verdict, verdict_reward

    assert parse_verdict("A is vague. Verdict: B", "pairwise") == 1
    assert parse_verdict("verdict: true", "binary") == 1
    assert parse_verdict("no idea", "pairwise") is None
    assert verdict_reward(["Verdict: A", "Verdict: B", "hmm"], [0, 0, 1], ["pairwise"] * 3) == [1.0, -1.0, -0.5]


def test_critic_grpo_runs_two_steps_on_the_tiny_model(tmp_path: Path) -> None:
    from aar.config import Settings
    from aar.labels.prepare import publish_weak
    from aar.w2s.methods import METHODS
    from aar.w2s.methods.base import ExperimentContext
    from aar.w2s.testbeds.base import Split, Testbed

    path = _tiny_model(tmp_path, "qwen2")
    items, labels = _items(16)
    opts = {
        "model": path,
        "tokenizer": tokenizer_path(),
        "batch_size": 8,
        "max_length": 64,
        "lora_r": 4,
        "epochs": 1,
    }
    strong = build_model(ModelSpec(backend="causal_lm", options=opts), "pairwise")
    strong.train_critic(items[:8], labels[:8], max_steps=2)  # type: ignore[attr-defined]
    assert len(strong.losses) == 2
    probs = strong.predict_proba(items)
    assert probs.shape == (16,) and np.isfinite(probs).all()
    # Through the method registry, with weak labels from a weak causal LM.
    tb = Testbed(
        "tiny",
        "pairwise",
        {
            s: Split(items[i * 4 : i * 4 + 4], labels[i * 4 : i * 4 + 4])
            for i, s in enumerate(["weak_train", "strong_train", "test_id", "test_ood"])
        },
    )
    spec = ModelSpec(backend="causal_lm", options={**opts, "epochs": 1})
    publish_weak(tb, spec, Settings(home=tmp_path / "home"))  # the trusted side trains the weak model
    ctx = ExperimentContext(tb.public_view(), lambda: build_model(spec, "pairwise"))
    out = METHODS["critic"](ctx)
    assert set(out.test_probs) == {"test_id", "test_ood"}


@pytest.mark.gpu
def test_vllm_inference_matches_transformers(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    pytest.importorskip("vllm", reason="needs the gpu extra (vllm)")
    path = _tiny_model(tmp_path, "qwen2")
    items, _ = _items(16)
    opts = {"model": path, "tokenizer": tokenizer_path(), "max_length": 64}
    hf = build_model(ModelSpec(backend="causal_lm", options=opts), "pairwise").predict_proba(items)
    vl = build_model(ModelSpec(backend="causal_lm", options={**opts, "use_vllm": True}), "pairwise").predict_proba(
        items
    )
    assert np.allclose(hf, vl, atol=0.05)
