"""The team report from hand-built ideas and trajectories: numbers, JSON round trip, valid PNGs, HTML that
escapes agent text, "none yet" for a team that has just started, and `aar report` on a synthetic team."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from aar.agents.base import Step
from aar.analysis.diversity import vendi_score
from aar.analysis.ideas import Idea, TeamIdeas
from aar.analysis.report import Report, ReportData, build_report, read_transfers, vendi_of, write_report
from aar.analysis.transfer import ScoredRun, TransferResult
from aar.evalserver.models import BaselineComparison, FinalEntry, FinalReport, PartValues, Replay, Scores
from aar.orchestrator.status import TeamStatus, WorkerStatus

T0 = datetime(2026, 12, 1, tzinfo=UTC)
XSS = "<script>alert('x')</script>"
FAMS = ["ensemble", "curriculum", "distillation", "loss_function", "model_internal", "ensemble"]


def step(type: str, minutes: float, **kw: Any) -> Step:
    fields = {k: kw.pop(k) for k in ("tokens", "cost_usd", "submission_id") if k in kw}
    return Step(type=type, t=T0 + timedelta(minutes=minutes), session=1, elapsed_s=0.0, data=kw,  # type: ignore[arg-type]
                **fields)


def idea(worker: str, minutes: float, family: str, text: str) -> Idea:
    return Idea(id=f"{worker}:{minutes}", worker=worker, started_at=T0 + timedelta(minutes=minutes),
                hours=minutes / 60, description=text, family=family, family_source="worker")


def data(**kw: Any) -> ReportData:
    """Six workers over two hours; w0 submits twice, w1 once (its model unpriced); w5's idea text is hostile."""
    workers = [f"w{k}" for k in range(6)]
    steps = {w: [step("run_start", 0, model="claude-sonnet-4-5"), step("run_end", 120)] for w in workers}
    steps["w0"][1:1] = [step("message", 5, tokens=1000, cost_usd=0.2),
                        step("submission", 30, submission_id="s1", released_pgr={"combined": 0.2}),
                        step("submission", 90, submission_id="s2", released_pgr={"combined": 0.35})]
    steps["w1"][0] = step("run_start", 0, model="local-model")
    steps["w1"][1:1] = [step("message", 5, tokens=500), step("detector", 6, detector="scripted_model_call"),
                        step("submission", 60, submission_id="s3", released_pgr={"combined": 0.3})]
    ideas = [idea(w, 1 + k, f, "Bagging five heads with pseudo-labels") for k, (w, f) in enumerate(zip(
        workers, FAMS, strict=True))]
    ideas[5] = idea("w5", 6, "ensemble", f"Average probes {XSS}")
    ideas += [idea(w, 60 + k, "ensemble", "Ensemble of seeds") for k, w in enumerate(workers)]
    other = TeamIdeas(team="other", ideas=[idea(w, 1 + k, "self_training", "self-train") for k, w in
                                           enumerate(workers)], worker_end={w: 2.0 for w in workers})
    base: dict[str, Any] = dict(
        team="t", ideas=TeamIdeas(team="t", ideas=ideas, worker_end={w: 2.0 for w in workers}), steps=steps,
        phase="running", testbed="tiny", kind="llm", pgr_se={"s1": 0.05, "s2": 0.04, "s3": 0.06},
        embeddings=np.random.default_rng(0).normal(size=(len(ideas), 8)), compare={"other": other},
        transfers=[{"idea": f"w5 {XSS}", "source_testbed": "tiny", "target_pgr": 0.21, "target_pgr_se": 0.05}])
    base.update(kw)
    return ReportData(**base)


