"""Fixtures for researcher tests (defined in ``agentkit``, a uniquely named helper module)."""

from agentkit import live

__all__ = ["live"]
