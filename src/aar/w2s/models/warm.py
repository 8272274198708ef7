"""The cold path as one job: plan every text the encoder models will embed, then encode what the cache lacks.

``warm_features`` asks each encoder model which (encoder, pools, texts) its features need for some
items (``EncoderModel.text_needs``), merges them per encoder, drops what the feature cache already
has and encodes the rest, one forward pass per text and encoder, under a single progress bar. The bar
moves by estimated compute (about ``chars / 4 + 2`` tokens per text times the encoder's layers x
width^2), so one MPNet text counts about 8 MiniLM texts and the time left it shows holds across
encoders. Each text is embedded only under the pools it lacks, and results are stored in batches of
``CHUNK`` texts, so an interrupted cold path keeps what it finished. Afterwards every feature of
those items comes from the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from aar.w2s.models.cache import ArrayCache
from aar.w2s.models.encoder import EncoderModel, EncoderSpec, cached_texts, embed_pools
from aar.w2s.models.packaged import resolve_model_path
from aar.w2s.progress import progress_bar
from aar.w2s.spec import ModelSpec
from aar.w2s.testbeds.base import Format, Item


@lru_cache(maxsize=8)
def _weight(name: str, layers: int | None) -> float:
    """Relative compute per token of an encoder: layers x width^2 (millions)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_model_path(name))
    return (layers or config.num_hidden_layers) * config.hidden_size**2 / 1e6


def text_cost(spec: EncoderSpec, texts: Sequence[str]) -> float:
    """Estimated compute of embedding ``texts`` with ``spec`` (tokens ~ characters / 4 + 2)."""
    return _weight(spec.name, spec.layers) * sum(len(t) / 4 + 2 for t in texts)


class CostBar:
    """A progress bar shared by every pass of a cold path, advanced by ``text_cost``."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def cost(self, spec: EncoderSpec, texts: Sequence[str]) -> float:
        return text_cost(spec, texts)

    def advance(self, n: float) -> None:
        self.bar.advance(n)


CHUNK = 8192  # texts per stored batch: an interrupted cold path keeps what it finished


@dataclass
class _Job:
    spec: EncoderSpec
    pools: dict[str, set[str]]  # pool -> texts the cache lacks under it

    @cached_property
    def texts(self) -> list[str]:
        """Every text this job embeds, once (read only after ``plan`` has settled ``pools``)."""
        return sorted(set().union(*self.pools.values()))

    def passes(self, size: int = CHUNK) -> list[tuple[tuple[str, ...], list[str]]]:
        """(pools, texts) per forward pass: texts grouped by the pools they lack, in chunks of ``size``."""
        by_pools: dict[tuple[str, ...], list[str]] = {}
        for text in self.texts:
            by_pools.setdefault(tuple(p for p in sorted(self.pools) if text in self.pools[p]), []).append(text)
        return [(pools, texts[i : i + size]) for pools, texts in sorted(by_pools.items())
                for i in range(0, len(texts), size)]

    def label(self) -> str:
        return self.spec.name + (f"/{self.spec.layers} layer{'s' * (self.spec.layers > 1)}" if self.spec.layers else "")


def plan(
    jobs: Sequence[tuple[ModelSpec, Sequence[Item]]], fmt: Format, cache: ArrayCache
) -> list[_Job]:
    """Per encoder: the texts each pool still needs for ``jobs`` (a model spec and the items it will see)."""
    from aar.w2s.models import build_model

    merged: dict[str, _Job] = {}
    for model_spec, items in jobs:
        model = build_model(model_spec, fmt, cache.root)
        if not isinstance(model, EncoderModel):
            continue  # other backends have no shared feature cache to warm
        for spec, pools, needed in model.text_needs(items):
            base = replace(spec, pool="mean")
            job = merged.setdefault(repr(base), _Job(base, {}))
            for pool in pools:
                job.pools.setdefault(pool, set()).update(needed)
    for job in merged.values():
        for pool, missing in job.pools.items():
            missing.difference_update(cached_texts(replace(job.spec, pool=pool), cache))
        job.pools = {pool: missing for pool, missing in job.pools.items() if missing}
    return [job for job in merged.values() if job.pools]


def warm_features(jobs: Sequence[tuple[ModelSpec, Sequence[Item]]], fmt: Format, cache_dir: Path) -> int:
    """Embed, under one progress bar, every text the encoder models of ``jobs`` need and the cache lacks.

    Returns how many texts were encoded (summed over encoders).
    """
    cache = ArrayCache(cache_dir)
    todo = plan(jobs, fmt, cache)
    if not todo:
        return 0
    total = sum(text_cost(job.spec, job.texts) for job in todo)
    n = sum(len(job.texts) for job in todo)
    encoders = ", ".join(job.label() for job in todo)
    with progress_bar(f"embedding {n:,} texts ({encoders})", total, counted=False) as bar:
        shared = CostBar(bar)
        for job in todo:
            for pools, chunk in job.passes():
                embed_pools(job.spec, chunk, pools, cache, shared)
    return n