def test_build_report_numbers() -> None:
    r = build_report(data())
    s = r.summary
    assert (s.workers, s.ideas, s.submissions, s.aar_hours) == (6, 12, 3, pytest.approx(12.0))
    assert (s.best_pgr, s.best_pgr_se, s.best_worker) == (0.35, 0.04, "w0")
    assert s.dollars is None and r.progress.team_cost.priced_dollars == 0.2  # w1's model has no price
    assert [x.team for x in r.entropy] == ["t", "other"] and r.entropy[1].points[-1].entropy == 0.0
    assert s.entropy_first == pytest.approx(np.log2(5)) and s.entropy_last == 0.0  # 5 workers, 5 families; then 1
    assert r.vendi and r.vendi[-1].ideas == 12 and s.vendi == pytest.approx(r.vendi[-1].vendi)
    assert r.ideas[0].complexity is not None and r.ideas[0].complexity.components == 2  # offline
    board = {row.worker: row for row in r.leaderboard}
    assert r.leaderboard[0].worker == "w0" and (board["w0"].best_pgr, board["w0"].best_pgr_se) == (0.35, 0.04)
    assert board["w1"].flags == {"scripted_model_call": 1}  # no status: the trajectory's own detector steps
    assert board["w3"].best_pgr is None and board["w3"].submissions == 0


def test_status_flags_and_private_scores_reach_the_leaderboard() -> None:
    rows = [WorkerStatus(worker=f"w{k}", direction="d", phase="finished", restarts=0, sessions=1, submissions=k,
                         best_released_pgr=0.5 if k == 4 else None, dollars=0.0, tokens=0, hours=2.0,
                         last_activity=None, flags={"label_probing": 2} if k == 0 else {}) for k in range(6)]
    status = TeamStatus(team="t", phase="finished", reason=None, supervisor_alive=False, testbed="tiny",
                        workers=rows, submissions=15, dollars=0.0, tokens=0, hours=12.0, dollars_per_aar_hour=None,
                        best_released_pgr=0.5)
    score = Scores(acc=PartValues(combined=0.8), pgr=PartValues(combined=0.3), pgr_se=PartValues(combined=0.07))
    entry = FinalEntry(worker_id="w0", testbed="tiny", submission_id="s2", submissions=2, public=score,
                       private=score, gap=PartValues(combined=0.0))
    final = FinalReport(team="t", created_at=T0, last_seq=3, workers=[entry], team_best=[entry])
    r = build_report(data(status=status, final=final))
    board = {row.worker: row for row in r.leaderboard}
    assert board["w0"].flags == {"label_probing": 2} and (board["w0"].private_pgr, board["w0"].private_pgr_se) == (
        0.3, 0.07)
    assert board["w4"].best_pgr == 0.5 and board["w4"].best_pgr_se is None  # from the leaderboard, no SE known
    assert (r.summary.private_best_pgr, r.summary.private_best_pgr_se) == (0.3, 0.07)


def test_written_report_round_trips_and_its_plots_are_images(tmp_path: Path) -> None:
    report = build_report(data())
    files = write_report(report, tmp_path / "out")
    names = sorted(p.name for p in files)
    assert names == sorted(["report.json", "report.html", "entropy.png", "vendi.png", "complexity.png", "pgr.png",
                            "cost.png"])
    assert Report.model_validate_json((tmp_path / "out" / "report.json").read_text()) == report
    for p in files:
        if p.suffix == ".png":
            with Image.open(p) as img:
                img.verify()
                assert img.format == "PNG" and img.size[0] > 300
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("data:image/png;base64,") == 5
    assert "unknown" in page and "0.350 ± 0.040" in page and "scripted_model_call x1" in page
    assert "Family entropy: team other" in page and "w5 &lt;script&gt;" in page  # transfer rows escaped too


def test_a_team_that_just_started_says_none_yet(tmp_path: Path) -> None:
    fresh = ReportData(team="new", ideas=TeamIdeas(team="new", ideas=[], worker_end={}),
                       steps={"w0": [step("run_start", 0)], "w1": []})
    report = build_report(fresh)
    files = write_report(report, tmp_path)
    assert sorted(p.name for p in files) == ["cost.png", "report.html", "report.json"]
    page = (tmp_path / "report.html").read_text()
    assert page.count("none yet") >= 6 and report.summary.best_pgr is None and report.summary.dollars == 0.0


def test_vendi_through_the_smaller_gram_matrix_matches_vendi_score() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 5, 30):
        x = rng.normal(size=(n, 12))
        assert vendi_of(x) == pytest.approx(vendi_score(x), rel=1e-9)
    assert vendi_of(np.zeros((0, 4))) == 0.0


