"""Findings over live HTTP: post, validation, released scores, comments, votes, full-text search, teams."""

from __future__ import annotations

import httpx
import pytest

from aar.hub.client import HubError


def test_post_and_read_finding(hub) -> None:
    a = hub.client("w1")
    f = a.post_finding({"title": "Confidence weighting helps", "body": "Weighting by |p-0.5| **helps**.",
                        "kind": "insight", "family": "confidence-weighting", "tags": ["weights", "aux-loss"],
                        "config": {"alpha": 0.5}})
    assert f.id >= 1 and f.author == "w1" and f.team == "t1" and f.family == "confidence_weighting"
    got = a.finding(f.id)
    assert got.title == f.title and got.comments == [] and got.my_vote == 0 and got.config == {"alpha": 0.5}


def test_result_scores_come_from_eval_server(hub) -> None:
    a = hub.client("w1")
    sid = hub.submit(a)
    with pytest.raises(HubError, match="must cite"):
        a.post_finding({"title": "r", "kind": "result"})
    f = a.post_finding({"title": "Ensemble of 3", "kind": "result", "submission_ids": [sid]})
    assert f.scores[sid]["released"]["pgr"]["combined"] == 0.3
    assert "note" not in f.scores[sid] and "budget" not in f.scores[sid]  # only released fields kept
    # a worker cannot cite someone else's submission, nor type scores in
    b = hub.client("w2")
    with pytest.raises(HubError, match="not one of your submissions") as e:
        b.post_finding({"title": "steal", "kind": "result", "submission_ids": [sid]})
    assert e.value.status == 400
    with pytest.raises(HubError) as e:
        b.post_finding({"title": "typed", "kind": "insight", "scores": {"x": 1}})
    assert e.value.status == 422 and "scores" in str(e.value)


@pytest.mark.parametrize("body,field", [
    ({"title": "", "kind": "insight"}, "title"),
    ({"title": "x", "kind": "bogus"}, "kind"),
    ({"title": "x", "kind": "insight", "family": "astrology"}, "family"),
    ({"title": "x", "kind": "insight", "tags": ["has space"]}, "tags"),
    ({"title": "x", "kind": "insight", "parents": [999]}, "parent finding 999"),
    ({"title": "x", "kind": "insight", "snapshot_id": "ab" * 32}, "snapshot"),
    ({"title": "x", "kind": "insight", "snapshot_id": "../etc"}, "snapshot_id"),
    ({"title": "x" * 201, "kind": "insight"}, "title"),
])
def test_validation_is_clear_4xx(hub, body, field) -> None:
    with pytest.raises(HubError) as e:
        hub.client("w1").post_finding(body)
    assert e.value.status in (400, 422) and field in str(e.value)


def test_auth_required_everywhere(hub) -> None:
    for method, path in [("GET", "/v1/findings"), ("POST", "/v1/findings"), ("GET", "/v1/findings/1"),
                         ("GET", "/v1/findings/search?q=x"), ("POST", "/v1/snapshots"),
                         ("GET", "/v1/snapshots"),
                         ("GET", "/v1/workers"), ("POST", "/v1/events"), ("GET", "/v1/events")]:
        for headers in ({}, {"Authorization": "Bearer aar_nope"}, {"Authorization": "Basic x"}):
            r = httpx.request(method, hub.url + path, headers=headers)
            assert r.status_code == 401, (method, path, headers)
    assert httpx.get(hub.url + "/healthz").json() == {"status": "ok"}


def test_oversized_body_is_413(hub) -> None:
    r = httpx.post(hub.url + "/v1/findings", content=b"x" * (3 * 2**20),
                   headers={"Authorization": f"Bearer {hub.tokens.create('w9', 't1')}",
                            "Content-Type": "application/json"})
    assert r.status_code == 413


def test_comments_votes_and_revisions(hub) -> None:
    a, b, c = hub.client("w1"), hub.client("w2"), hub.client("w3")
    f = a.post_finding({"title": "Label smoothing", "kind": "hypothesis"})
    cm = b.comment(f.id, "Tried it: no gain at 0.1.")
    assert cm.author == "w2"
    assert b.vote(f.id, 1).votes == 1
    assert c.vote(f.id, -1).votes == 0
    assert c.vote(f.id, 1).votes == 2
    assert b.vote(f.id, 0).votes == 1
    with pytest.raises(HubError, match="own finding"):
        a.vote(f.id, 1)
    got = c.finding(f.id)
    assert got.n_comments == 1 and got.comments and got.comments[0].body.startswith("Tried")
    assert got.my_vote == 1 and got.rev > f.rev
    page = a.findings(since_rev=f.rev)  # the change feed carries the updated finding
    assert [x.id for x in page.findings] == [f.id]


def test_search_fts(hub) -> None:
    a = hub.client("w1")
    a.post_finding({"title": "Self-training with pseudo-labels", "kind": "result" if False else "insight",
                    "body": "Iterating pseudo labelling for three rounds overfits the weak errors."})
    a.post_finding({"title": "Ensembles are robust", "kind": "insight", "body": "Bagging five students."})
    a.post_finding({"title": "Negative: curriculum", "kind": "negative", "family": "curriculum",
                    "body": "Easy-to-hard ordering gave nothing."})
    hits = a.search("pseudo label").hits
    assert hits and hits[0].finding.title.startswith("Self-training") and "**" in hits[0].snippet
    assert a.search("ensemble").hits[0].finding.title == "Ensembles are robust"  # stemming / prefix
    assert a.search('curriculum" OR NEAR(').hits[0].finding.kind == "negative"  # FTS syntax is inert
    assert a.search("nonexistentword").hits == []
    assert a.search("bagging zebra").hits[0].finding.title == "Ensembles are robust"  # any-word fallback


def test_teams_are_isolated_admin_sees_all(hub) -> None:
    a, other = hub.client("w1", "t1"), hub.client("x1", "t2")
    f = a.post_finding({"title": "secret sauce", "kind": "insight"})
    with pytest.raises(HubError) as e:
        other.finding(f.id)
    assert e.value.status == 404
    assert other.search("secret").hits == [] and other.findings().findings == []
    with pytest.raises(HubError):
        other.comment(f.id, "hi")
    with pytest.raises(HubError, match="parent finding"):
        other.post_finding({"title": "child", "kind": "insight", "parents": [f.id]})
    admin = hub.client("root", "ops", "admin")
    assert [x.id for x in admin.findings().findings] == [f.id]
