"""Auth: missing / wrong / revoked tokens, other workers' and teams' data, admin-only routes."""

from __future__ import annotations

import httpx
import pytest
from evalkit import LiveEval
from sqlalchemy import update

from aar.auth import TokenRow, TokenStore
from aar.db import make_engine


def good_body(live: LiveEval) -> dict[str, object]:
    return {"testbed": live.testbed.name, "predictions": dict.fromkeys(live.testbed.test_ids, 0.6)}


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer aar_not-a-real-token", "Basic dXNlcjpwYXNz",
                                    "aar_token-without-scheme", "Bearer " + "x" * 500])
def test_missing_or_wrong_token_is_401(live: LiveEval, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    with httpx.Client(base_url=live.url, headers=headers) as anon:
        for method, path in (("POST", "/v1/submissions"), ("GET", "/v1/submissions"),
                             ("GET", "/v1/leaderboard"), ("GET", "/v1/audit"), ("GET", "/v1/testbeds"),
                             ("POST", "/v1/teams/x/finalize")):
            r = anon.request(method, path, json=good_body(live) if method == "POST" else None)
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers.get("www-authenticate") == "Bearer"
        assert anon.get("/healthz").status_code == 200


def test_workers_see_their_own_data_only(live: LiveEval) -> None:
    alice, bob = live.client("alice", "auth-a"), live.client("bob", "auth-a")
    outsider = live.client("olga", "auth-b")
    sub = alice.post("/v1/submissions", json=good_body(live)).json()
    assert alice.get(f"/v1/submissions/{sub['id']}").status_code == 200
    assert "predictions" not in alice.get(f"/v1/submissions/{sub['id']}").json()
    assert bob.get(f"/v1/submissions/{sub['id']}").status_code == 403
    assert outsider.get(f"/v1/submissions/{sub['id']}").status_code == 403
    assert bob.get("/v1/submissions", params={"worker": "alice"}).status_code == 403
    assert bob.get("/v1/submissions").json()["submissions"] == []
    assert alice.get("/v1/submissions/sub_doesnotexist").status_code == 404
    assert outsider.get("/v1/leaderboard", params={"team": "auth-a"}).status_code == 403
    assert outsider.get("/v1/teams/auth-a/config").status_code == 403
    assert bob.get("/v1/teams/auth-a/config").status_code == 403  # thresholds are admin-only
    board = bob.get("/v1/leaderboard").json()  # teammates share a leaderboard of released values
    (row,) = board["boards"][0]["workers"]
    assert row["worker_id"] == "alice" and row["public_true"] is None and "private" not in row
    assert (board["boards"][0]["team_best"] or {}).get("from_submission") is None


def test_admin_only_routes(live: LiveEval) -> None:
    worker, admin = live.client("w", "auth-c"), live.client(admin=True)
    worker.post("/v1/submissions", json=good_body(live))
    assert worker.put("/v1/teams/auth-c/config", json={"mechanism": "exact"}).status_code == 403
    assert worker.post("/v1/teams/auth-c/finalize").status_code == 403
    assert worker.get("/v1/audit").status_code == 403
    assert admin.put("/v1/teams/auth-c/config", json={"mechanism": "thresholdout"}).status_code == 200
    assert admin.put("/v1/teams/auth-c/config", json={"mechanism": "nope"}).status_code == 422
    assert admin.get("/v1/teams/auth-c/config").json()["mechanism"] == "thresholdout"
    assert admin.post("/v1/teams/auth-c/finalize").status_code == 200
    assert admin.post("/v1/teams/nobody/finalize").status_code == 404
    assert len(admin.get("/v1/audit", params={"team": "auth-c"}).json()) == 1
    board = admin.get("/v1/leaderboard", params={"team": "auth-c"}).json()
    assert board["boards"][0]["workers"][0]["public_true"] is not None  # the admin view holds true scores
    assert admin.get("/v1/submissions", params={"worker": "w"}).json()["submissions"]


def test_revocation_applies_on_the_next_request(make_live) -> None:  # type: ignore[no-untyped-def]
    """``aar token revoke`` in another process: the next request is refused, despite the 30 s cache."""
    live = make_live()  # default token_cache_s (30 s)
    client = live.client("temp", "auth-r")
    assert client.get("/v1/whoami").json() == {"worker_id": "temp", "team": "auth-r", "role": "worker"}
    other_process = TokenStore(make_engine(live.settings.sqlite_url("auth")))
    # control: a cached verification outlives a change the counter does not announce
    with other_process.engine.begin() as c:
        c.execute(update(TokenRow).where(TokenRow.worker_id == "temp").values(revoked=True))
    assert client.get("/v1/whoami").status_code == 200
    other_process.revoke_worker("temp")  # what `aar token revoke` does
    assert client.get("/v1/whoami").status_code == 401
    body = {"testbed": live.testbed.name, "predictions": dict.fromkeys(live.testbed.test_ids, 0.6)}
    assert client.post("/v1/submissions", json=body).status_code == 401

