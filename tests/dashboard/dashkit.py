"""Dashboard-test helpers (a uniquely named module): a team written to disk without services, a logged-in client."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from aar.agents.base import Budget, Trajectory
from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.orchestrator.team import TeamSpec, TeamState, WorkerState, save_state, team_dir

DEAD_URL = "http://127.0.0.1:9"  # nothing listens: the leaderboard is "unavailable", pages still render


def fake_team(settings: Settings, team: str, workers: int = 2, hub_url: str = DEAD_URL, eval_url: str = DEAD_URL,
              kind: str = "llm", phase: str = "running") -> TeamState:
    """A team folder as ``launch`` leaves it (state, admin token, worker folders), with no process behind it."""
    root = team_dir(settings, team)
    (root / "workers").mkdir(parents=True, exist_ok=True)
    (root / "admin.token").write_text("aar_not-a-real-token")
    spec = TeamSpec(team=team, workers=workers, kind=kind, hub_url=hub_url, eval_url=eval_url,  # type: ignore[arg-type]
                    budget=Budget(wall_s=3600, submissions=10, dollars=5.0))
    names = [f"{team}-w{k + 1:02d}" for k in range(workers)]
    state = TeamState(team=team, spec=spec, created_at=datetime.now(UTC) - timedelta(hours=1), phase=phase,  # type: ignore[arg-type]
                      workers={n: WorkerState(worker=n, direction=f"direction {k}", phase="running")
                               for k, n in enumerate(names)})
    for n in names:
        (root / "workers" / n / "workspace").mkdir(parents=True, exist_ok=True)
    save_state(settings, state)
    return state


def trajectory(settings: Settings, team: str, worker: str) -> Trajectory:
    return Trajectory(team_dir(settings, team) / "workers" / worker / "trajectory.jsonl")


def admin_token(settings: Settings) -> str:
    return TokenStore(make_engine(settings.sqlite_url("auth"))).create("dash-admin", "ops", "admin")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: TestClient, token: str) -> str:
    """Log ``client`` in; returns the session's CSRF token."""
    r = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/").text)


def dash_client(settings: Settings, **config: object) -> TestClient:
    from aar.dashboard.app import DashboardConfig, create_app

    return TestClient(create_app(settings, DashboardConfig(hub_url=DEAD_URL, eval_url=DEAD_URL, **config)),  # type: ignore[arg-type]
                      base_url="http://127.0.0.1")


def home(tmp: Path) -> Settings:
    settings = Settings(home=tmp)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    return settings
