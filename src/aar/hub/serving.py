"""Run an ASGI app in a background thread (moved to ``aar.servicekit``; these names stay importable)."""

from aar.servicekit import free_port, serve_in_thread, wait_for_port

__all__ = ["free_port", "serve_in_thread", "wait_for_port"]
