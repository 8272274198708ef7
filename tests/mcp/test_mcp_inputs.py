"""Inputs the MCP tools read from a workspace: predictions files (JSON / JSONL) and path confinement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aar.hub.snapshots import SnapshotError, resolve_inside
from aar.mcp import McpConfig, ToolFailure, WorkerTools, load_predictions


def test_predictions_formats(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": 0.2, "y": 0.9}))
    (tmp_path / "b.json").write_text(json.dumps({"predictions": {"x": 0.2}}))
    (tmp_path / "c.jsonl").write_text('{"id": "x", "prob": 0.2}\n\n{"id": "y", "p": 0.7}\n')
    assert load_predictions(tmp_path / "a.json") == {"x": 0.2, "y": 0.9}
    assert load_predictions(tmp_path / "b.json") == {"x": 0.2}
    assert load_predictions(tmp_path / "c.jsonl") == {"x": 0.2, "y": 0.7}
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "bad.jsonl").write_text('{"item": "x"}\n')
    (tmp_path / "list.json").write_text("[0.1, 0.2]")
    for name, msg in [("bad.json", "not valid JSON"), ("bad.jsonl", "line 1"), ("list.json", "object"),
                      ("missing.json", "does not exist")]:
        with pytest.raises(ToolFailure, match=msg):
            load_predictions(tmp_path / name)


def test_paths_stay_in_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "escape").symlink_to(tmp_path)
    assert resolve_inside(ws, "sub/dir") == ws.resolve() / "sub" / "dir"
    for bad in ("..", "../x", "/etc", "escape/x"):
        with pytest.raises(SnapshotError, match="outside the workspace"):
            resolve_inside(ws, bad)


def test_tools_need_a_token_and_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="token"):
        WorkerTools(McpConfig(token="", workspace=tmp_path))
    with pytest.raises(ValueError, match="not a directory"):
        WorkerTools(McpConfig(token="aar_x", workspace=tmp_path / "none"))
