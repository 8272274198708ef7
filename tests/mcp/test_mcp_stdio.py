"""The SDK's stdio client drives `aar mcp` against a live hub and eval server: every tool, effects, errors."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from aar.hub.client import HubClient

mcp_client = pytest.importorskip("mcp.client.stdio")
from mcp.client.session import ClientSession  # noqa: E402

AAR = shutil.which("aar", path=str(Path(sys.executable).parent)) or shutil.which("aar") or "aar"
TOOLS = {"submit_predictions", "get_leaderboard", "share_finding", "search_findings", "read_finding",
         "comment_on_finding", "vote_on_finding", "upload_snapshot", "list_snapshots", "download_snapshot"}


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    return data.get("result", data) if isinstance(data, dict) else data


def error_text(result: Any) -> str:
    assert result.is_error, result
    return str(result.content[0].text)


def front_matter(path: Path) -> dict[str, Any]:
    lines = path.read_text().split("\n")
    return {k: json.loads(v) for k, _, v in (ln.partition(": ") for ln in lines[1:lines.index("---", 1)])}


def test_mcp_tools_end_to_end(services, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "method.py").write_text("def fit():\n    return 'ensemble'\n")
    (ws / ".venv").mkdir()
    (ws / ".venv" / "big.bin").write_bytes(b"\0" * 1000)
    labels = services["labels"]
    good = {i: (0.8 if y == 1 else 0.2) for i, y in labels.items()}
    (ws / "preds.json").write_text(json.dumps({"predictions": good}))
    token = services["tokens"].create("w1", "t1")
    other = HubClient(services["hub"], services["tokens"].create("w2", "t1"))
    admin = HubClient(services["hub"], services["tokens"].create("root", "ops", "admin"))
    params = mcp_client.StdioServerParameters(
        command=AAR, args=["mcp", "--workspace", str(ws), "--hub-url", services["hub"],
                           "--eval-url", services["eval"]],
        env={"AAR_WORKER_TOKEN": token, "AAR_HOME": str(services["home"])})

    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with mcp_client.stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            listed = await s.list_tools()
            assert {t.name for t in listed.tools} == TOOLS
            call = s.call_tool

            # submissions: inline and from a workspace file; bad input is a tool error, not a crash
            sub1 = structured(await call("submit_predictions",
                                         {"testbed": "tiny", "predictions": good, "seed": 1}))
            sub2 = structured(await call("submit_predictions",
                                         {"testbed": "tiny", "predictions_file": "preds.json", "seed": 2}))
            assert sub1["released"]["pgr"]["combined"] is not None and sub2["id"] != sub1["id"]
            seen["subs"] = [sub1["id"], sub2["id"]]
            assert "both" not in error_text(await call("submit_predictions", {"testbed": "tiny"}))
            assert "outside the workspace" in error_text(await call(
                "submit_predictions", {"testbed": "tiny", "predictions_file": "../../etc/passwd"}))
            assert "eval server" in error_text(await call("submit_predictions",
                                                          {"testbed": "nope", "predictions": {"a": 0.5}}))
            board = structured(await call("get_leaderboard", {"testbed": "tiny"}))
            assert board["team"] == "t1" and board["boards"][0]["workers"][0]["worker_id"] == "w1"

            # snapshot, then a result finding citing the submission and the snapshot
            snap = structured(await call("upload_snapshot", {"note": "ensemble v1"}))
            assert snap["n_files"] == 2 and ".venv/" in snap["skipped"]
            shared = structured(await call("share_finding", {
                "title": "Ensemble of students", "kind": "result", "family": "ensemble",
                "body": "Averaging three students beats one.", "submission_ids": [sub1["id"]],
                "snapshot_id": snap["id"], "tags": ["ensemble"]}))
            local = ws / shared["file"]
            assert local.exists()  # synced at once
            fm = front_matter(local)
            assert fm["scores"][sub1["id"]]["released"] == sub1["released"] and fm["snapshot"] == snap["id"]
            assert "cite" in error_text(await call("share_finding", {"title": "x", "kind": "result"}))

            # another worker's post shows up in findings/ within seconds (background sync)
            t0 = time.monotonic()
            theirs = other.post_finding({"title": "Curriculum does nothing", "kind": "negative",
                                         "family": "curriculum", "body": "Easy-to-hard gave +0.0 PGR."})
            path = ws / "findings" / f"f{theirs.id:05d}-curriculum-does-nothing.md"
            while not path.exists():
                assert time.monotonic() - t0 < 5, "sync too slow"
                await anyio.sleep(0.02)
            print(f"\nsync lag of another worker's post: {(time.monotonic() - t0) * 1000:.0f} ms")
            assert "INDEX.md" in {p.name for p in (ws / "findings").iterdir()}

            hits = structured(await call("search_findings", {"query": "curriculum easy"}))["hits"]
            assert hits[0]["id"] == theirs.id and hits[0]["file"].startswith("findings/")
            assert structured(await call("comment_on_finding", {"finding_id": theirs.id, "body": "Agreed."}))
            voted = structured(await call("vote_on_finding", {"finding_id": theirs.id, "value": 1}))
            assert voted["votes"] == 1
            read = structured(await call("read_finding", {"finding_id": theirs.id}))
            assert read["comments"][0]["body"] == "Agreed." and read["my_vote"] == 1
            assert "not found" in error_text(await call("read_finding", {"finding_id": 99999}))

            listed_snaps = structured(await call("list_snapshots", {}))["snapshots"]
            assert [x["id"] for x in listed_snaps] == [snap["id"]]
            got = structured(await call("download_snapshot", {"snapshot_id": snap["id"]}))
            assert (ws / got["target"] / "src" / "method.py").read_text().startswith("def fit")
            assert "outside the workspace" in error_text(await call(
                "download_snapshot", {"snapshot_id": snap["id"], "target": "../escape"}))
            assert not (tmp_path / "escape").exists()
            # still alive after all those errors
            assert structured(await call("search_findings", {"query": "ensemble"}))["hits"]

    anyio.run(scenario)

    # effects in the stores, seen by an admin
    events = admin.events(kind="submission")
    assert [e.data["submission_id"] for e in events] == seen["subs"]
    assert all(e.worker_id == "w1" and "released" in e.data["scores"] for e in events)
    findings = admin.findings().findings
    assert {f.author for f in findings} == {"w1", "w2"}
    (snap_meta,) = admin.snapshots()
    assert snap_meta.worker_id == "w1" and snap_meta.note == "ensemble v1"
