"""Chat providers of the ``llm`` researcher: ``anthropic``, ``openai`` (any compatible server), ``scripted``."""

from aar.agents.providers.base import (
    DEFAULT_PRICES,
    ChatProvider,
    Price,
    ProviderError,
    ToolCall,
    ToolSpec,
    Turn,
    price_for,
)

__all__ = ["DEFAULT_PRICES", "ChatProvider", "Price", "ProviderError", "ToolCall", "ToolSpec", "Turn", "price_for"]
