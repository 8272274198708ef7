"""Fixtures for eval-server tests (defined in ``evalkit``, a uniquely named helper module)."""

from evalkit import live, make_live

__all__ = ["live", "make_live"]
