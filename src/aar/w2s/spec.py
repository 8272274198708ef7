"""Model specs: which backend and with which options (no heavy imports; testbeds and models both use it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Backend = Literal["tfidf", "encoder", "encoder_finetune", "causal_lm"]


class ModelSpec(BaseModel):
    """A backend name plus its options, e.g. ``{"backend": "encoder", "options": {"layers": 1}}``."""

    backend: Backend
    options: dict[str, Any] = Field(default_factory=dict)

    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.backend}({opts})"
