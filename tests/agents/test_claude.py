"""The real Claude Code CLI through the real Agent SDK runs a session inside bwrap against a scripted
Messages API: shell, file write, submit_predictions and share_finding over MCP; the key stays outside."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from agentkit import Live, bwrap_or_skip
from fake_anthropic import Script, fake_messages_api

from aar.agents.base import Budget, Researcher, read_trajectory
from aar.agents.claude import PLACEHOLDER_KEY, ClaudeConfig
from aar.agents.providers.base import Price
from aar.agents.worker import WorkerConfig, run_worker, worker_dir
from aar.hub.client import HubClient
from aar.orchestrator.status import trajectory_flags
from aar.servicekit import serve_in_thread

pytest.importorskip("claude_agent_sdk", reason="the claude researcher needs the claude extra")

SECRET = "sk-ant-real-SECRET-4e1d"
TRAIN = ("python -c \"from aar.w2s.workbench import Workbench; wb = Workbench('wordsense'); "
         "h = wb.fit((wb.weak('strong_train') > 0.5).astype(float)); "
         "wb.save_predictions(wb.predict_tests(h), 'ideas/cc/predictions.jsonl'); print('trained')\"")
# The agent bypasses the CLI and calls the model API itself: scripted calls are refused and flagged.
DIRECT = ("python -c \"import json, os, urllib.request, urllib.error\n"
          "for m in ('claude-opus-4-1', 'claude-test'):\n"
          "    r = urllib.request.Request(os.environ['ANTHROPIC_BASE_URL'] + '/v1/messages', method='POST', "
          "data=json.dumps({'model': m, 'max_tokens': 5, 'messages': [{'role': 'user', 'content': 'hi'}]}).encode(), "
          "headers={'content-type': 'application/json'})\n"
          "    try: print(urllib.request.urlopen(r).status)\n"
          "    except urllib.error.HTTPError as e: print(e.code)\"")


def last_tool_text(body: dict[str, Any]) -> str:
    """The newest tool result (with a dollar budget the CLI appends a system note after it)."""
    for message in reversed(body["messages"]):
        for block in message["content"] if isinstance(message["content"], list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = block.get("content")
                return content if isinstance(content, str) else "".join(c.get("text", "") for c in content or [])
    return ""


def share(body: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(last_tool_text(body))
    sid = data.get("result", data)["id"]
    return {"text": "Sharing.", "tool_calls": [{"name": "mcp__aar__share_finding", "input": {
        "title": "Vanilla baseline from Claude Code", "kind": "result", "family": "distillation",
        "body": "Hard weak labels, default head.", "submission_ids": [sid]}}]}


def test_claude_code_session_in_bwrap(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_or_skip()
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    ws = worker_dir(live.settings, "t-claude", "w-claude") / "workspace"
    script = Script([
        {"text": "Looking around.", "tool_calls": [{"name": "Bash", "input": {
            "command": "env | grep -c sk-ant-real || true; ls", "description": "look"}}]},
        {"text": "Training.", "tool_calls": [{"name": "Bash", "input": {"command": TRAIN, "description": "train"}}]},
        {"text": "Calling the API myself.", "tool_calls": [{"name": "Bash", "input": {
            "command": DIRECT, "description": "direct"}}]},
        {"text": "Notes.", "tool_calls": [{"name": "Write", "input": {
            "file_path": str(ws / "NOTEBOOK.md"), "content": "# Notebook\n\n- vanilla via Claude Code\n"}}]},
        {"text": "Submitting.", "tool_calls": [{"name": "mcp__aar__submit_predictions", "input": {
            "testbed": "wordsense", "predictions_file": "ideas/cc/predictions.jsonl"}}]},
        share,
        {"text": "Done."},
    ], errors=[429, 529])
    token = live.tokens.create("w-claude", "t-claude")
    with serve_in_thread(fake_messages_api(script)) as upstream:
        cfg = WorkerConfig(kind="claude", team="t-claude", worker="w-claude", testbed="wordsense",
                           hub_url=live.hub_url, eval_url=live.eval_url,
                           budget=Budget(wall_s=600, submissions=5, sessions=1, dollars=5.0),
                           claude=ClaudeConfig(model="claude-test", upstream=upstream, max_turns=14,
                                               prices={"claude-test": Price(input=3.0, output=15.0)}))
        result = run_worker(cfg, token, live.settings)
    assert script.turns == [], "the CLI did not play the whole script"
    keys = {r["headers"].get("x-api-key") for r in script.requests}
    assert keys == {SECRET}  # the proxy injected the real key into every upstream call
    assert not any(r["headers"].get("authorization") for r in script.requests)
    steps = read_trajectory(result.trajectory)
    results = [s for s in steps if s.type == "tool_result"]
    assert results[0].data["name"] == "Bash" and results[0].data["result"].splitlines()[0] == "0"
    assert "trained" in results[1].data["result"]
    assert results[2].data["result"].split() == ["403", "403"]  # scripted calls are off: both refused
    flagged = [s for s in steps if s.type == "detector"]
    assert [(s.data["detector"], s.data["allowed"]) for s in flagged] == [("scripted_model_call", False)] * 2
    assert trajectory_flags(steps) == {"scripted_model_call": 2}  # what status and finalize show
    assert (ws / "NOTEBOOK.md").read_text().startswith("# Notebook")
    subs = [s for s in steps if s.type == "submission"]
    assert len(subs) == 1 and set(subs[0].data["released_pgr"]) == {"id", "ood", "combined"}  # the MCP record
    summary = [s for s in steps if s.type == "message" and s.data.get("role") == "proxy"]
    charged = [s for s in steps if s.type == "message" and s.data.get("role") == "proxy_call"]
    assert len(summary) == 1 and summary[0].cost_usd == 0  # a note: the calls themselves carry the charge
    assert len(charged) == len(script.requests) == summary[0].data["calls"]  # each call charged as it settled
    assert sum(c.cost_usd > 0 and c.tokens > 0 for c in charged) == script.served  # the 429 / 529 cost nothing
    assert sum(c.cost_usd for c in charged) == pytest.approx(summary[0].data["session_cost_usd"], abs=1e-5)
    assert summary[0].data["refused"] == 2 and summary[0].data["scripted"] == 2
    assert not any(s.cost_usd for s in steps if s.data.get("role") == "result")  # the SDK's figure is a note
    retries = [s for s in steps if s.type == "error" and "retry" in s.data.get("error", "")]
    assert len(retries) == 2
    with HubClient(live.hub_url, token) as hub:
        mine = [f for f in hub.findings().findings if f.author == "w-claude"]
    assert len(mine) == 1 and mine[0].submission_ids == [subs[0].submission_id]
    text = result.trajectory.read_text()
    assert SECRET not in text and PLACEHOLDER_KEY not in text


def sleepers(marker: str) -> list[int]:
    """Pids of processes whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_a_session_ends_on_its_wall_clock_and_leaves_no_process(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent starts a background command, then a foreground one that would outlast the budget. Before:
    the session ran on past the worker's wall-clock budget, and the worker outlived it by minutes."""
    bwrap_or_skip()
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    script = Script([
        {"text": "Background job.", "tool_calls": [{"name": "Bash", "input": {
            "command": "sleep 3002", "run_in_background": True, "description": "background"}}]},
        {"text": "Long job.", "tool_calls": [{"name": "Bash", "input": {
            "command": "sleep 3001", "timeout": 600000, "description": "long"}}]},
        {"text": "Never reached."},
    ])
    token = live.tokens.create("w-claude-wall", "t-claude")
    started = time.monotonic()
    with serve_in_thread(fake_messages_api(script)) as upstream:
        cfg = WorkerConfig(kind="claude", team="t-claude", worker="w-claude-wall", testbed="wordsense",
                           hub_url=live.hub_url, eval_url=live.eval_url,
                           budget=Budget(wall_s=40, sessions=3, dollars=5.0),
                           claude=ClaudeConfig(model="claude-test", upstream=upstream, max_turns=5,
                                               prices={"claude-test": Price(input=3.0, output=15.0)}))
        result = run_worker(cfg, token, live.settings)
    took = time.monotonic() - started
    assert sleepers("sleep 300") == []  # neither the background nor the foreground command survived
    assert took < 80, f"the worker outlived its 40 s budget by {took - 40:.0f} s"
    steps = read_trajectory(result.trajectory)
    assert any("wall-clock budget ran out" in s.data.get("error", "") for s in steps if s.type == "error")
    assert steps[-1].type == "run_end"


def test_submissions_come_from_the_mcp_servers_record(tmp_path: Path) -> None:
    """Not from the transcript: a process in the sandbox can write to the CLI's MCP pipe. The record is a
    host file; a torn last line waits, nothing is recorded twice, and a restarted worker catches up."""
    from aar.agents.claude import ClaudeResearcher

    def researcher() -> ClaudeResearcher:
        r = ClaudeResearcher.__new__(ClaudeResearcher)  # only the record-keeping part
        Researcher.__init__(r, tmp_path / "trajectory.jsonl", Budget())
        r.record_file = tmp_path / "mcp-submissions.jsonl"
        r._record_offset = 0
        r._recorded = {s.submission_id for s in read_trajectory(r.trajectory.path) if s.type == "submission"}
        return r

    first = researcher()
    first.record_file.write_text('{"submission_id": "s1", "released_pgr": {"combined": 0.4}}\n{"submission_id": "s')
    first.collect_submissions()
    first.collect_submissions()
    with first.record_file.open("a") as f:
        f.write('2", "released_pgr": null}\n{"submission_id": "s3", "released_pgr": null}\n')
    researcher().collect_submissions()  # a restart: s1 is in the trajectory already
    subs = [s.submission_id for s in read_trajectory(tmp_path / "trajectory.jsonl") if s.type == "submission"]
    assert subs == ["s1", "s2", "s3"]
