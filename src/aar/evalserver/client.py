"""The eval server's HTTP client, returning the server's own pydantic models (hub and MCP tools use it).

It imports only ``aar.evalserver.models`` (no labels): the hub and the MCP processes may use it.

The hub forwards the calling worker's own token, so the eval server's rule "a worker sees its own
submissions only" also decides which submissions a worker may cite in a finding; the hub holds no
eval-server credential of its own.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from aar.evalserver.models import Leaderboard, SubmissionOut
from aar.httpclient import ServiceError, error_reason

#: Fields of a submission record (``SubmissionOut``) that are released scores or provenance; a finding
#: keeps these and nothing else (no budget, no team-best, no free-text note).
KEEP_KEYS = ("id", "testbed", "mechanism", "seed", "created_at", "worker_id", "snapshot_id", "released",
             "baselines", "flags")


_M = TypeVar("_M", bound=BaseModel)


class EvalError(ServiceError):
    """The eval server refused a request or could not be reached; ``status`` is its HTTP status (0: none)."""


class EvalClient:
    """Calls the eval server with a bearer token given per call (the hub serves many workers)."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, token: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        except httpx.HTTPError as exc:
            raise EvalError(0, f"eval server at {self.base_url} unreachable: {exc}") from None
        if resp.status_code >= 400:
            raise EvalError(resp.status_code, f"eval server: {error_reason(resp)}")
        return resp.json()

    def _model(self, model: type[_M], data: Any) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise EvalError(0, f"eval server at {self.base_url} sent an unexpected answer "
                               f"({exc.error_count()} problem(s) reading a {model.__name__})") from None

    def submit(self, token: str, testbed: str, predictions: dict[str, float], seed: int | None = None,
               note: str | None = None, snapshot_id: str | None = None) -> SubmissionOut:
        """Submit predictions; returns the eval server's answer (submission id and released scores)."""
        body: dict[str, Any] = {"testbed": testbed, "predictions": predictions}
        for k, v in (("seed", seed), ("note", note), ("snapshot_id", snapshot_id)):
            if v is not None:
                body[k] = v
        return self._model(SubmissionOut, self._call("POST", "/v1/submissions", token, json=body))

    def get_submission(self, token: str, submission_id: str) -> SubmissionOut:
        """The token owner's submission ``submission_id`` (``EvalError`` 404 when not theirs)."""
        return self._model(SubmissionOut, self._call("GET", f"/v1/submissions/{submission_id}", token))

    def leaderboard(self, token: str, testbed: str | None = None) -> Leaderboard:
        params = {"testbed": testbed} if testbed else None
        return self._model(Leaderboard, self._call("GET", "/v1/leaderboard", token, params=params))

    def released_scores(self, token: str, submission_id: str) -> dict[str, Any]:
        """The released scores of one submission, as the eval server states them (no predictions)."""
        sub = self.get_submission(token, submission_id)
        return sub.model_dump(mode="json", include=set(KEEP_KEYS))
