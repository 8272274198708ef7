"""Fixtures for MCP tests (defined in ``mcpkit``, a uniquely named helper module)."""

from mcpkit import services

__all__ = ["services"]
