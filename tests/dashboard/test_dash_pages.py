"""Pages and live endpoints over a team written to disk (no services): cost never $0 for an unknown price,
stale workers, "what changed" with ETag / 304, transcript lines by offset (live and earlier), one line in
full, search across trajectories, the private table after finalize, and services that are down."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from dashkit import admin_token, dash_client, fake_team, home, login, trajectory

from aar.evalserver.models import FinalEntry, FinalReport, PartValues, Scores
from aar.orchestrator.team import final_path


def test_team_and_worker_pages(tmp_path: Path) -> None:
    settings = home(tmp_path)
    state = fake_team(settings, "t1")
    w1, w2 = list(state.workers)
    tr = trajectory(settings, "t1", w1)
    tr.append("run_start", kind="llm", budget={}, prior={})
    tr.append("message", role="assistant", text="thinking about confidence " + "y" * 5000, tokens=500,
              model="mystery-model")  # no price known
    tr.append("submission", submission_id="sub-1", released_pgr={"combined": 0.42})
    client = dash_client(settings, stale_s=60)
    login(client, admin_token(settings))
    page = client.get("/teams/t1").text
    assert "unknown" in page and "$0.00 / $5.00" in page  # the bar counts priced dollars only
    assert "mystery-model" in page and "0.420" in page and "leaderboard unavailable" in page
    row2 = re.search(rf'<tr data-worker="{w2}">(.*?)</tr>', page, re.S)
    assert row2 and "stale" in row2.group(1)  # running and silent for over stale_s
    assert "<polyline" in page or "<circle" in page  # the live PGR plot
    assert "0.420" in client.get("/").text

    # what changed: 304 while nothing does, 200 when a line lands
    etag = client.get("/api/version?team=t1").headers["etag"]
    assert client.get("/api/version?team=t1", headers={"If-None-Match": etag}).status_code == 304
    size = (settings.runs_dir / "t1" / "workers" / w1 / "trajectory.jsonl").stat().st_size
    live = f"/api/teams/t1/workers/{w1}/lines"
    assert client.get(f"{live}?after={size}").status_code == 204
    tr.append("tool_call", name="shell", arguments={"cmd": "python train.py"})
    assert client.get("/api/version?team=t1", headers={"If-None-Match": etag}).status_code == 200
    r = client.get(f"{live}?after={size}")
    assert r.status_code == 200 and "python train.py" in r.text and int(r.headers["x-offset"]) > size

    # the worker page: the cut message, its full text on demand, earlier pages
    page = client.get(f"/teams/t1/workers/{w1}").text
    assert "show all" in page and "y" * 5000 not in page
    offset = re.search(r'class="show-all link" data-offset="(\d+)"', page).group(1)  # type: ignore[union-attr]
    assert "y" * 5000 in client.get(f"/api/teams/t1/workers/{w1}/line?offset={offset}").text
    for k in range(300):
        tr.append("decision", generation=k)
    page = client.get(f"/teams/t1/workers/{w1}").text
    start = int(re.search(r'data-start="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert start > 0 and "load earlier" in page
    earlier = client.get(f"{live}?before={start}")
    assert earlier.headers["x-start"] == "0" and "thinking about confidence" in earlier.text

    # search: inside one worker, and across every trajectory
    assert "sub-1" in client.get(f"/teams/t1/workers/{w1}?q=SUB-1").text
    assert f"/teams/t1/workers/{w1}" in client.get("/search?q=confidence").text
    assert "hub at http://127.0.0.1:9 unreachable" in client.get("/forum").text  # down, said in one line


def test_private_table_after_finalize(tmp_path: Path) -> None:
    settings = home(tmp_path)
    fake_team(settings, "t2", phase="finalized")
    pv = PartValues(id=0.5, ood=0.4, combined=0.45)
    scores = Scores(acc=pv, pgr=pv, pgr_se=PartValues(id=0.05, ood=0.05, combined=0.031))
    entry = FinalEntry(worker_id="t2-w01", testbed="wordsense", submission_id="s1", submissions=3, public=scores,
                       private=scores, gap=PartValues(combined=0.01))
    report = FinalReport(team="t2", created_at=datetime.now(UTC), last_seq=7, workers=[entry], team_best=[entry])
    final_path(settings, "t2").write_text(report.model_dump_json())
    client = dash_client(settings)
    login(client, admin_token(settings))
    page = client.get("/teams/t2").text
    assert 'id="private-table"' in page and "0.450 ± 0.031" in page and "not replayed" in page


def test_restarts_compare_and_launch_errors(tmp_path: Path) -> None:
    settings = home(tmp_path)
    a, b = fake_team(settings, "ta"), fake_team(settings, "tb")
    for team, state in (("ta", a), ("tb", b)):
        w = next(iter(state.workers))
        tr = trajectory(settings, team, w)
        tr.append("run_start", kind="llm", budget={}, prior={})
        tr.append("submission", submission_id="s1", released_pgr={"combined": 0.3})
        tr.append("run_start", kind="llm", budget={}, prior={"sessions": 2, "submissions": 1})
    client = dash_client(settings)
    csrf = login(client, admin_token(settings))
    w = next(iter(a.workers))
    assert "restart, resuming earlier usage" in client.get(f"/teams/ta/workers/{w}").text
    page = client.get("/compare?a=ta&b=tb").text
    assert page.count('<svg class="plot"') == 2 and ">ta</text>" in page and ">tb</text>" in page
    # a bad launch is refused in one line, nothing is created
    r = client.post("/teams", data={"csrf": csrf, "team": "../x", "workers": "2"}, follow_redirects=False)
    assert r.status_code == 303 and "bad%20team%20config" in r.headers["location"]
    r = client.post("/teams", data={"csrf": csrf, "team": "ok", "toml": "[oops"}, follow_redirects=False)
    assert "launch%20failed" in r.headers["location"]
    assert sorted(p.name for p in settings.runs_dir.iterdir()) == ["ta", "tb"]
    assert "bad team config" in client.get(r.headers["location"].replace("launch%20failed", "bad%20team%20config")).text


def test_serve_runs_the_dashboard_too() -> None:
    from typer.testing import CliRunner

    from aar.cli import app

    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "--dashboard-port" in out.stdout and "--no-dashboard" in out.stdout
