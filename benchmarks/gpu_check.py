"""Train the tiny causal_lm for a few bf16 LoRA steps on CUDA and print tokens/s; then embed texts with
the packaged encoders in float16 on CUDA (the ``cuda-fp16`` runtime) and print texts/s and the cosine to
the CPU float32 reference.

Without a CUDA device it says so and exits 0; ``--cpu`` runs the same path on the CPU (float32) as a
smoke test. Run: .venv/bin/python benchmarks/gpu_check.py [--cpu]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    import torch

    on_cpu = "--cpu" in sys.argv
    if not torch.cuda.is_available() and not on_cpu:
        print("gpu_check: no CUDA device available; nothing to check (exit 0)")
        return 0
    from transformers import AutoTokenizer

    from aar.w2s.models.causal_lm import CausalLMModel
    from aar.w2s.models.tiny import build_tiny_causal_lm, tokenizer_path
    from aar.w2s.testbeds.base import Item

    tok_path = tokenizer_path()
    tok = AutoTokenizer.from_pretrained(tok_path)
    path = build_tiny_causal_lm(Path(tempfile.mkdtemp()) / "tiny", "qwen2", hidden=256, layers=4, heads=8)
    items = [Item(f"i{i}", f"question number {i} " * 8, "answer one " * 10, "answer two " * 10) for i in range(256)]
    labels = [float(i % 2) for i in range(256)]
    model = CausalLMModel(
        "pairwise",
        model=path,
        device="cpu" if on_cpu else None,
        tokenizer=tok_path,
        epochs=1,
        batch_size=32,
        max_length=256,
    )
    model._load()
    n_tokens = sum(len(tok(model.prompt_text(it))["input_ids"]) for it in items)
    sync = torch.cuda.synchronize if not on_cpu else (lambda: None)
    sync()
    t0 = time.perf_counter()
    model.fit(items, labels)
    sync()
    dt = time.perf_counter() - t0
    device = "cpu" if on_cpu else torch.cuda.get_device_name(0)
    print(
        f"gpu_check: {device}, dtype={next(model._model.parameters()).dtype}, "
        f"{len(model.losses)} LoRA steps in {dt:.2f} s, {n_tokens / dt:,.0f} tokens/s, last loss {model.losses[-1]:.3f}"
    )
    if not on_cpu:
        encoder_check()
    return 0


def encoder_check(n: int = 8192) -> None:
    """texts/s of MiniLM and MPNet under ``cuda-fp16`` on word-sense-like texts, and cosine to float32 on CPU."""
    import numpy as np

    from aar.w2s.models import encoder
    from aar.w2s.models.encoder import EncoderSpec

    texts = [f"the *bank* number {i} raised its interest rates again after the meeting of week {i % 52}"
             for i in range(n)]
    for name in ("minilm", "mpnet"):
        try:
            encoder._encode_batches(EncoderSpec(name=name, runtime="cuda-fp16"), texts[:512], ("mean",))  # warm-up
        except ValueError as err:  # e.g. the mpnet extra is not installed
            print(f"gpu_check: {name}: {err}")
            continue
        t0 = time.perf_counter()
        gpu = encoder._encode_batches(EncoderSpec(name=name, runtime="cuda-fp16"), texts, ("mean",))["mean"]
        dt = time.perf_counter() - t0
        ref = encoder._encode_batches(EncoderSpec(name=name, runtime="torch"), texts[:64], ("mean",))["mean"]
        cos = (gpu[:64] * ref).sum(1)
        print(f"gpu_check: {name} cuda-fp16 {n / dt:,.0f} texts/s; cosine to CPU float32 mean {np.mean(cos):.4f} "
              f"min {np.min(cos):.4f}")


if __name__ == "__main__":
    sys.exit(main())
