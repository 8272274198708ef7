"""The evolve researcher end to end in bwrap against live services: 2 generations, then kill -9 and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from agentkit import Live, bwrap_or_skip

from aar.agents.base import Budget, Step, read_trajectory, usage_from
from aar.agents.evolve import STATE_FILE, EvolveConfig, EvolveState, direction_families
from aar.agents.worker import WorkerConfig, run_worker, worker_dir
from aar.evalserver.client import EvalClient
from aar.hub.client import HubClient

AAR = shutil.which("aar", path=str(Path(sys.executable).parent)) or "aar"


def config(live: Live, worker: str, generations: int, team: str = "t-evolve", **kw: object) -> WorkerConfig:
    return WorkerConfig(team=team, worker=worker, testbed="wordsense", hub_url=live.hub_url, eval_url=live.eval_url,
                        budget=Budget(wall_s=900, submissions=20),
                        evolve=EvolveConfig(children=2, max_generations=generations, min_label_change=0), **kw)  # type: ignore[arg-type]


def state_of(live: Live, team: str, worker: str) -> EvolveState:
    path = worker_dir(live.settings, team, worker) / "workspace" / STATE_FILE
    return EvolveState.model_validate_json(path.read_text())


def test_evolve_two_generations_in_bwrap(live: Live) -> None:
    bwrap_or_skip()
    token = live.tokens.create("w-evolve", "t-evolve")
    result = run_worker(config(live, "w-evolve", 2, direction="self-training and ensembles"), token, live.settings)

    # trajectory: every line a valid, schema-versioned step, in protocol order
    steps = read_trajectory(result.trajectory)
    raw = [json.loads(line) for line in result.trajectory.read_text().splitlines()]
    assert all(Step.model_validate(r).schema_version == 1 for r in raw)
    types = [s.type for s in steps]
    assert types[0] == "run_start" and types[1] == "session_start" and types[-1] == "run_end"
    assert types.count("decision") == 2 and "session_end" in types
    calls = [s for s in steps if s.type == "tool_call"]
    results = [s for s in steps if s.type == "tool_result"]
    assert len(calls) == len(results) >= 4 + 3 * 2  # 4 experiments; snapshot+submit+finding per generation
    execs = [s for s in results if s.data["name"] == "sandbox.exec"]
    assert len(execs) == 4 and all(s.data["ok"] for s in execs), execs

    # the eval server accepted every submission the trajectory records, and they belong to this worker
    subs = [s for s in steps if s.type == "submission"]
    assert len(subs) == 2 and usage_from(steps).submissions == 2
    evals = EvalClient(live.eval_url)
    try:
        for s in subs:
            assert s.submission_id is not None
            got = evals.get_submission(token, s.submission_id)
            assert got.worker_id == "w-evolve" and got.testbed == "wordsense"
    finally:
        evals.close()

    # findings (result or negative, citing the submission, in a directed family) and snapshots on the hub
    with HubClient(live.hub_url, token) as hub:
        mine = [f for f in hub.findings().findings if f.author == "w-evolve"]
        snaps = hub.snapshots("w-evolve")
    assert len(mine) == 2 and all(f.kind in ("result", "negative") for f in mine)
    assert {sid for f in mine for sid in f.submission_ids} == {s.submission_id for s in subs}
    assert all(f.family in ("self_training", "ensemble") for f in mine), [f.family for f in mine]
    assert all(f.snapshot_id for f in mine)
    assert {"evolve memory after generation 1", "evolve memory after generation 2"} <= {s.note for s in snaps}

    # the workspace: state, notebook, one folder per idea with its recipe and predictions
    state = state_of(live, "t-evolve", "w-evolve")
    assert state.generation == 2 and len(state.candidates) == 4
    assert "Generations done: 2" in (result.workspace / "NOTEBOOK.md").read_text()
    for c in state.candidates:
        assert (result.workspace / "ideas" / c.id / "predictions.jsonl").exists()
        assert c.proxy is not None and c.error is None


def test_direction_selects_families() -> None:
    assert direction_families(None) is None
    assert direction_families("Try self-training with pseudo-labels") == {"self_training"}
    assert direction_families("unsupervised elicitation of the strong model") == {"unsupervised_elicitation"}
    assert direction_families("something no word matches") is None


def _wait_for_generation(path: Path, proc: subprocess.Popen, generation: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited before it could be killed"
        if path.exists():
            try:
                if EvolveState.model_validate_json(path.read_text()).generation >= generation:
                    return
            except ValueError:
                pass
        time.sleep(0.5)
    raise AssertionError("no generation finished in time")


def test_killed_worker_resumes_from_notebook_and_snapshot(live: Live, tmp_path: Path) -> None:
    bwrap_or_skip()
    team, worker = "t-resume", "w-resume"
    token = live.tokens.create(worker, team)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    env = {**os.environ, "AAR_HOME": str(live.settings.home)}
    proc = subprocess.Popen(
        [AAR, "worker", "run", "--team", team, "--worker", worker, "--testbed", "wordsense", "--children", "2",
         "--max-generations", "5", "--hub-url", live.hub_url, "--eval-url", live.eval_url,
         "--token-file", str(token_file)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_file = worker_dir(live.settings, team, worker) / "workspace" / STATE_FILE
    try:
        _wait_for_generation(state_file, proc, 1)
        os.killpg(proc.pid, signal.SIGKILL)  # the worker, its MCP server and any sandboxed experiment
    finally:
        proc.wait(timeout=30)
    before = state_of(live, team, worker)
    first_ids = [c.id for c in before.candidates if c.generation == 1]
    assert before.generation >= 1 and first_ids

    # restart: resumes from the workspace's memory, keeps the budget already spent
    run_worker(config(live, worker, before.generation + 1, team=team), token, live.settings)
    after = state_of(live, team, worker)
    assert after.generation == before.generation + 1
    assert [c.id for c in after.candidates if c.generation == 1] == first_ids
    traj = worker_dir(live.settings, team, worker) / "trajectory.jsonl"
    runs = [s for s in read_trajectory(traj) if s.type == "run_start"]
    assert len(runs) == 2 and runs[1].data["prior"]["submissions"] >= 1

    # the workspace's memory is lost (new machine): the worker restores it from its last hub snapshot
    shutil.rmtree(state_file.parent)
    run_worker(config(live, worker, after.generation + 1, team=team), token, live.settings)
    restored = state_of(live, team, worker)
    assert restored.generation == after.generation + 1
    assert [c.id for c in restored.candidates if c.generation == 1] == first_ids
    decisions = [s for s in read_trajectory(traj) if s.type == "decision" and "restored_from" in s.data]
    assert decisions and decisions[-1].data["generation"] == after.generation
    assert pytest.approx(usage_from(read_trajectory(traj)).submissions) == len(
        [c for c in restored.candidates if c.submission_id])


def test_near_duplicate_predictions_are_not_resubmitted(tmp_path: Path) -> None:
    """Reruns of a submitted idea (>= 97% label agreement) are skipped: choosing among them is cherry-picking."""
    from aar.agents.evolve import Candidate, EvolveResearcher
    from aar.sandbox import SandboxConfig, get_sandbox
    from aar.w2s.recipes import Recipe

    ws = tmp_path / "ws"
    ws.mkdir()
    sandbox = get_sandbox("local", SandboxConfig(workspace=ws), warn=False)
    researcher = EvolveResearcher(trajectory_path=tmp_path / "t.jsonl", budget=Budget(), sandbox=sandbox,
                                  testbed="wordsense", tools_factory=lambda t: None)  # type: ignore[arg-type,return-value]
    labels = np.random.default_rng(0).random(1000) > 0.5

    def plant(cid: str, flips: int, submitted: bool) -> Candidate:
        hard = labels.copy()
        hard[:flips] = ~hard[:flips]
        rows = "\n".join(json.dumps({"id": f"i{k}", "prob": 0.9 if h else 0.1}) for k, h in enumerate(hard))
        sandbox.write_file(f"ideas/{cid}/predictions.jsonl", rows.encode())
        c = Candidate(id=cid, recipe=Recipe(), generation=1, origin="seed", proxy=0.8,
                      submission_id="sub_1" if submitted else None)
        researcher.state.candidates.append(c)
        return c

    plant("g001-01", 0, submitted=True)
    assert researcher.near_duplicate(plant("g001-02", 10, submitted=False)) == "g001-01"  # 1% of labels moved
    assert researcher.near_duplicate(plant("g001-03", 100, submitted=False)) is None  # 10%: a different idea
