"""``aar demo`` end to end on the small session testbed: services up, a 2-worker team, finalize with replays,
the leaderboard with SEs and a paired verdict, the report, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from agentkit import bwrap_or_skip

from aar.config import Settings
from aar.evalserver.models import FinalReport
from aar.orchestrator.team import final_path, load_state


def test_demo_runs_a_team_to_a_leaderboard_and_leaves_nothing_running(small_home: Settings) -> None:
    bwrap_or_skip()
    env = {**os.environ, "AAR_HOME": str(small_home.home), "COLUMNS": "160"}
    r = subprocess.run([sys.executable, "-c", "from aar.cli import main; main()", "demo", "--testbed", "wordsense",
                        "--workers", "2", "--minutes", "1", "--submissions", "3", "--seeds", "1"],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    out = r.stdout
    assert "leaderboard" in out and "private PGR ± SE" in out and "vanilla" in out
    assert "team best" in out and "±" in out
    assert ("paired SE" in out) or ("no private score" in out), out  # a verdict, either way
    said = r.stderr  # progress goes to stderr, the result to stdout
    assert "launched team" in said and "finalizing" in said and "baselines" in said
    team = next(line.split("team ")[1].split(":")[0] for line in said.splitlines() if "launched team" in line)
    final = FinalReport.model_validate_json(final_path(small_home, team).read_text())
    assert final.team_best and all(e.replay is not None for e in final.workers)  # every selected idea replayed
    for e in final.workers:
        assert e.replay is not None and (e.private is not None) == e.replay.reproducible
        if e.private is not None:  # evolve submits its idea folder: it reproduces and gets a private score
            assert e.vs_best_baseline is not None and e.vs_best_baseline.paired_se.combined is not None
    assert (small_home.runs_dir / team / "report" / "report.html").is_file()
    assert all(w.phase != "running" for w in load_state(small_home, team).workers.values())
    for line in said.splitlines():  # the services the demo started are gone
        if line.startswith("services:"):
            for url in [w for w in line.split() if w.startswith("http://127.0.0.1:")]:
                port = int(url.rstrip(",").rsplit(":", 1)[1])
                with socket.socket() as s, pytest.raises(OSError):
                    s.settimeout(2)
                    s.connect(("127.0.0.1", port))
    token_file = small_home.home / "demo" / "admin.token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600" and token_file.read_text().strip() not in out + said
    json.loads((small_home.runs_dir / team / "team.json").read_text())  # the team is an ordinary team
