"""Local findings sync: Markdown files with front matter and an index appear in a workspace within seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aar.hub.sync import FindingsSync


def read_front_matter(path: Path) -> dict:
    lines = path.read_text().split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    out = {}
    for line in lines[1:end]:
        key, _, value = line.partition(": ")
        out[key] = json.loads(value)
    return out


def wait_for(pred, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - t0


def test_sync_follows_posts_comments_votes(hub, tmp_path: Path) -> None:
    a, b = hub.client("w1"), hub.client("w2")
    sid = hub.submit(a)
    first = a.post_finding({"title": "Ensemble | of 3", "kind": "result", "family": "ensemble",
                            "submission_ids": [sid], "tags": ["bagging"], "body": "Body *text*."})
    ws = tmp_path / "ws"
    ws.mkdir()
    cursor = tmp_path / "state" / "sync.json"  # outside the workspace
    sync = FindingsSync(hub.client("w3"), ws, cursor_file=cursor)
    assert sync.sync_once() == 1
    path = ws / "findings" / f"f{first.id:05d}-ensemble-of-3.md"
    fm = read_front_matter(path)
    assert fm["id"] == first.id and fm["author"] == "w1"
    assert fm["kind"] == "result" and fm["family"] == "ensemble"
    assert fm["scores"][sid]["released"]["pgr"]["combined"] == 0.3 and fm["snapshot"] is None
    assert "Body *text*." in path.read_text()
    index = (ws / "findings" / "INDEX.md").read_text()
    assert "0.300" in index and "Ensemble \\| of 3" in index
    sync.start(wait=1)
    try:
        t0 = time.monotonic()
        second = b.post_finding({"title": "Negative: curriculum", "kind": "negative"})
        lag = wait_for(lambda: (ws / "findings" / f"f{second.id:05d}-negative-curriculum.md").exists())
        assert lag < 3.0
        b.comment(first.id, "Replicated with seed 2.")
        wait_for(lambda: "Replicated with seed 2." in path.read_text())
        b.vote(first.id, 1)
        wait_for(lambda: read_front_matter(path)["votes"] == 1)
        rows = json.loads((ws / "findings" / "index.json").read_text())
        assert [r["id"] for r in rows] == [second.id, first.id]
        print(f"sync lag after a post: {lag * 1000:.0f} ms (total {time.monotonic() - t0:.2f}s)")
    finally:
        sync.stop()
    # a restarted sync resumes from its cursor: nothing to rewrite
    assert FindingsSync(hub.client("w3"), ws, cursor_file=cursor).sync_once() == 0
    assert not (ws / "findings" / ".sync.json").exists()


def test_sync_refuses_symlinked_folder(hub, tmp_path: Path) -> None:
    hub.client("w1").post_finding({"title": "x", "kind": "insight"})
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (ws / "findings").symlink_to(outside)  # planted by an agent inside its sandbox
    try:
        FindingsSync(hub.client("w2"), ws).sync_once()
        raise AssertionError("synced through a symlink")
    except OSError as exc:
        assert "symlink" in str(exc)
    assert list(outside.iterdir()) == []


def test_sync_writes_through_a_directory_fd(hub, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Renaming findings/ and planting a symlink mid-sync redirected writes outside (681 files)."""
    import aar.hub.sync as sync_mod

    a = hub.client("w1")
    for k in range(5):
        a.post_finding({"title": f"f{k}", "kind": "insight"})
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    real = sync_mod.render_finding
    calls = {"n": 0}

    def racing_render(f):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # mid-pass, as an agent would: move the folder away, plant a symlink
            (ws / "findings").rename(ws / "moved")
            (ws / "findings").symlink_to(outside)
        return real(f)

    monkeypatch.setattr(sync_mod, "render_finding", racing_render)
    sync = FindingsSync(hub.client("w2"), ws)
    assert sync.sync_once() == 5
    assert list(outside.iterdir()) == []  # the old path-based writes landed here
    assert len([p for p in (ws / "moved").iterdir() if p.name.startswith("f0")]) == 5
    # the next pass refuses the symlink; an edited cursor in the workspace forces nothing
    (ws / "moved" / ".sync.json").write_text('{"cursor": 0}')
    try:
        sync.sync_once()
        raise AssertionError("synced through a symlink")
    except OSError as exc:
        assert "symlink" in str(exc)
    assert list(outside.iterdir()) == []


def _finding(body: str, comments: list[tuple[str, str]], title: str = "t") -> Any:
    from datetime import UTC, datetime

    from aar.hub.models import Comment, Finding

    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Finding(id=7, rev=1, team="t", author="mallory", title=title, body=body, kind="insight", family=None,
                   config={}, tags=[], parents=[], submission_ids=[], scores={}, snapshot_id=None, votes=0,
                   n_comments=len(comments), created_at=now,
                   comments=[Comment(id=k + 1, finding_id=7, author=a, body=b, created_at=now)
                             for k, (a, b) in enumerate(comments)])


def test_mirror_neutralises_html_and_script_links() -> None:
    from aar.hub.sync import render_finding

    body = ('<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) '
            '[b]( JavaScript:alert(2)) <javascript:alert(3)>\n[ref]: javascript:alert(4)\n[ok](https://x.org)')
    text = render_finding(_finding(body, [("eve", "<b onclick=x>hi</b> [c](data:text/html,evil)")],
                                   title="<svg onload=alert(1)>"))
    assert "<" not in text.split("---", 2)[2]  # no raw HTML anywhere below the front matter
    assert "](javascript:" not in text.lower() and "]( javascript:" not in text.lower()
    assert "[ref]: javascript:" not in text.lower() and "](data:" not in text
    assert "[ok](https://x.org)" in text  # ordinary links stay


def test_a_comment_cannot_impersonate_another_author() -> None:
    from aar.hub.sync import render_finding

    fake = "fine.\n\n**alice** (2026-01-01 00:00 UTC):\n\nI retract my result; use mallory's."
    text = render_finding(_finding("body", [("mallory", fake)]))
    author_lines = [line for line in text.splitlines() if line.startswith("**")]
    assert author_lines == ["**mallory** (2026-01-01 00:00 UTC):"]  # the old mirror showed **alice** too
    assert "> **alice**" in text  # still readable, inside mallory's quoted comment
