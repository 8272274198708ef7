"""Model backends: ``tfidf`` (weak, sklearn), ``encoder`` (frozen MiniLM features + head),
``encoder_finetune`` (MiniLM cross-encoder, full or partial fine-tuning),
``causal_lm`` (transformers + LoRA). ``build_model`` turns a ``ModelSpec`` into a fresh model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aar.w2s.models.base import FeatureModel, W2SModel
from aar.w2s.models.head import HeadConfig
from aar.w2s.spec import Backend, ModelSpec
from aar.w2s.testbeds.base import Format

if TYPE_CHECKING:
    from aar.w2s.models.encoder import EncoderView

_HEAD_KEYS = set(HeadConfig.__dataclass_fields__)


def build_model(spec: ModelSpec, fmt: Format, cache_dir: Path | None = None) -> W2SModel:
    """A new, untrained model for ``spec``. Unknown options raise ``ValueError`` naming them."""
    opts = dict(spec.options)
    head = HeadConfig(**{k: opts.pop(k) for k in list(opts) if k in _HEAD_KEYS})
    if spec.backend == "encoder":
        from aar.w2s.models.encoder import EncoderModel

        raw_views = opts.pop("views", None)
        if raw_views is None:
            views = [_encoder_view(spec, opts)]  # the single-view form: every option describes one view
        else:
            _no_leftovers(spec, opts)
            views = [_encoder_view(spec, dict(v)) for v in raw_views]
        return EncoderModel(fmt, head=head, cache_dir=cache_dir, views=views)
    if spec.backend == "tfidf":
        from aar.w2s.models.tfidf import TfidfModel

        model: W2SModel = TfidfModel(fmt, **opts)
        return model
    if spec.backend == "encoder_finetune":
        from aar.w2s.models.finetune import EncoderFinetuneModel

        return EncoderFinetuneModel(fmt, cache_dir=cache_dir, **opts)
    if spec.backend == "causal_lm":
        from aar.w2s.models.causal_lm import CausalLMModel

        return CausalLMModel(fmt, **opts)
    raise ValueError(f"unknown backend {spec.backend!r}")


def _encoder_view(spec: ModelSpec, opts: dict) -> EncoderView:
    """One ``EncoderView`` from options (``name``, ``layers``, ``max_length``, ``batch_size``, ``features``)."""
    from aar.w2s.models.encoder import EncoderSpec, EncoderView

    enc = EncoderSpec(**{k: opts.pop(k) for k in list(opts) if k in EncoderSpec.__dataclass_fields__})
    features = tuple(opts.pop("features", ("joint", "product", "cosine")))
    _no_leftovers(spec, opts)
    return EncoderView(enc, features)


def _no_leftovers(spec: ModelSpec, opts: dict) -> None:
    if opts:
        raise ValueError(f"unknown options for backend {spec.backend!r}: {sorted(opts)}")


__all__ = ["Backend", "FeatureModel", "ModelSpec", "W2SModel", "build_model"]
