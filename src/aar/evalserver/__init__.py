"""The eval server: the only process that reads test labels; scores, guards and audits submissions."""

from aar.evalserver.app import create_app

__all__ = ["create_app"]
