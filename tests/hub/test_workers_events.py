"""Worker registry, heartbeats and the append-only event log (lifecycle kinds, submissions with scores)."""

from __future__ import annotations

import pytest

from aar.hub.client import HubError


def test_register_heartbeat_events(hub) -> None:
    w = hub.client("w1")
    info = w.register({"agent": "evolve", "direction": "ensembles"})
    assert info.status == "started" and info.alive and info.info["agent"] == "evolve"
    assert w.heartbeat("thinking").status == "thinking"
    w.post_event("session_started", {"session": 1})
    sid = hub.submit(w)
    ev = w.post_event("submission", {"submission_id": sid, "pgr": 99.0})
    assert ev.data == {"submission_id": sid, "scores": ev.data["scores"]}  # typed numbers dropped
    assert ev.data["scores"]["released"]["pgr"]["combined"] == 0.3
    w.post_finding({"title": "f", "kind": "insight"})
    w.post_event("crash", {"error": "OOM"})
    kinds = [e.kind for e in w.events()]
    assert kinds == ["worker_started", "session_started", "submission", "finding", "crash"]
    seqs = [e.seq for e in w.events()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e.kind for e in w.events(since=seqs[2])] == ["finding", "crash"]
    assert [e.kind for e in w.events(kind="crash")] == ["crash"]
    (me,) = w.workers()
    assert me.status == "crashed" and not me.alive


def test_event_validation_and_admin(hub) -> None:
    w, other = hub.client("w1"), hub.client("w2")
    with pytest.raises(HubError) as e:
        w.post_event("finding", {})  # hub-written kinds cannot be posted
    assert e.value.status == 422
    with pytest.raises(HubError, match="submission_id"):
        w.post_event("submission", {})
    with pytest.raises(HubError, match="not one of your submissions"):
        other.post_event("submission", {"submission_id": hub.submit(w)})
    with pytest.raises(HubError) as e:
        w.post_event("stop", worker_id="w2")  # only an admin acts for another worker
    assert e.value.status == 403
    admin = hub.client("orchestrator", "ops", "admin")
    admin.register({"agent": "llm"}, worker_id="w7", team="t1")
    admin.post_event("stop", worker_id="w7")
    assert {x.worker_id: x.status for x in w.workers()}["w7"] == "stopped"
    assert any(e.worker_id == "w7" and e.kind == "stop" for e in admin.events())
    with pytest.raises(HubError, match="not registered"):
        admin.post_event("crash", worker_id="ghost")


def test_hub_refuses_a_revoked_token_on_the_next_request(make_hub) -> None:  # type: ignore[no-untyped-def]
    """A revocation by another process (``aar token revoke``) applies at once, despite the token cache."""
    from aar.auth import TokenStore
    from aar.db import make_engine

    hub = make_hub()  # default token_cache_s: 30 s
    client = hub.client("gone", "t9")
    client.findings()
    TokenStore(make_engine(f"sqlite:///{hub.home / 'auth.db'}")).revoke_worker("gone")
    with pytest.raises(HubError) as err:
        client.findings()
    assert err.value.status == 401
