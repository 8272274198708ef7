"""A hostile worker swaps workspace folders for symlinks (renameat2) while its host-side tools read them.

The swap loop runs inside the worker's own sandbox (bwrap where it works, else a plain process: the
files are the same), as a ``claude`` worker's background command would, while the host-side MCP
tools are called. Before the fix, ``upload_snapshot`` packed ``AAR_HOME/labels`` and
``submit_predictions`` read a teammate's file or blocked on a FIFO.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aar.hub.snapshots import SnapshotLimits, iter_members
from aar.mcp import McpConfig, ToolFailure, WorkerTools
from aar.sandbox import Limits, get_sandbox, worker_config

SWAPPER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b, seconds = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
open("swapper.started", "w").close()
n, end = 0, time.time() + seconds
while time.time() < end and not os.path.exists("swapper.stop"):
    if libc.renameat2(-100, a, -100, b, 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
        n += 1
print(n)
"""


def _sandbox_kind() -> str:
    from aar.sandbox.bwrap import bwrap_problem

    return "local" if bwrap_problem(os.geteuid() == 0) else "bwrap"


@contextmanager
def swapping(ws: Path, home: Path, a: str, b: str, seconds: float = 60) -> Iterator[dict[str, Any]]:
    """Exchange ``ws/a`` and ``ws/b`` in a tight loop inside the worker's sandbox while the body runs."""
    (ws / "swapper.py").write_text(SWAPPER)
    for flag in ("swapper.started", "swapper.stop"):
        (ws / flag).unlink(missing_ok=True)
    box = get_sandbox(_sandbox_kind(), worker_config(ws, aar_home=home, limits=Limits(wall_s=seconds + 30)))
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(result=box.exec(
        ["python3", "swapper.py", a, b, str(seconds)])), daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not (ws / "swapper.started").exists():
        assert time.time() < deadline, "the swapper did not start"
        time.sleep(0.05)
    try:
        yield out
    finally:
        (ws / "swapper.stop").touch()
        thread.join(60)
        box.close()
    res = out["result"]
    assert res.exit_code == 0, res.stderr
    out["swaps"] = int(res.stdout.split()[-1])


def worker_workspace(home: Path, worker: str) -> Path:
    ws = home / "runs" / "t1" / "workers" / worker / "workspace"
    ws.mkdir(parents=True, exist_ok=True)
    return ws


def test_upload_snapshot_never_packs_through_a_swapped_folder(services: dict[str, Any]) -> None:
    """``x/labels`` is a real folder, then ``x`` is a link to AAR_HOME: at least 150 calls, 10 of them packed."""
    home: Path = services["home"]
    assert (home / "labels").is_dir()  # the label store the attack aims at
    secret = next(p for p in (home / "labels").rglob("*.jsonl")).read_bytes()
    ws = worker_workspace(home, "w1")
    (ws / "x" / "labels").mkdir(parents=True)
    (ws / "x" / "labels" / "mine.py").write_text("print('my idea')\n")
    (ws / "xl").symlink_to("../../../../..")  # relative: resolved by whoever follows it, host side = AAR_HOME
    tools = WorkerTools(McpConfig(token=services["tokens"].create("w1", "t1"), hub_url=services["hub"],
                                  eval_url=services["eval"], workspace=ws, sync=False, state_dir=home / "mcp"))
    packed, refused, leaked, reasons = 0, 0, 0, set()
    with swapping(ws, home, "x", "xl") as swap:
        while (packed + refused < 150 or packed < 10) and packed + refused < 3000:
            try:
                meta = tools.upload_snapshot(path="x/labels")
            except (ToolFailure, ValueError, OSError) as exc:
                reasons.add(str(exc))
                refused += 1
                continue
            packed += 1
            data = tools.hub.download_snapshot(meta["id"])
            names = [name for _m, name, _d in iter_members(io.BytesIO(data), SnapshotLimits())]
            leaked += names != ["mine.py"] or secret[:40] in data
    assert swap["swaps"] > 1000
    assert leaked == 0, f"{leaked} of {packed} snapshots held files from outside the workspace"
    assert packed >= 10 and refused > 0  # calls landed on both sides of the swap
    assert all("links are not followed" in r for r in reasons), reasons


