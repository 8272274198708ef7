"""Tiny randomly initialised Qwen2 / Qwen3 causal LMs built from a config, for offline tests and smoke
checks (with the packaged MiniLM's tokenizer: no download needed)."""

from __future__ import annotations

from pathlib import Path


def tokenizer_path() -> str:
    """A tokenizer that is always available offline (the packaged MiniLM's WordPiece tokenizer)."""
    from aar.w2s.models.packaged import minilm_path

    return minilm_path()


def build_tiny_causal_lm(
    path: Path, arch: str = "qwen2", hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0
) -> str:
    """Save a tiny ``arch`` ("qwen2" | "qwen3") model to ``path`` and return the path."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    vocab = len(AutoTokenizer.from_pretrained(tokenizer_path()))
    cls, cfg = {"qwen2": (Qwen2ForCausalLM, Qwen2Config), "qwen3": (Qwen3ForCausalLM, Qwen3Config)}[arch]
    config = cfg(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=512,
    )
    cls(config).save_pretrained(path)
    return str(path)
