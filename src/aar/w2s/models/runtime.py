"""Where an encoder's forward pass runs: PyTorch float32 on the CPU (``torch``, the default), PyTorch
float16 on a CUDA device (``cuda-fp16``, the default where one is present; batches of 512), or ONNX
Runtime with int8 weights (``onnx-int8``, opt-in).

``onnx-int8`` exports the encoder once to ONNX (offline, from the same packaged weights), quantises
its weight matrices dynamically to int8 and runs it with ONNX Runtime: on the project's 2-core AVX2
CPUs 1.5-1.6x the texts per second of PyTorch float32 (MPNet 48 -> 77, MiniLM 345 -> 510). That is
about the ceiling here: float32 already runs at roughly three quarters of the cores' FMA peak, and
without VNNI the int8 kernels gain about 2x at best (ORT's transformer fusions added nothing).

It stays opt-in because its features are not a function of the text alone: dynamic quantisation
scales each activation tensor by its maximum over the whole batch, so a text's embedding depends on
the texts it is batched with (cosine 0.993 between a text embedded alone and in a batch, measured on
MiniLM). A content-addressed cache then keeps whichever value came first, and a testbed built from
one salt on two machines can differ (its adversarial filter flips borderline items), which broke
the reproducibility the salt promises. Batches of one text are deterministic but only 1.15x float32.
Float32 (and float16 on a GPU) masks padding exactly, so batch mates change nothing beyond 1e-7.

The export is lazy, on first use, into ``AAR_HOME/cache/onnx/<key>/``
where ``key`` hashes the model files and every export setting; a folder is moved into place with its
``COMPLETE`` marker written last, so a crash or a racing process never leaves a half-written model.

The recipe, and why (measured on all-mpnet-base-v2, cosine to float32 over real wordsense texts):

- ONNX Runtime's default dynamic recipe (per-tensor weights, embeddings and every MatMul) gives a
  mean cosine of 0.75 for MPNet: the "broken" output seen before. Two causes: (1) on AVX2 CPUs
  (no VNNI) the u8×s8 kernel sums pairs of products in saturating int16, so full-range int8
  weights overflow — per-channel weights alone then fall to cosine 0.04; ``reduce_range`` (7-bit
  weights) removes the overflow. (2) The inputs of the FFN down-projection (after GELU) carry
  outlier channels in the middle layers (6–10 of 12), which per-tensor dynamic activation scales
  cannot represent; those few projections stay float32.
- Hence: per-channel, reduce-range, int8 weights on every MatMul with a constant weight (the
  attention score products and the embedding tables stay float32), except the FFN down-projection
  of layers ``n/2 .. n-2``. MPNet: mean cosine ≈ 0.985; MiniLM ≈ 0.99.

What this does not protect against: int8 features differ from float32 ones by that much, so
they get their own cache namespace (``runtime_id``) and never mix with float32 features.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from aar.w2s.models.cache import MARKER, content_key, move_into_place

RUNTIMES = ("torch", "onnx-int8", "cuda-fp16")
DEFAULT_RUNTIME = "torch"  # on CPUs; onnx-int8 is faster but batch-dependent (see the module docstring)
GPU_RUNTIME = "cuda-fp16"  # the default where PyTorch sees a CUDA device
GPU_BATCH = 512
RUNTIME_ENV = "AAR_ENCODER_RUNTIME"
THREADS_ENV = "AAR_ENCODER_THREADS"
OPSET = 17
# Everything that shapes the exported, quantised model; part of its content key and of the cache id
# of the features it produces. Bump ``recipe`` whenever the export or the quantisation changes.
INT8_RECIPE = {"recipe": 1, "opset": OPSET, "weights": "int8-per-channel-reduce-range",
               "float_ffn_out": "layers n/2..n-2", "matmul_const_b_only": True}


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def default_runtime() -> str:
    """``AAR_ENCODER_RUNTIME`` if set (``onnx-int8`` opts in to int8), else ``cuda-fp16`` where PyTorch
    sees a CUDA device, else ``torch`` (float32)."""
    value = os.environ.get(RUNTIME_ENV, "") or (GPU_RUNTIME if cuda_available() else DEFAULT_RUNTIME)
    if value not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV} must be one of {RUNTIMES}, not {value!r}")
    return value


def runtime_id(runtime: str) -> dict:
    """What a runtime adds to a feature cache id: nothing for torch (float32 keys stay as they were)."""
    if runtime == "torch":
        return {}
    if runtime == GPU_RUNTIME:
        import torch

        return {"runtime": runtime, "torch": ".".join(torch.__version__.split(".")[:2])}
    import onnxruntime

    ort_version = ".".join(onnxruntime.__version__.split(".")[:2])
    return {"runtime": runtime, "quant": INT8_RECIPE, "onnxruntime": ort_version}


def threads() -> int:
    """Intra-op threads: ``AAR_ENCODER_THREADS``, else every core this process may use (at most 8)."""
    if os.environ.get(THREADS_ENV):
        return max(1, int(os.environ[THREADS_ENV]))
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@lru_cache(maxsize=8)
def _files_digest(model_path: Path) -> str:
    """SHA-256 over the names and bytes of the model folder's config and weight files (once per process)."""
    digest = hashlib.sha256()
    for path in sorted(model_path.iterdir()):
        if path.is_file() and (path.suffix in (".safetensors", ".bin") or path.name == "config.json"):
            digest.update(path.name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
    return digest.hexdigest()


def _float_ffn_out(n_layers: int) -> set[int]:
    """Layers whose FFN down-projection stays float32 (activation outliers): ``n/2 .. n-2``."""
    return set(range(n_layers // 2, n_layers - 1))


def _export(model: Any, dest: Path) -> None:
    """Trace ``model`` (input_ids, attention_mask -> last hidden state) to ONNX at ``dest``."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    wrapper = Hidden(model).eval()  # export restores the wrapper's mode afterwards: it must be eval, not train
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (ids, torch.ones_like(ids)), str(dest), input_names=["input_ids", "attention_mask"],
            output_names=["hidden"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
        )
    model.eval()


def _quantise(src: Path, dest: Path, n_layers: int) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # the quantiser's advice to pre-process applies to CNNs, not here
    keep = _float_ffn_out(n_layers)
    nodes = [
        node.name for node in onnx.load(str(src), load_external_data=False).graph.node
        if node.op_type == "MatMul" and not any(f"layer.{i}/output/dense/" in node.name for i in keep)
    ]
    try:
        quantize_dynamic(str(src), str(dest), nodes_to_quantize=nodes, per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    finally:
        logging.disable(logging.NOTSET)


def onnx_model(model_path: str, layers: int | None, model: Any, cache_root: Path, label: str = "") -> Path:
    """The int8 ONNX file for ``model`` (loaded from ``model_path``, truncated to ``layers``), exported on first use."""
    import torch
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__}  # they shape the traced graph
    key = content_key(_files_digest(Path(model_path)), layers, INT8_RECIPE, versions, "onnx-int8")[:24]
    done = cache_root / "onnx" / key
    if (done / MARKER).exists():
        return done / "model.onnx"
    done.parent.mkdir(parents=True, exist_ok=True)
    print(f"exporting {label or model_path} (layers={layers}) to int8 ONNX once, into {done} ...", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(dir=done.parent, prefix=f".{key[:8]}-"))
    try:
        _export(model, tmp / "float.onnx")
        n_layers = len(getattr(getattr(model, "encoder", None), "layer", []))  # BERT / MPNet layout; else 0
        _quantise(tmp / "float.onnx", tmp / "model.onnx", n_layers)
        (tmp / "float.onnx").unlink()
        (tmp / MARKER).write_text("")
        move_into_place(tmp, done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done / "model.onnx"


@lru_cache(maxsize=4)
def onnx_session(path: str, n_threads: int) -> Any:
    """An ONNX Runtime CPU session; no spinning threads, since the cores are usually shared."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=2)
def gpu_model(model: Any) -> Any:
    """A float16 copy of ``model`` on the CUDA device (the CPU model stays as it is, for export and torch)."""
    import copy

    import torch

    if not cuda_available():
        raise ValueError(f"runtime {GPU_RUNTIME!r} needs a CUDA device; PyTorch sees none "
                         f"(set {RUNTIME_ENV}=onnx-int8 or torch)")
    return copy.deepcopy(model).to("cuda", dtype=torch.float16).eval()


def gpu_hidden(model: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Last hidden states from the float16 CUDA copy, back on the CPU as (batch, tokens, width) float32."""
    import torch

    with torch.inference_mode():
        ids = torch.from_numpy(input_ids.astype(np.int64)).to("cuda")
        mask = torch.from_numpy(attention_mask.astype(np.int64)).to("cuda")
        return model(input_ids=ids, attention_mask=mask).last_hidden_state.float().cpu().numpy()


def onnx_hidden(session: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Last hidden states, (batch, tokens, width) float32."""
    feed = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
    return np.asarray(session.run(None, feed)[0], dtype=np.float32)
