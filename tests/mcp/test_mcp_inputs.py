"""Inputs the MCP tools read from a workspace: predictions files (JSON / JSONL) and path confinement."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aar.mcp import MAX_PREDICTIONS_FILE, McpConfig, ToolFailure, WorkerTools, load_predictions
from aar.sandbox.files import UnsafePathError, open_dir_beneath, relative_parts


def test_predictions_formats(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": 0.2, "y": 0.9}))
    (tmp_path / "b.json").write_text(json.dumps({"predictions": {"x": 0.2}}))
    (tmp_path / "c.jsonl").write_text('{"id": "x", "prob": 0.2}\n\n{"id": "y", "p": 0.7}\n')
    assert load_predictions(tmp_path, "a.json") == {"x": 0.2, "y": 0.9}
    assert load_predictions(tmp_path, "b.json") == {"x": 0.2}
    assert load_predictions(tmp_path, "c.jsonl") == {"x": 0.2, "y": 0.7}
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "bad.jsonl").write_text('{"item": "x"}\n')
    (tmp_path / "list.json").write_text("[0.1, 0.2]")
    for name, msg in [("bad.json", "not valid JSON"), ("bad.jsonl", "line 1"), ("list.json", "object")]:
        with pytest.raises(ToolFailure, match=msg):
            load_predictions(tmp_path, name)


def test_predictions_file_is_a_capped_regular_file(tmp_path: Path) -> None:
    """Missing files, links (to a teammate's file, to /dev/zero), FIFOs and oversized files are refused."""
    (tmp_path / "theirs.json").write_text('{"x": 0.9}')
    os.symlink(tmp_path / "theirs.json", tmp_path / "link.json")
    os.symlink("/dev/zero", tmp_path / "zero.json")
    os.mkfifo(tmp_path / "fifo.json")
    with open(tmp_path / "big.json", "wb") as f:
        f.truncate(MAX_PREDICTIONS_FILE + 1)  # sparse: apparent size counts
    (tmp_path / "dir").mkdir()
    os.symlink(tmp_path / "dir", tmp_path / "linkdir")
    (tmp_path / "dir" / "p.json").write_text('{"x": 0.1}')
    for name, msg in [("missing.json", "No such file"), ("link.json", "links are not followed"),
                      ("zero.json", "links are not followed"), ("fifo.json", "not a regular file"),
                      ("big.json", "cap"), ("linkdir/p.json", "links are not followed"),
                      ("../theirs.json", "outside the workspace"), ("/etc/passwd", "outside the workspace")]:
        with pytest.raises(UnsafePathError, match=msg):
            load_predictions(tmp_path, name)
    assert load_predictions(tmp_path, "dir/p.json") == {"x": 0.1}


def test_paths_stay_in_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "sub" / "dir").mkdir(parents=True)
    (ws / "escape").symlink_to(tmp_path)
    assert relative_parts("./sub//dir/") == ["sub", "dir"] and relative_parts(".", allow_root=True) == []
    fd = open_dir_beneath(ws, "sub/dir")
    try:
        assert os.path.samestat(os.fstat(fd), (ws / "sub" / "dir").stat())
    finally:
        os.close(fd)
    for bad in ("..", "../x", "/etc", "sub/../../x"):
        with pytest.raises(UnsafePathError, match="outside the workspace"):
            relative_parts(bad)
    for linked in ("escape", "escape/x", "escape/ws/sub"):
        with pytest.raises(UnsafePathError, match="links are not followed"):
            open_dir_beneath(ws, linked)


def test_tools_need_a_token_and_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="token"):
        WorkerTools(McpConfig(token="", workspace=tmp_path))
    with pytest.raises(ValueError, match="not a directory"):
        WorkerTools(McpConfig(token="aar_x", workspace=tmp_path / "none"))


def test_absolute_paths_inside_the_workspace_are_accepted_lexically(tmp_path: Path) -> None:
    """Claude Code writes absolute paths; one inside the workspace works, a link on the way still fails."""
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    (ws / "out" / "p.json").write_text('{"x": 0.3}')
    (ws / "link").symlink_to(ws / "out")
    tools = WorkerTools(McpConfig(token="aar_x", workspace=ws, sync=False, state_dir=tmp_path / "state"))
    rel = tools._relative(str(ws.resolve() / "out" / "p.json"))
    assert rel == "out/p.json" and load_predictions(ws, rel) == {"x": 0.3}
    assert tools._relative("/etc/passwd") == "/etc/passwd"  # still refused by the walk: outside
    with pytest.raises(UnsafePathError, match="outside the workspace"):
        load_predictions(ws, tools._relative(str(ws.resolve() / ".." / "ws" / "out" / "p.json")))
    with pytest.raises(UnsafePathError, match="links are not followed"):
        load_predictions(ws, tools._relative(str(ws.resolve() / "link" / "p.json")))
