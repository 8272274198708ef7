"""Budgets: a team budget per hour and in total, each worker a share of it; 429 with Retry-After when spent."""

from __future__ import annotations

from evalkit import LiveEval


def good_body(live: LiveEval) -> dict[str, object]:
    return {"testbed": live.testbed.name, "predictions": dict.fromkeys(live.testbed.test_ids, 0.6)}


def test_hourly_and_total_budgets(live: LiveEval) -> None:
    live.set_team("budget-a", max_per_hour=3, max_total=5)
    client = live.client("b", "budget-a")
    for k in range(3):
        r = client.post("/v1/submissions", json=good_body(live))
        assert r.status_code == 200
        assert r.json()["budget"] == {"used_last_hour": k + 1, "max_per_hour": 3, "used_total": k + 1,
                                      "max_total": 5, "team_used_last_hour": k + 1, "team_max_per_hour": 60,
                                      "team_used_total": k + 1, "team_max_total": 2000}
    r = client.post("/v1/submissions", json=good_body(live))
    assert r.status_code == 429 and "per hour" in r.json()["detail"]
    assert 3590 <= int(r.headers["retry-after"]) <= 3600
    live.set_team("budget-a", max_per_hour=100, max_total=5)
    codes = [client.post("/v1/submissions", json=good_body(live)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.post("/v1/submissions", json=good_body(live))
    assert r.status_code == 429 and "total budget" in r.json()["detail"] and int(r.headers["retry-after"]) > 0
    assert len(client.get("/v1/submissions").json()["submissions"]) == 5  # refusals are not stored


def test_team_budget_is_shared(live: LiveEval) -> None:
    live.set_team("budget-t", team_max_total=2)
    a, b = live.client("a", "budget-t"), live.client("b", "budget-t")
    assert a.post("/v1/submissions", json=good_body(live)).status_code == 200
    assert b.post("/v1/submissions", json=good_body(live)).status_code == 200
    r = b.post("/v1/submissions", json=good_body(live))
    assert r.status_code == 429 and "team" in r.json()["detail"]


def test_colluding_workers_share_the_default_hourly_team_budget(live: LiveEval) -> None:
    """Four workers of one team get 60 submissions an hour together (the old default gave each 60)."""
    live.set_team("budget-k", team_max_per_hour=8, max_per_hour=5)
    workers = [live.client(f"k{i}", "budget-k") for i in range(4)]
    codes = [w.post("/v1/submissions", json=good_body(live)).status_code for w in workers for _ in range(3)]
    assert codes.count(200) == 8 and codes.count(429) == 4
    live.set_team("budget-k2", team_max_per_hour=None, team_max_total=None, max_per_hour=5)  # control
    workers = [live.client(f"k{i}", "budget-k2") for i in range(4)]
    codes = [w.post("/v1/submissions", json=good_body(live)).status_code for w in workers for _ in range(3)]
    assert codes.count(200) == 12  # per-worker budgets only (the old default): K workers, K budgets