def recording_tools(services: dict[str, Any], ws: Path) -> tuple[WorkerTools, list[dict[str, float]]]:
    """Worker w1's tools whose eval client records the predictions it was given instead of sending them."""
    home: Path = services["home"]
    tools = WorkerTools(McpConfig(token=services["tokens"].create("w1", "t1"), hub_url=services["hub"],
                                  eval_url=services["eval"], workspace=ws, sync=False, state_dir=home / "mcp"))
    read: list[dict[str, float]] = []

    def record(_token: str, _testbed: str, predictions: dict[str, float], *args: Any) -> Any:
        read.append(predictions)
        raise ToolFailure("recorded")

    tools.evals.submit = record  # type: ignore[method-assign]
    return tools, read


def submit_many(tools: WorkerTools, rel: str, n: int, errors: list[str], read: list[dict[str, float]],
                most: int = 3000) -> None:
    """At least ``n`` calls, and on until 10 of them read a file (calls on both sides of the swap; a loaded
    machine can keep one side for a while), but never more than ``most``."""
    calls = 0
    while (calls < n or len(read) < 10) and calls < most:
        calls += 1
        try:
            tools.submit_predictions("tiny", predictions_file=rel)
        except (ToolFailure, ValueError, OSError) as exc:
            errors.append(str(exc))


MINE, THEIRS = {"a": 0.11}, {"a": 0.93}


def test_submit_predictions_never_reads_a_teammates_file(services: dict[str, Any]) -> None:
    """``p/preds.json`` is the worker's own, then ``p`` is a link to a teammate's output folder."""
    home: Path = services["home"]
    ws, mate = worker_workspace(home, "w1"), worker_workspace(home, "w2")
    (mate / "out").mkdir()
    (mate / "out" / "preds.json").write_text(json.dumps(THEIRS))
    (ws / "p").mkdir()
    (ws / "p" / "preds.json").write_text(json.dumps(MINE))
    (ws / "pl").symlink_to("../../w2/workspace/out")
    tools, read = recording_tools(services, ws)
    errors: list[str] = []
    with swapping(ws, home, "p", "pl"):
        submit_many(tools, "p/preds.json", 150, errors, read)
    assert sum(r == THEIRS for r in read) == 0, f"{sum(r == THEIRS for r in read)} reads of a teammate's file"
    assert read and all(r == MINE for r in read), set(errors)
    assert all(e == "recorded" or "links are not followed" in e for e in errors), set(errors)


def test_submit_predictions_never_blocks_on_a_fifo(services: dict[str, Any]) -> None:
    """``q/preds.json`` is a regular file, then (folders exchanged) a FIFO nobody writes to."""
    home: Path = services["home"]
    ws = worker_workspace(home, "w1")
    (ws / "q").mkdir()
    (ws / "q" / "preds.json").write_text(json.dumps(MINE))
    (ws / "ql").mkdir()
    os.mkfifo(ws / "ql" / "preds.json")
    tools, read = recording_tools(services, ws)
    errors: list[str] = []
    with swapping(ws, home, "q", "ql"):
        caller = threading.Thread(target=submit_many, args=(tools, "q/preds.json", 150, errors, read), daemon=True)
        caller.start()
        caller.join(120)
        hung = caller.is_alive()
    if hung:  # release the blocked reader so the test process can end
        fifo = next(p for p in (ws / "q" / "preds.json", ws / "ql" / "preds.json") if p.is_fifo())
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not hung, "submit_predictions blocked on a FIFO swapped in after its checks"
    assert read and all(r == MINE for r in read), set(errors)
    assert any("not a regular file" in e for e in errors), set(errors)