def test_transfer_files_tolerate_shapes_and_junk(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"idea": "x", "target_pgr": 0.1}))
    (tmp_path / "b.json").write_text(json.dumps([{"idea": "y"}, 3]))
    (tmp_path / "c.json").write_text(json.dumps({"rows": [{"idea": "z"}]}))
    (tmp_path / "d.json").write_text("{not json")
    (tmp_path / "e.json").symlink_to(tmp_path / "a.json")
    rows, notes = read_transfers(tmp_path)
    assert [r["idea"] for r in rows] == ["x", "y", "z"] and len(notes) == 2
    assert read_transfers(tmp_path / "absent") == ([], [])


def test_transfer_results_and_replay_verdicts_reach_the_page(tmp_path: Path) -> None:
    side = ScoredRun(testbed="a", ok=True, pgr=PartValues(combined=0.4), pgr_se=PartValues(combined=0.02))
    target = side.model_copy(update={"testbed": "b", "vs_best_baseline": BaselineComparison(
        baseline="zeroshot", baseline_pgr=PartValues(combined=0.38), diff=PartValues(combined=0.02),
        paired_se=PartValues(combined=0.007))})
    result = TransferResult(team="t", idea="w1:c1", snapshot_id=None, source=side, target=target)
    (tmp_path / "transfers").mkdir()
    (tmp_path / "transfers" / "w1.json").write_text(result.model_dump_json())  # what `aar transfer` saves
    rows, notes = read_transfers(tmp_path / "transfers")
    assert notes == [] and rows == [result.row()] and rows[0]["diff_se"] == 0.007
    hostile = Replay(submission_id="sub_1", snapshot_id=None, reproducible=False, reason=f"exit 1: {XSS}")
    report = build_report(data(transfers=rows, replays=[hostile]))
    write_report(report, tmp_path / "out")
    text = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in text.lower() and "not reproducible: exit 1: &lt;script&gt;" in text
    assert "<td>0.020</td><td>0.007</td>" in text  # the transfer's paired difference and its SE


def test_cli_writes_the_report_of_a_synthetic_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two evolve teams as the orchestrator writes them; no eval server runs, so SEs are noted unavailable."""
    from typer.testing import CliRunner

    from aar.agents.base import Trajectory
    from aar.cli import app
    from aar.config import Settings
    from aar.orchestrator.team import TeamSpec, TeamState, WorkerState, save_state, team_dir

    monkeypatch.setenv("AAR_HOME", str(tmp_path))
    settings = Settings(home=tmp_path)
    for name in ("t", "u"):
        workers = [f"{name}-w{k}" for k in range(5)]
        team_dir(settings, name).mkdir(parents=True)
        spec = TeamSpec(team=name, workers=5, eval_url="http://127.0.0.1:9")
        save_state(settings, TeamState(team=name, spec=spec, created_at=T0,
                                       workers={w: WorkerState(worker=w) for w in workers}))
        for k, w in enumerate(workers):
            traj = Trajectory(team_dir(settings, name) / "workers" / w / "trajectory.jsonl")
            traj.append("run_start", kind="evolve")
            traj.append("decision", generation=1, children=[{"id": "g1-c0", "origin": "mutation",
                                                             "recipe": json.dumps({"ensemble": k + 1})}])
            traj.append("submission", submission_id=f"{w}-s", candidate="g1-c0",
                        released_pgr={"combined": 0.1 * k})
        for w in workers:
            Trajectory(team_dir(settings, name) / "workers" / w / "trajectory.jsonl").append("run_end")
    result = CliRunner().invoke(app, ["report", "t", "--compare", "u", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert out["summary"]["ideas"] == 5 and out["summary"]["best_pgr"] == pytest.approx(0.4)
    assert [s["team"] for s in out["entropy"]] == ["t", "u"]
    assert any("SEs of released PGR unavailable" in n for n in out["notes"])
    folder = tmp_path / "runs" / "t" / "report"
    assert {"report.json", "report.html", "pgr.png", "entropy.png"} <= {p.name for p in folder.iterdir()}
    bad = CliRunner().invoke(app, ["report", "nope"])
    assert bad.exit_code != 0
