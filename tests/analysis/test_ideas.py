"""Ideas as records: evolve candidates from trajectories (families from their genes, submissions linked),
findings of LLM workers (family given or classified), and the entropy curve over a synthetic team."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aar.agents.base import Trajectory, read_trajectory
from aar.agents.providers.scripted import ScriptedProvider
from aar.analysis.diversity import entropy_curve
from aar.analysis.families import LlmClassifier
from aar.analysis.ideas import idea_starts, ideas_from_evolve, ideas_from_findings
from aar.hub.models import Finding

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def evolve_trajectory(path: Path, children: list[tuple[str, dict]], submitted: dict[str, str]) -> list:
    traj = Trajectory(path)
    traj.append("run_start", kind="evolve")
    traj.append("decision", generation=1,
                children=[{"id": cid, "origin": "mutation", "parents": ["g0-c0"] if k else [],
                           "recipe": json.dumps(diff, sort_keys=True)} for k, (cid, diff) in enumerate(children)])
    for cid, sid in submitted.items():
        traj.append("submission", submission_id=sid, candidate=cid)
    traj.append("decision", skipped="g1-c9", reason="near-duplicate")  # not an idea
    return read_trajectory(path)


def test_evolve_candidates_become_ideas_with_their_gene_families(tmp_path: Path) -> None:
    steps = evolve_trajectory(tmp_path / "t.jsonl", [("g1-c0", {}), ("g1-c1", {"ensemble": 3}),
                                                     ("g1-c2", {"agree_only": True, "loss": "logconf"})],
                              {"g1-c1": "sub_1"})
    ideas = ideas_from_evolve("w1", steps, T0)
    assert [i.id for i in ideas] == ["w1:g1-c0", "w1:g1-c1", "w1:g1-c2"]
    assert [i.family for i in ideas] == ["distillation", "ensemble", "data_filtering"]  # vanilla is distillation
    assert ideas[2].families == ["data_filtering", "loss_function"] and ideas[1].submission_ids == ["sub_1"]
    assert all(i.family_source == "recipe" and i.hours > 0 for i in ideas)
    assert ideas[0].parents == [] and ideas[1].parents == ["w1:g0-c0"]  # the idea tree's edges


def finding(fid: int, author: str, title: str, family: str | None, minutes: int,
            parents: list[int] | None = None) -> Finding:
    return Finding(id=fid, rev=fid, team="t", author=author, title=title, body="", kind="insight", family=family,
                   config={}, tags=[], parents=parents or [], submission_ids=[f"s{fid}"], scores={}, snapshot_id=None,
                   votes=0, n_comments=0, created_at=T0 + timedelta(minutes=minutes))


def test_findings_become_ideas_and_unlabelled_ones_are_classified() -> None:
    found = [finding(1, "w1", "Bagging ten heads", "ensemble", 30),
             finding(2, "w2", "Pseudo-labels for three rounds", None, 90, parents=[1, 77])]
    judge = ScriptedProvider("judge", [{"text": '{"family": "self_training"}'}])
    ideas = ideas_from_findings(found, T0, LlmClassifier(judge))
    assert [(i.family, i.family_source) for i in ideas] == [("ensemble", "worker"), ("self_training", "classifier")]
    assert ideas[1].hours == pytest.approx(1.5) and ideas[1].finding_ids == [2] and ideas[1].submission_ids == ["s2"]
    assert judge.calls == 1  # only the finding without a family was classified
    assert ideas[1].parents == ["w1:finding-1"]  # a parent outside the team's findings is dropped


def test_a_collapsing_team_shows_falling_entropy() -> None:
    """Six workers start six families; over two hours all move to one: the curve falls to 0."""
    fams = ["ensemble", "curriculum", "distillation", "loss_function", "model_internal", "self_training"]
    found = [finding(k + 1, f"w{k}", "idea", fam, 0) for k, fam in enumerate(fams)]
    found += [finding(10 + k, f"w{k}", "idea", "ensemble", 60 + 10 * k) for k in range(6)]
    starts, end = idea_starts(ideas_from_findings(found, T0))
    points = entropy_curve(starts, end, min_workers=5, n_boot=100)
    assert points[0].entropy == pytest.approx(2.585, abs=1e-3) and points[-1].entropy == 0.0
    assert all(a.entropy >= b.entropy for a, b in zip(points, points[1:], strict=False))


def test_cli_lists_a_teams_ideas_and_their_entropy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A synthetic evolve team of five workers (state and trajectories as the orchestrator writes them)."""
    from typer.testing import CliRunner

    from aar.cli import app
    from aar.config import Settings
    from aar.orchestrator.team import TeamSpec, TeamState, WorkerState, save_state, team_dir

    monkeypatch.setenv("AAR_HOME", str(tmp_path))
    settings = Settings(home=tmp_path)
    workers = [f"t-w{k:02d}" for k in range(5)]
    team_dir(settings, "t").mkdir(parents=True)
    save_state(settings, TeamState(team="t", spec=TeamSpec(team="t", workers=5), created_at=T0,
                                   workers={w: WorkerState(worker=w) for w in workers}))
    genes = [{}, {"ensemble": 3}, {"agree_only": True}, {"weight_power": 1.0}, {"curriculum_stages": 2}]
    for w, diff in zip(workers, genes, strict=True):
        evolve_trajectory(team_dir(settings, "t") / "workers" / w / "trajectory.jsonl", [("g1-c0", diff)], {})
    for w in workers:  # the workers ran at the same time: each ends after every start
        Trajectory(team_dir(settings, "t") / "workers" / w / "trajectory.jsonl").append("run_end")
    runner = CliRunner()
    listed = runner.invoke(app, ["ideas", "list", "t", "--json"])
    assert listed.exit_code == 0, listed.output
    ideas = json.loads(listed.stdout[listed.stdout.index("["):])
    assert sorted(i["family"] for i in ideas) == sorted(
        ["distillation", "ensemble", "data_filtering", "confidence_weighting", "curriculum"])
    curve = runner.invoke(app, ["ideas", "entropy", "t", "--json"])
    assert curve.exit_code == 0, curve.output
    data = json.loads(curve.stdout[curve.stdout.index("{"):])
    assert data["ideas"] == 5 and 1.0 < data["vendi"] <= 5.0
    assert data["points"] and data["points"][-1]["entropy"] == pytest.approx(2.3219, abs=1e-3)  # log2(5)
