"""Admin-side operations behind the CLI: tokens, audit export, team finalisation.

These run in the admin's own process (the trusted side, like ``aar baselines``); finalisation can also
be asked of a running server with an admin token (``POST /v1/teams/{team}/finalize``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from pydantic import BaseModel

from aar.auth import Role, TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.evalserver.audit import ExportSummary, export_audit
from aar.evalserver.config import EvalServerConfig
from aar.evalserver.labels import TestbedLabels, load_labels
from aar.evalserver.models import FinalReport
from aar.evalserver.reports import finalize_team
from aar.evalserver.store import Store


class TokenInfo(BaseModel):
    worker_id: str
    team: str
    role: Role
    token: str


def create_token(settings: Settings, worker_id: str, team: str = "default", admin: bool = False) -> TokenInfo:
    """Create a worker (or admin) token in the shared token store; the clear text is returned once."""
    role: Role = "admin" if admin else "worker"
    store = TokenStore(make_engine(settings.sqlite_url("auth")))
    return TokenInfo(worker_id=worker_id, team=team, role=role, token=store.create(worker_id, team, role))


def revoke_tokens(settings: Settings, worker_id: str) -> int:
    """Revoke every token of a worker (running servers refuse them from their next request on)."""
    return TokenStore(make_engine(settings.sqlite_url("auth"))).revoke_worker(worker_id)


def export_audit_file(settings: Settings, out: Path | None, team: str | None = None) -> ExportSummary:
    """Write the audit log as JSONL to ``out`` (stdout when None); returns the summary line."""
    store = Store(make_engine(settings.sqlite_url("evalserver")))
    if out is None:
        return export_audit(store, sys.stdout, team)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        summary = export_audit(store, fh, team)
    tmp.replace(out)
    return summary


def finalize(settings: Settings, team: str, config: EvalServerConfig | None = None,
             testbed: str | None = None, url: str | None = None, token: str | None = None) -> FinalReport:
    """The team's private-split report; in this process, or by the server at ``url`` with an admin token."""
    if url is not None:
        if not token:
            raise ValueError("finalising through a server needs an admin token (--token or AAR_ADMIN_TOKEN)")
        params = {"testbed": testbed} if testbed else None
        try:
            resp = httpx.post(f"{url.rstrip('/')}/v1/teams/{team}/finalize", params=params, timeout=300,
                              headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ValueError(f"eval server at {url} unreachable: {exc}") from None
        if resp.status_code != 200:
            detail = resp.json().get("detail", resp.text)
            raise ValueError(f"eval server refused ({resp.status_code}): {detail}")
        return FinalReport.model_validate(resp.json())
    config = config or EvalServerConfig()
    cache: dict[str, TestbedLabels] = {}

    def labels(name: str) -> TestbedLabels:
        if name not in cache:
            cache[name] = load_labels(name, settings)
        return cache[name]

    store = Store(make_engine(settings.sqlite_url("evalserver")))
    try:
        return finalize_team(store, team, labels, by="cli", testbed=testbed)
    except LookupError as exc:
        raise ValueError(str(exc)) from None
