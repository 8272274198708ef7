"""Teams end to end on this machine: launch 3 directed evolve workers, kill -9 a worker and the supervisor,
resume, status and JSON, budgets (worker and team, the latter enforced by the eval server), stop without
orphans, and the Ray backend."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from agentkit import Live, bwrap_or_skip
from typer.testing import CliRunner

from aar.agents.base import Budget, read_trajectory
from aar.agents.evolve import EvolveConfig
from aar.cli import app
from aar.evalserver.client import EvalClient, EvalError
from aar.hub.client import HubClient
from aar.orchestrator.status import team_status
from aar.orchestrator.team import TeamBudget, TeamSpec, alive, launch, load_state, resume_team, stop_team

runner = CliRunner()


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def processes_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(f"{d.name}: {cmd[:120]}")
    return found


def spec(live: Live, team: str, **kw: object) -> TeamSpec:
    base: dict = {"team": team, "workers": 3, "testbed": "wordsense", "hub_url": live.hub_url,
                  "eval_url": live.eval_url, "budget": Budget(wall_s=600, submissions=2), "backoff_s": 1.0,
                  "evolve": EvolveConfig(children=2, max_generations=3, min_label_change=0)}
    return TeamSpec.model_validate({**base, **kw})


def test_team_launch_crash_resume_finish(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_or_skip()
    monkeypatch.setenv("AAR_HOME", str(live.settings.home))
    team = "t-team"
    state = launch(spec(live, team, team_budget=TeamBudget(submissions=5)), live.settings)
    w01, w02, w03 = names = [f"{team}-w01", f"{team}-w02", f"{team}-w03"]
    assert sorted(state.workers) == names  # worker ids are unique across teams
    assert len({w.direction for w in state.workers.values()}) == 3  # directed: a different direction each
    admin = (live.settings.runs_dir / team / "admin.token").read_text()
    cfg = httpx.get(f"{live.eval_url}/v1/teams/{team}/config", headers={"Authorization": f"Bearer {admin}"}).json()
    assert cfg["team_max_total"] == 5 and cfg["max_total"] == 2  # the eval server enforces both budgets

    # kill -9 one worker once it has started working: the supervisor restarts it, it resumes its memory
    def started(worker: str) -> bool:
        return any(s.type == "decision" for s in read_trajectory(
            live.settings.runs_dir / team / "workers" / worker / "trajectory.jsonl"))

    wait_until(lambda: started(w01), 300, "w01's first generation")
    victim = load_state(live.settings, team).workers[w01].pid
    assert victim is not None
    os.killpg(victim, signal.SIGKILL)
    wait_until(lambda: load_state(live.settings, team).workers[w01].restarts == 1, 60, "the restart of w01")

    # kill -9 the supervisor: workers keep running; a resumed supervisor adopts them
    sup = load_state(live.settings, team).supervisor_pid
    assert sup is not None
    os.kill(sup, signal.SIGKILL)
    time.sleep(1)
    resumed = resume_team(live.settings, team)
    assert resumed.supervisor_pid not in (None, sup)
    def ended() -> bool:
        st = load_state(live.settings, team)
        return st.phase in ("finished", "stopped") and not alive(st.supervisor_pid, st.supervisor_start)

    wait_until(ended, 900, "the team to end")

    # 3 workers x 2 submissions would be 6: the team budget (5) ends the team, the eval server refuses beyond it
    final = load_state(live.settings, team)
    assert final.phase == "stopped" and "team submissions budget" in (final.reason or ""), final.reason
    assert {w.phase for w in final.workers.values()} <= {"finished", "stopped"}
    runs = [s for s in read_trajectory(live.settings.runs_dir / team / "workers" / w01 / "trajectory.jsonl")
            if s.type == "run_start"]
    assert len(runs) >= 2  # the killed run and the restarted one

    st = team_status(live.settings, team)
    assert [w.worker for w in st.workers] == names
    assert all(w.submissions <= 2 for w in st.workers)  # the per-worker budget
    assert st.submissions == 5
    assert st.leaderboard_error is None and st.best_released_pgr is not None and not st.supervisor_alive
    result = runner.invoke(app, ["team", "status", team, "--json"], env={"AAR_HOME": str(live.settings.home)})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["team"] == team and data["phase"] == "stopped" and len(data["workers"]) == 3
    assert {"worker", "direction", "phase", "sessions", "submissions", "best_released_pgr", "dollars", "tokens",
            "hours", "last_activity", "flags"} <= set(data["workers"][0])
    table = runner.invoke(app, ["team", "status", team], env={"AAR_HOME": str(live.settings.home)})
    assert table.exit_code == 0 and "w03" in table.stdout and st.workers[2].worker == w03

    with HubClient(live.hub_url, admin) as hub:
        authors = {f.author for f in hub.findings(team=team).findings}
        crashes = [e for e in hub.events(kind="crash", team=team)]
    assert authors == set(names)  # findings from every worker
    assert crashes and crashes[0].worker_id == w01
    assert processes_mentioning(team) == []

    # finalize: each worker's selected submission on the private half, against the best stored baseline
    done = runner.invoke(app, ["team", "finalize", team, "--json"], env={"AAR_HOME": str(live.settings.home)})
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert {e["worker_id"] for e in report["workers"]} == set(names)
    compared = 0
    for e in report["workers"]:
        vs = e["vs_best_baseline"]
        assert vs["baseline"] in ("vanilla", "vanilla_soft", "confident", "logconf", "zeroshot", "ue_zeroshot",
                                   "weak_zeroshot_mix")
        for part in ("id", "ood", "combined"):
            mine, theirs = e["private"]["pgr"][part], vs["baseline_pgr"][part]
            if vs["diff"][part] is None:  # this tiny testbed's private worlds may have no S - W gap on a part
                assert mine is None and e["private"]["pgr_reason"][part], e["private"]
                continue
            compared += 1
            assert vs["diff"][part] == pytest.approx(mine - theirs, abs=2e-4)
            assert vs["paired_se"][part] > 0  # (large on this tiny testbed: its S - W gap is small)
    assert compared  # some part has a gap to compare on
    # ... and the team is frozen: phase finalized, worker tokens refused by the eval server
    assert load_state(live.settings, team).phase == "finalized"
    token = (live.settings.runs_dir / team / "workers" / w02 / "token").read_text()
    client = EvalClient(live.eval_url)
    try:
        with pytest.raises(EvalError) as refused:
            client.leaderboard(token)
        assert refused.value.status == 401
    finally:
        client.close()


def test_stop_leaves_no_process_behind(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_or_skip()
    monkeypatch.setenv("AAR_HOME", str(live.settings.home))
    team = "t-stop"
    launch(spec(live, team, workers=2, budget=Budget(wall_s=600, submissions=50),
                evolve=EvolveConfig(children=2, max_generations=50)), live.settings)
    wait_until(lambda: all(w.phase == "running" for w in load_state(live.settings, team).workers.values()), 60,
               "workers to start")
    time.sleep(5)
    state = stop_team(live.settings, team, wait_s=120)
    assert state.phase == "stopped" and {w.phase for w in state.workers.values()} == {"stopped"}
    wait_until(lambda: processes_mentioning(team) == [], 30, "no process of the team")
    for w in state.workers:
        steps = read_trajectory(live.settings.runs_dir / team / "workers" / w / "trajectory.jsonl")
        assert steps[-1].type == "run_end" and steps[-1].data["reason"] == "stopped"


def test_ray_backend_runs_two_workers(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap_or_skip()
    pytest.importorskip("ray", reason="the Ray backend needs the ray extra: pip install 'aar[ray]'")
    monkeypatch.setenv("AAR_HOME", str(live.settings.home))
    team = "t-ray"
    launch(spec(live, team, workers=2, backend="ray", cpus_per_worker=0.5, budget=Budget(wall_s=600, submissions=1),
                evolve=EvolveConfig(children=2, max_generations=1, min_label_change=0)), live.settings)
    wait_until(lambda: load_state(live.settings, team).phase == "finished", 600, "the Ray team to finish")
    wait_until(lambda: not alive(load_state(live.settings, team).supervisor_pid,
                                 load_state(live.settings, team).supervisor_start), 60, "the supervisor to exit")
    st = team_status(live.settings, team)
    assert [w.phase for w in st.workers] == ["finished", "finished"]
    assert all(w.submissions == 1 for w in st.workers)
    wait_until(lambda: processes_mentioning(team) == [], 60, "no process of the team")
