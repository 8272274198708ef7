"""What aar's HTTP clients share: one error type carrying the status, and a readable reason from a response."""

from __future__ import annotations

import httpx


class ServiceError(Exception):
    """A service refused a request or could not be reached; ``status`` is its HTTP status (0: none)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_reason(resp: httpx.Response) -> str:
    """The ``detail`` of an error response; pydantic validation lists become "field: rule" lines."""
    try:
        detail = resp.json().get("detail", resp.text)
    except (ValueError, AttributeError):
        return resp.text[:300] or resp.reason_phrase
    if isinstance(detail, list):
        parts = []
        for d in detail[:5]:
            if not isinstance(d, dict):
                parts.append(str(d))
                continue
            loc = ".".join(str(x) for x in d.get("loc", []) if x != "body")
            parts.append(f"{loc}: {d.get('msg', '')}" if loc else str(d.get("msg", "")))
        return "; ".join(parts)
    return str(detail)[:500]
