"""Fine-tuned encoder backend: a MiniLM cross-encoder scoring (prompt, answer) pairs, trained end to end.

``trainable_layers=None`` fine-tunes every layer; ``k`` trains only the top k layers (plus the
scoring head), the rest stays frozen. ``layers`` truncates the encoder (a weaker model of the same
family). Pairwise items use the score difference ``s(prompt, B) - s(prompt, A)`` as the logit, so
predictions are antisymmetric under A/B swap.

Training is deferred and content-addressed: ``fit`` records what to train on, and predictions are
cached under a hash of (config, training items and targets, seed, predicted items). Re-running a
baseline with the same inputs reads the cache instead of retraining.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aar.w2s.models.base import W2SModel
from aar.w2s.models.cache import ArrayCache, content_key
from aar.w2s.models.encoder import DEFAULT_ENCODER, EncoderModel, EncoderSpec
from aar.w2s.models.head import Loss, logconf_alpha, logconf_target
from aar.w2s.models.packaged import resolve_model_path
from aar.w2s.progress import progress_bar
from aar.w2s.testbeds.base import Format, Item


def _items_key(items: Sequence[Item]) -> str:
    return content_key([[it.id, it.prompt, it.answer_a, it.answer_b] for it in items])


@dataclass(frozen=True)
class FinetuneConfig:
    """What is fine-tuned and how (part of the prediction cache key)."""

    model: str = DEFAULT_ENCODER
    layers: int | None = None
    trainable_layers: int | None = None
    lr: float = 3e-5
    epochs: int = 2
    batch_size: int = 16
    max_length: int = 96


class EncoderFinetuneModel(W2SModel):
    """A cross-encoder fine-tuned on (soft) labels with AdamW."""

    name = "encoder_finetune"

    def __init__(
        self,
        fmt: Format,
        model: str = DEFAULT_ENCODER,
        layers: int | None = None,
        trainable_layers: int | None = None,
        lr: float = 3e-5,
        epochs: int = 2,
        batch_size: int = 16,
        max_length: int = 96,
        cache_dir: Path | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(fmt)
        self.config = FinetuneConfig(model, layers, trainable_layers, lr, epochs, batch_size, max_length)
        self.cache = ArrayCache(cache_dir) if cache_dir else None
        self.device = device
        self._train: tuple[Sequence[Item], np.ndarray, np.ndarray | None, Loss, int] | None = None
        self._fit_key: str | None = None
        self._net: Any = None
        self.losses: list[float] = []

    # ------------------------------------------------------------------ network
    def _build(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        c = self.config
        path = resolve_model_path(c.model)
        self._tok = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
        layers = list(encoder.encoder.layer)
        if c.layers is not None:
            layers = layers[: c.layers]
            encoder.encoder.layer = torch.nn.ModuleList(layers)
        if c.trainable_layers is not None:
            for p in encoder.parameters():
                p.requires_grad = False
            for layer in layers[len(layers) - c.trainable_layers :]:
                for p in layer.parameters():
                    p.requires_grad = True
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._net = torch.nn.ModuleDict({"encoder": encoder, "score": torch.nn.Linear(encoder.config.hidden_size, 1)})
        torch.nn.init.zeros_(self._net["score"].weight)
        self._net.to(self.device)

    def _scores(self, prompts: Sequence[str], answers: Sequence[str]):  # type: ignore[no-untyped-def]
        batch = self._tok(
            list(prompts),
            list(answers),
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        ).to(self.device)
        hidden = self._net["encoder"](**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return self._net["score"](pooled).squeeze(-1)

    def _logits(self, items: Sequence[Item]):  # type: ignore[no-untyped-def]
        prompts = [it.prompt for it in items]
        sa = self._scores(prompts, [it.answer_a for it in items])
        if self.fmt == "binary":
            return sa
        return self._scores(prompts, [it.answer_b or "" for it in items]) - sa

    # ------------------------------------------------------------------ API
    def fit(self, items, targets, *, weights=None, loss: Loss = "bce", seed=0):  # type: ignore[no-untyped-def]
        targets = np.clip(np.asarray(targets, dtype=float), 0, 1)
        self._train = (list(items), targets, None if weights is None else np.asarray(weights, float), loss, seed)
        self._fit_key = content_key(
            "finetune",
            asdict(self.config),
            self.fmt,
            _items_key(items),
            targets.round(6).tolist(),
            None if weights is None else np.asarray(weights).round(6).tolist(),
            loss,
            seed,
        )
        self._net = None
        return self

    def _train_now(self) -> None:
        import torch

        assert self._train is not None
        items, targets, weights, loss, seed = self._train
        torch.manual_seed(seed)
        self._build()
        c = self.config
        params = [p for p in self._net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=0.01)
        per_epoch = math.ceil(len(items) / c.batch_size)
        total = c.epochs * per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(1, 0.1 * total)) * max(0.0, (total - s) / total)
        )
        t = torch.tensor(targets, dtype=torch.float32)
        w = torch.tensor(np.ones(len(items)) if weights is None else weights, dtype=torch.float32)
        gen = torch.Generator().manual_seed(seed)
        self._net.train()
        with progress_bar(f"fine-tuning on {len(items)} items", total) as bar:
            for epoch in range(c.epochs):
                order = torch.randperm(len(items), generator=gen)
                for k in range(per_epoch):
                    idx = order[k * c.batch_size : (k + 1) * c.batch_size]
                    logits = self._logits([items[i] for i in idx]).float().cpu()
                    target = t[idx]
                    if loss == "logconf":
                        alpha = logconf_alpha(epoch * per_epoch + k, total)
                        target = logconf_target(torch.sigmoid(logits), target, alpha)
                    per_item = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
                    batch_loss = (per_item * w[idx]).sum() / w[idx].sum().clamp_min(1e-8)
                    opt.zero_grad()
                    batch_loss.backward()
                    opt.step()
                    sched.step()
                    self.losses.append(float(batch_loss.detach()))
                    bar.advance(1)
        self._net.eval()

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        import torch

        if self._fit_key is None:
            raise RuntimeError("encoder_finetune model is not trained")
        key = content_key("finetune-predict", self._fit_key, _items_key(items))

        def compute() -> np.ndarray:
            if self._net is None:
                self._train_now()
            out = []
            with torch.inference_mode():
                for start in range(0, len(items), 64):
                    out.append(torch.sigmoid(self._logits(items[start : start + 64]).float()).cpu().numpy())
            return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

        return compute() if self.cache is None else self.cache.get_or_compute("predictions", key, compute)

    def zero_shot(self, items: Sequence[Item]) -> np.ndarray:
        """The untrained bi-encoder's cosine rule (same weights, same truncation)."""
        spec = EncoderSpec(name=self.config.model, layers=self.config.layers)
        return EncoderModel(self.fmt, spec, cache_dir=self.cache.root if self.cache else None).zero_shot(items)
