"""The eval server: the only process that reads test labels; scores, guards and audits submissions.

``create_app`` is imported lazily, so that ``aar.evalserver.client`` and ``aar.evalserver.models``
(used by the hub and the MCP tools) never pull the label-reading modules into those processes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aar.evalserver.app import create_app

        return create_app
    raise AttributeError(name)
