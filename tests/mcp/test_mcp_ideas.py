"""``submit_predictions(idea_dir=...)`` snapshots the idea's folder with the submission: the entry point
``run.py`` must be in what was packed (a link or a later swap cannot stand in for it)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from aar.hub.client import HubClient
from aar.hub.snapshots import check_tarball
from aar.mcp import McpConfig, ToolFailure, WorkerTools
from aar.sandbox.files import UnsafePathError


def _tools(services: dict[str, Any], ws: Path, worker: str = "w1") -> tuple[WorkerTools, str]:
    home: Path = services["home"]
    token = services["tokens"].create(worker, "t1")
    tools = WorkerTools(McpConfig(token=token, hub_url=services["hub"], eval_url=services["eval"], workspace=ws,
                                  sync=False, state_dir=home / "mcp"))
    return tools, token


def _idea(ws: Path, labels: dict[str, int], name: str = "ideas/a") -> Path:
    folder = ws / name
    folder.mkdir(parents=True)
    (folder / "run.py").write_text("print('hi')\n")
    (folder / "helper.py").write_text("X = 1\n")
    (folder / "predictions.jsonl").write_text("".join(json.dumps({"id": i, "prob": 0.5}) + "\n" for i in labels))
    return folder


def test_idea_folder_is_snapshotted_with_the_submission(services: dict[str, Any], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _idea(ws, services["labels"])
    tools, token = _tools(services, ws)
    record = tmp_path / "record.jsonl"
    tools.config.record = record
    out = tools.submit_predictions("tiny", predictions_file="ideas/a/predictions.jsonl", idea_dir="ideas/a",
                                   note="half everywhere")
    assert out["snapshot_id"] and len(out["snapshot_id"]) == 64
    with HubClient(services["hub"], token) as hub:
        data = hub.download_snapshot(out["snapshot_id"])
        meta = hub.snapshots("w1", 10)[0]
    assert check_tarball(io.BytesIO(data)).names == ["helper.py", "run.py"]  # outputs left out
    assert meta.id == out["snapshot_id"] and meta.note == "idea ideas/a: half everywhere"
    assert json.loads(record.read_text())["snapshot_id"] == out["snapshot_id"]  # the researcher's record has it


def test_an_idea_folder_needs_its_entry_point(services: dict[str, Any], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    folder = _idea(ws, services["labels"])
    tools, token = _tools(services, ws)
    (folder / "run.py").unlink()
    with pytest.raises(ToolFailure, match="holds no run.py"):
        tools.submit_predictions("tiny", predictions_file="ideas/a/predictions.jsonl", idea_dir="ideas/a")
    outside = tmp_path / "outside.py"
    outside.write_text("print('not in the folder')\n")
    (folder / "run.py").symlink_to(outside)  # a link is skipped by the packer, so it cannot be the entry point
    with pytest.raises(ToolFailure, match="holds no run.py"):
        tools.submit_predictions("tiny", predictions_file="ideas/a/predictions.jsonl", idea_dir="ideas/a")
    os.symlink(ws / "ideas" / "a", ws / "ideas" / "linked")  # the folder itself through a link: refused
    (folder / "run.py").unlink()
    (folder / "run.py").write_text("print('hi')\n")
    with pytest.raises(UnsafePathError):
        tools.submit_predictions("tiny", predictions_file="ideas/a/predictions.jsonl", idea_dir="ideas/linked")
    with pytest.raises(ToolFailure, match="not both"):
        tools.submit_predictions("tiny", predictions_file="ideas/a/predictions.jsonl", idea_dir="ideas/a",
                                 snapshot_id="0" * 64)
    with HubClient(services["hub"], token) as hub:
        assert hub.snapshots("w1", 10) == []  # nothing was uploaded by a refused call
    assert all(not b["workers"] for b in tools.get_leaderboard("tiny")["boards"])  # and nothing was submitted
