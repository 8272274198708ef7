"""Fixtures for hub tests: a live hub on loopback over a fresh AAR_HOME, worker and admin tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request

from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.evalserver.client import EvalClient
from aar.hub.app import HubConfig, create_app
from aar.hub.client import HubClient
from aar.servicekit import serve_in_thread


def fake_eval_app(tokens: TokenStore) -> FastAPI:
    """A minimal stand-in for the eval server's submission routes (owner-only reads)."""
    app = FastAPI()
    subs: dict[str, dict[str, Any]] = {}

    def who(request: Request) -> str:
        p = tokens.verify(request.headers.get("authorization", "")[7:])
        if p is None:
            raise HTTPException(401, "bad token")
        return p.worker_id

    @app.post("/v1/submissions")
    async def submit(request: Request) -> dict[str, Any]:
        worker = who(request)
        body = await request.json()
        sid = f"s{len(subs) + 1}"
        subs[sid] = {"id": sid, "worker_id": worker, "testbed": body["testbed"], "mechanism": "ladder",
                     "created_at": "2026-01-01T00:00:00Z", "team": "t", "pred_hash": "0" * 64,
                     "note": "secret note", "budget": {"used_last_hour": 1, "max_per_hour": 30, "used_total": 1,
                                                       "max_total": 1000},
                     "released": {"mechanism": "ladder", "acc": {"id": 0.7, "ood": 0.6, "combined": 0.65},
                                  "pgr": {"id": 0.4, "ood": 0.2, "combined": 0.3}, "improved": True}}
        return subs[sid]

    @app.get("/v1/submissions/{sid}")
    def get(sid: str, request: Request) -> dict[str, Any]:
        worker = who(request)
        if sid not in subs or subs[sid]["worker_id"] != worker:
            raise HTTPException(404, "no such submission")
        return subs[sid]

    return app


@dataclass
class LiveHub:
    url: str
    home: Path
    tokens: TokenStore
    evals: EvalClient

    def client(self, worker: str, team: str = "t1", role: str = "worker") -> HubClient:
        return HubClient(self.url, self.tokens.create(worker, team, role))  # type: ignore[arg-type]

    def submit(self, hub_client: HubClient, testbed: str = "tb") -> str:
        """Make a submission on the fake eval server as the client's worker; returns its id."""
        token = hub_client._http.headers["Authorization"][7:]
        return self.evals.submit(token, testbed, {"a": 0.9}).id


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., LiveHub]]:
    stack: list[Any] = []

    def start(**config: Any) -> LiveHub:
        settings = Settings(home=tmp_path / "home")
        tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
        eval_cm = serve_in_thread(fake_eval_app(tokens))
        evals = EvalClient(eval_cm.__enter__())
        stack.append(eval_cm)
        cm = serve_in_thread(create_app(settings, HubConfig(**config), eval_client=evals))
        url = cm.__enter__()
        stack.append(cm)
        return LiveHub(url, settings.home, tokens, evals)

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def hub(make_hub: Callable[..., LiveHub]) -> LiveHub:
    return make_hub()
