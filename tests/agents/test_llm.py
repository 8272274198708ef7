"""A scripted ``llm`` researcher runs a full episode in bwrap against live services (shell, file edits,
submit and share through MCP); the sandbox never sees the API key; a dollar budget stops it cleanly."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from agentkit import Live, bwrap_or_skip

from aar.agents.base import Budget, read_trajectory
from aar.agents.llm import LlmConfig
from aar.agents.worker import WorkerConfig, run_worker
from aar.analysis.rerun import rerun_idea
from aar.hub.client import HubClient
from aar.hub.snapshots import check_tarball

SECRET = "sk-ant-test-SECRET-9f2c"
RUN_PY = """import argparse
from pathlib import Path
from aar.w2s.workbench import Workbench
ap = argparse.ArgumentParser()
ap.add_argument("--testbed", required=True)
ap.add_argument("--out", type=Path, required=True)
args = ap.parse_args()
wb = Workbench(args.testbed)
head = wb.fit((wb.weak("strong_train") > 0.5).astype(float))
wb.save_predictions(wb.predict_tests(head), args.out / "predictions.jsonl")
print("trained")
"""
SCRIPT = [
    {"text": "Let me look around.", "tool_calls": [{"name": "shell", "arguments": {
        "command": "ls; env | grep -c sk-ant || true; ls ~/.aar 2>&1 | head -2"}}]},
    {"text": "An idea folder.", "tool_calls": [{"name": "edit_file", "arguments": {
        "command": "create", "path": "ideas/llm/run.py", "file_text": RUN_PY}}]},
    {"text": "Train vanilla.", "tool_calls": [{"name": "shell", "arguments": {
        "command": "python ideas/llm/run.py --testbed wordsense --out ideas/llm"}}]},
    {"text": "Note it.", "tool_calls": [{"name": "edit_file", "arguments": {
        "command": "create", "path": "NOTEBOOK.md", "file_text": "# Notebook\n\n- vanilla trained\n"}}]},
    {"text": "", "tool_calls": [{"name": "edit_file", "arguments": {
        "command": "str_replace", "path": "NOTEBOOK.md", "old_str": "vanilla trained",
        "new_str": "vanilla: submitted"}}]},
    {"text": "Submit.", "tool_calls": [{"name": "submit_predictions", "arguments": {
        "testbed": "wordsense", "predictions_file": "ideas/llm/predictions.jsonl", "idea_dir": "ideas/llm"}}]},
    {"text": "Share.", "tool_calls": [{"name": "share_finding", "arguments": {
        "title": "Vanilla baseline from the scripted agent", "kind": "result", "family": "distillation",
        "body": "Trained on hard weak labels.", "submission_ids": ["{{last_result.id}}"]}}]},
    {"text": "Bad call.", "tool_calls": [{"name": "edit_file", "arguments": {
        "command": "view", "path": "../../../etc/passwd"}}]},
    {"text": "Done for this session."},
]


def llm_config(live: Live, worker: str, script: list, tmp_path: Path, budget: Budget) -> WorkerConfig:
    path = tmp_path / f"{worker}.json"
    path.write_text(json.dumps(script))
    return WorkerConfig(kind="llm", team="t-llm", worker=worker, testbed="wordsense", hub_url=live.hub_url,
                        eval_url=live.eval_url, budget=budget,
                        llm=LlmConfig(provider="scripted", model="scripted", script=path))


def test_scripted_llm_episode_in_bwrap(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_or_skip()
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)  # held by the agent process only
    token = live.tokens.create("w-llm", "t-llm")
    result = run_worker(llm_config(live, "w-llm", SCRIPT, tmp_path, Budget(wall_s=600, submissions=5)), token,
                        live.settings)
    steps = read_trajectory(result.trajectory)
    messages = [s for s in steps if s.type == "message"]
    assert len(messages) == len(SCRIPT) + 1  # every scripted turn, then the provider's "finished"
    assert all(m.tokens > 0 and m.cost_usd > 0 for m in messages[:-1])
    results = {s.data["name"]: s for s in steps if s.type == "tool_result"}
    shell_out = [s for s in steps if s.type == "tool_result" and s.data["name"] == "shell"]
    assert shell_out[0].data["ok"] and SECRET not in shell_out[0].data["result"]
    assert "\n0\n" in shell_out[0].data["result"]  # grep counted no key in the sandbox's environment
    assert "trained" in shell_out[1].data["result"]
    assert SECRET not in result.trajectory.read_text()
    assert results["submit_predictions"].data["ok"] and results["share_finding"].data["ok"]
    errors = [s for s in steps if s.type == "tool_result" and not s.data.get("ok", True)]
    assert any("edit_file" == s.data["name"] for s in errors)  # the path escape became an error result
    subs = [s for s in steps if s.type == "submission"]
    assert len(subs) == 1
    snapshot = subs[0].data["snapshot_id"]  # the idea folder, snapshotted with the submission
    with HubClient(live.hub_url, token) as hub:
        code = hub.download_snapshot(snapshot)
    assert check_tarball(io.BytesIO(code)).names == ["run.py"]  # code only: predictions.jsonl is an output
    rerun = rerun_idea(code, "wordsense", live.settings)  # elsewhere: a fresh sandbox, no hub, no model API
    lines = (result.workspace / "ideas/llm/predictions.jsonl").read_text().splitlines()
    submitted = [json.loads(line) for line in lines]
    assert rerun.ok and len(rerun.predictions) == len(submitted)
    assert all((rerun.predictions[r["id"]] > 0.5) == (r["prob"] > 0.5) for r in submitted)  # it reproduces
    assert (result.workspace / "NOTEBOOK.md").read_text() == "# Notebook\n\n- vanilla: submitted\n"
    with HubClient(live.hub_url, token) as hub:
        mine = [f for f in hub.findings().findings if f.author == "w-llm"]
    assert len(mine) == 1 and mine[0].submission_ids == [subs[0].submission_id]
    assert steps[-1].type == "run_end" and steps[-1].data["reason"] == "done"


def test_dollar_budget_stops_an_llm_worker(live: Live, tmp_path: Path) -> None:
    bwrap_or_skip()
    token = live.tokens.create("w-llm-cost", "t-llm")
    turn = {"text": "again", "tool_calls": [{"name": "shell", "arguments": {"command": "true"}}],
            "input_tokens": 1000, "output_tokens": 100}  # $0.0045 a turn at the scripted price (3 / 15 per M)
    result = run_worker(llm_config(live, "w-llm-cost", [turn] * 50, tmp_path,
                                   Budget(wall_s=600, dollars=0.02, submissions=None)), token, live.settings)
    steps = read_trajectory(result.trajectory)
    assert result.usage.dollars == pytest.approx(0.0225)  # 5 turns: the budget is checked before each turn
    assert [s.type for s in steps][-2:] == ["budget_stop", "run_end"] and "dollars" in steps[-2].data["reason"]
