"""A typed HTTP client of the hub, for the MCP tools, the orchestrator and tests.

Each method is one request; a refusal raises ``HubError`` with the hub's one-line reason.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from aar.httpclient import ServiceError, error_reason
from aar.hub.models import (
    Comment,
    Event,
    Finding,
    FindingIn,
    FindingPage,
    SearchResult,
    SnapshotMeta,
    WorkerInfo,
)


class HubError(ServiceError):
    """The hub refused a request or could not be reached; ``status`` is its HTTP status (0: none)."""


class HubClient:
    """Calls the hub as one worker (its bearer token)."""

    def __init__(self, base_url: str, token: str, transport: httpx.BaseTransport | None = None,
                 timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise HubError(0, f"hub at {self.base_url} unreachable: {exc}") from None
        if resp.status_code >= 400:
            raise HubError(resp.status_code, f"hub refused ({resp.status_code}): {error_reason(resp)}")
        return resp

    # findings ---------------------------------------------------------------

    def post_finding(self, finding: FindingIn | dict[str, Any]) -> Finding:
        body = finding.model_dump() if isinstance(finding, FindingIn) else finding
        return Finding.model_validate(self.request("POST", "/v1/findings", json=body).json())

    def findings(self, since_rev: int = 0, limit: int = 100, comments: bool = False, wait: float = 0,
                 **filters: str) -> FindingPage:
        params: dict[str, Any] = {"since_rev": since_rev, "limit": limit, "comments": comments, "wait": wait,
                                  **{k: v for k, v in filters.items() if v}}
        resp = self.request("GET", "/v1/findings", params=params, timeout=wait + 30)
        return FindingPage.model_validate(resp.json())

    def search(self, query: str, limit: int = 20) -> SearchResult:
        resp = self.request("GET", "/v1/findings/search", params={"q": query, "limit": limit})
        return SearchResult.model_validate(resp.json())

    def finding(self, finding_id: int) -> Finding:
        return Finding.model_validate(self.request("GET", f"/v1/findings/{int(finding_id)}").json())

    def comment(self, finding_id: int, body: str) -> Comment:
        resp = self.request("POST", f"/v1/findings/{int(finding_id)}/comments", json={"body": body})
        return Comment.model_validate(resp.json())

    def vote(self, finding_id: int, value: int) -> Finding:
        resp = self.request("POST", f"/v1/findings/{int(finding_id)}/votes", json={"value": value})
        return Finding.model_validate(resp.json())

    # snapshots --------------------------------------------------------------

    def upload_snapshot(self, data: bytes, note: str = "", parent_id: str | None = None,
                        finding_id: int | None = None) -> SnapshotMeta:
        params: dict[str, Any] = {"note": note}
        if parent_id:
            params["parent_id"] = parent_id
        if finding_id is not None:
            params["finding_id"] = finding_id
        resp = self.request("POST", "/v1/snapshots", content=data, params=params,
                            headers={"Content-Type": "application/gzip"})
        return SnapshotMeta.model_validate(resp.json())

    def snapshot(self, snapshot_id: str) -> SnapshotMeta:
        return SnapshotMeta.model_validate(self.request("GET", f"/v1/snapshots/{snapshot_id}").json())

    def snapshots(self, worker: str | None = None, limit: int = 100) -> list[SnapshotMeta]:
        params: dict[str, Any] = {"limit": limit, **({"worker": worker} if worker else {})}
        rows = self.request("GET", "/v1/snapshots", params=params).json()
        return [SnapshotMeta.model_validate(x) for x in rows]

    def download_snapshot(self, snapshot_id: str) -> bytes:
        """The snapshot's bytes, checked against its sha256."""
        data = self.request("GET", f"/v1/snapshots/{snapshot_id}/download").content
        if hashlib.sha256(data).hexdigest() != snapshot_id:
            raise HubError(0, f"snapshot {snapshot_id} arrived corrupted (sha256 mismatch)")
        return data

    # workers and events -----------------------------------------------------

    def register(self, info: dict[str, Any] | None = None, **admin: str) -> WorkerInfo:
        resp = self.request("POST", "/v1/workers/register", json={"info": info or {}, **admin})
        return WorkerInfo.model_validate(resp.json())

    def heartbeat(self, status: str | None = None, worker_id: str | None = None) -> WorkerInfo:
        resp = self.request("POST", "/v1/workers/heartbeat", json={"status": status, "worker_id": worker_id})
        return WorkerInfo.model_validate(resp.json())

    def workers(self) -> list[WorkerInfo]:
        return [WorkerInfo.model_validate(x) for x in self.request("GET", "/v1/workers").json()]

    def post_event(self, kind: str, data: dict[str, Any] | None = None,
                   worker_id: str | None = None) -> Event:
        body: dict[str, Any] = {"kind": kind, "data": data or {}}
        if worker_id:
            body["worker_id"] = worker_id
        return Event.model_validate(self.request("POST", "/v1/events", json=body).json())

    def events(self, since: int = 0, limit: int = 500, **filters: str) -> list[Event]:
        params: dict[str, Any] = {"since": since, "limit": limit, **{k: v for k, v in filters.items() if v}}
        return [Event.model_validate(x) for x in self.request("GET", "/v1/events", params=params).json()]
