"""Hacking detectors over HTTP: probing, least-confident edits, seed cherry-picking, near-random vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
from evalkit import LiveEval, noisy_predictions


def submit(client: Any, testbed: str, preds: dict[str, float]) -> dict[str, Any]:
    r = client.post("/v1/submissions", json={"testbed": testbed, "predictions": preds})
    assert r.status_code == 200, r.text
    return dict(r.json())


def kinds(out: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in out["flags"]}


def test_honest_distinct_models_are_not_flagged(live: LiveEval) -> None:
    tb = live.testbed
    client = live.client("honest", "det-honest")
    rng = np.random.default_rng(1)
    for acc in (0.7, 0.75, 0.8, 0.72):
        assert kinds(submit(client, tb.name, noisy_predictions(tb.labels, acc, rng))) == set()


def test_label_probing_is_flagged_for_worker_and_team(live: LiveEval) -> None:
    tb = live.testbed
    base = {i: tb.weak[0][i] for i in tb.test_ids}  # the attacker's own weak model: not a random vector
    alice, bob = live.client("alice", "det-probe"), live.client("bob", "det-probe")
    first = submit(alice, tb.name, base)
    probe = dict(base)
    for i in tb.test_ids[:3]:
        probe[i] = 1 - probe[i]
    out = submit(alice, tb.name, probe)
    (flag,) = [f for f in out["flags"] if f["kind"] == "label_probing"]
    assert flag["scope"] == "worker" and flag["against"] == first["id"] and "3 item" in flag["detail"]
    probe2 = dict(base)
    probe2[tb.test_ids[5]] = 1 - probe2[tb.test_ids[5]]
    out = submit(bob, tb.name, probe2)  # a teammate probing alice's vector: flagged, without naming it
    (flag,) = [f for f in out["flags"] if f["kind"] == "label_probing"]
    assert flag["scope"] == "team" and flag["against"] is None
    board = alice.get("/v1/leaderboard", params={"testbed": tb.name}).json()
    counts = {w["worker_id"]: w["flags"] for w in board["boards"][0]["workers"]}
    assert counts["alice"] == {"label_probing": 1} and counts["bob"] == {"label_probing": 1}


def test_edits_on_least_confident_items_are_flagged(live: LiveEval) -> None:
    tb = live.testbed
    rng = np.random.default_rng(3)
    base = noisy_predictions(tb.labels, 0.75, rng)
    client = live.client("carol", "det-conf")
    submit(client, tb.name, base)
    least = sorted(tb.test_ids, key=lambda i: abs(base[i] - 0.5))[:30]
    edited = dict(base)
    for i in least:
        edited[i] = 1 - edited[i]
    out = submit(client, tb.name, edited)
    assert any(f["kind"] == "label_probing" and "least-confident" in f["detail"] for f in out["flags"])


def test_seed_cherry_picking_is_flagged(live: LiveEval) -> None:
    tb = live.testbed
    rng = np.random.default_rng(4)
    first = noisy_predictions(tb.labels, 0.8, rng)
    base = np.array([first[i] for i in tb.test_ids])
    client = live.client("dave", "det-seeds")
    flagged = []
    for seed in range(6):  # reruns: every probability moves a little, the labels barely change
        jitter = np.clip(base + np.random.default_rng(seed).normal(0, 0.005, len(base)), 0.001, 0.999)
        out = submit(client, tb.name, dict(zip(tb.test_ids, map(float, jitter), strict=True)))
        flagged.append("seed_cherry_picking" in kinds(out))
    assert flagged[:4] == [False] * 4 and flagged[4] and flagged[5]


def test_near_random_vectors_are_flagged_as_boosting(live: LiveEval) -> None:
    tb = live.testbed
    rng = np.random.default_rng(5)
    client = live.client("erin", "det-random")
    hits = 0
    for _ in range(10):
        out = submit(client, tb.name, {i: float(rng.integers(0, 2)) for i in tb.test_ids})
        hits += "boosting" in kinds(out)
    assert hits >= 9
