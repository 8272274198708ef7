"""Moved to ``aar.evalserver.client`` (next to the server it calls); these names stay importable."""

from aar.evalserver.client import KEEP_KEYS, EvalClient, EvalError

__all__ = ["KEEP_KEYS", "EvalClient", "EvalError"]
