"""The hub's store on SQLite and PostgreSQL: findings, comments, votes, search, snapshots, workers, events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aar.db import make_engine
from aar.hub.models import FindingIn, SnapshotMeta
from aar.hub.store import HubStore, Invalid, NotFound


def snap(sha: str, parent_id: str | None = None, finding_id: int | None = None) -> SnapshotMeta:
    return SnapshotMeta(id=sha, team="t1", worker_id="w1", note="", parent_id=parent_id, finding_id=finding_id,
                        size=10, unpacked_size=20, n_files=1, created_at=datetime.now(UTC))


def test_store_operations(db_url: str) -> None:
    store = HubStore(make_engine(db_url))
    f1 = store.create_finding(FindingIn(title="Confidence weighting helps", kind="insight",
                                        body="Weighting the loss by confidence raised PGR.",
                                        family="confidence_weighting", tags=["loss"]), "t1", "w1", {})
    f2 = store.create_finding(FindingIn(title="Ensembles of seeds", kind="hypothesis", parents=[f1.id]),
                              "t1", "w2", {})
    store.create_finding(FindingIn(title="Other team's confidence trick", kind="insight"), "t2", "x", {})
    assert f2.parents == [f1.id] and f2.rev > f1.rev
    store.add_comment(f1.id, "t1", "w2", "Replicated with seed 2.")
    assert store.vote(f1.id, "t1", "w2", 1).votes == 1
    got = store.get_finding(f1.id, "t1", viewer="w2")
    assert got.n_comments == 1 and got.votes == 1 and got.comments and got.comments[0].author == "w2"
    with pytest.raises(NotFound):
        store.get_finding(f1.id, "t2")  # another team's finding is invisible
    hits = store.search("confidence", "t1")
    assert [h[0].id for h in hits] == [f1.id]  # full text, team-scoped
    assert {f.id for f in store.list_findings("t1", since_rev=0)} == {f1.id, f2.id}
    a = store.add_snapshot(snap("a" * 64))
    b = store.add_snapshot(snap("b" * 64, parent_id="a" * 64, finding_id=f1.id))
    assert a.created and b.parent_id == a.id and not store.add_snapshot(snap("a" * 64)).created
    with pytest.raises(Invalid):
        store.add_snapshot(snap("c" * 64, parent_id="f" * 64))
    assert [s.id for s in store.list_snapshots("t1")] == [b.id, a.id]
    store.register_worker("w1", "t1", {"agent": "evolve"})
    assert store.heartbeat("w1", "t1", "thinking").status == "thinking"
    store.post_event("t1", "w1", "session_started", {"session": 1})
    kinds = [e.kind for e in store.list_events("t1")]
    assert {"finding", "comment", "snapshot", "session_started"} <= set(kinds)
    seqs = [e.seq for e in store.list_events("t1")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_the_feed_carries_the_newest_comments_of_each_finding(db_url: str) -> None:
    """Before: every sync pass re-fetched and re-rendered every comment of a changed finding (quadratic)."""
    from aar.hub.store import FEED_COMMENTS
    from aar.hub.sync import render_finding

    store = HubStore(make_engine(db_url))
    busy = store.create_finding(FindingIn(title="busy", kind="insight"), "t1", "w1", {})
    quiet = store.create_finding(FindingIn(title="quiet", kind="insight"), "t1", "w1", {})
    for i in range(FEED_COMMENTS + 7):
        store.add_comment(busy.id, "t1", "w2", f"comment {i}")
    store.add_comment(quiet.id, "t1", "w2", "only one")
    feed = {f.id: f for f in store.list_findings("t1", with_comments=True)}
    assert [c.body for c in feed[busy.id].comments] == [f"comment {i}" for i in range(7, FEED_COMMENTS + 7)]
    assert feed[busy.id].n_comments == FEED_COMMENTS + 7 and [c.body for c in feed[quiet.id].comments] == ["only one"]
    assert len(store.get_finding(busy.id, "t1").comments) == FEED_COMMENTS + 7  # read_finding has them all
    assert f"newest {FEED_COMMENTS} of {FEED_COMMENTS + 7} comments" in render_finding(feed[busy.id])
