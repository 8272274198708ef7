"""The ``ChatProvider`` contract of the ``llm`` researcher: one model turn over provider-neutral messages.

Messages are plain dicts: ``{"role": "user", "content": str}``, an assistant turn
``{"role": "assistant", "text": str, "tool_calls": [ToolCall...]}`` and tool results
``{"role": "tool", "results": [{"id", "content", "is_error"}]}``; each provider converts them to its
wire format. Providers retry rate limits and overload themselves (the SDKs' backoff) and raise
:class:`ProviderError` when they give up. They hold the API key; nothing here reaches a sandbox.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import BaseModel, Field


class ProviderError(Exception):
    """The model API failed after its retries (or is misconfigured); the message says why."""


@dataclass
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Turn:
    """One model response: text, tool calls, token usage and why it stopped."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = "end_turn"
    exhausted: bool = False  # scripted: nothing left to say


class Price(BaseModel):
    """Dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)

    def cost(self, turn: Turn) -> float:
        return (turn.input_tokens * self.input + turn.output_tokens * self.output) / 1e6


#: Default prices (USD per million input / output tokens) by model-id prefix; override in the config.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4": Price(input=15.0, output=75.0),
    "claude-sonnet-4": Price(input=3.0, output=15.0),
    "claude-haiku-4": Price(input=1.0, output=5.0),
    "gpt-4o-mini": Price(input=0.15, output=0.6),
    "gpt-4o": Price(input=2.5, output=10.0),
    "scripted": Price(input=3.0, output=15.0),
}


def price_for(model: str, prices: dict[str, Price]) -> Price | None:
    """The price of ``model``: an exact entry, else the longest matching prefix; None if unknown."""
    if model in prices:
        return prices[model]
    matches = [k for k in prices if model.startswith(k)]
    return prices[max(matches, key=len)] if matches else None


def import_sdk(module: str) -> ModuleType:
    """The provider's official SDK, or a ProviderError that says which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ProviderError(f"the {module} provider needs the SDK: pip install 'aar[agents]'") from exc


class ChatProvider(abc.ABC):
    """One model behind one API (see the module docstring)."""

    name = "abstract"

    def __init__(self, model: str) -> None:
        self.model = model

    @abc.abstractmethod
    def complete(self, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                 max_tokens: int = 4096) -> Turn:
        """The model's next turn."""
