"""The researcher protocol: budgets end runs cleanly (dollars, tokens, submissions, wall), usage survives restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aar.agents.base import Budget, Researcher, Step, StopRequested, read_trajectory, usage_from


class Scripted(Researcher):
    """Spends a fixed amount per session, as an LLM researcher reports tokens and cost from its provider."""

    kind = "scripted"

    def __init__(self, path: Path, budget: Budget, per_session: dict, stop_at: int | None = None) -> None:
        super().__init__(path, budget)
        self.per_session, self.stop_at = per_session, stop_at

    def session(self, number: int) -> bool:
        if number == self.stop_at:
            raise StopRequested("signal 15")
        self.charge(tokens=self.per_session.get("tokens", 0), dollars=self.per_session.get("dollars", 0.0))
        for _ in range(self.per_session.get("submissions", 0)):
            self.record_submission(f"sub-{number}")
        return True


@pytest.mark.parametrize(("budget", "per", "sessions", "word"), [
    (Budget(wall_s=None, dollars=1.0, submissions=None), {"dollars": 0.3}, 4, "dollars"),
    (Budget(wall_s=None, tokens=1000, submissions=None), {"tokens": 400}, 3, "tokens"),
    (Budget(wall_s=None, submissions=5), {"submissions": 2}, 3, "submissions"),
])
def test_each_budget_stops_the_run(tmp_path: Path, budget: Budget, per: dict, sessions: int, word: str) -> None:
    path = tmp_path / "trajectory.jsonl"
    usage = Scripted(path, budget, per).run()
    steps = read_trajectory(path)
    assert usage.sessions == sessions
    assert steps[-2].type == "budget_stop" and word in steps[-2].data["reason"]
    assert steps[-1].type == "run_end" and steps[-1].data["usage"]["sessions"] == sessions
    # a restarted worker keeps what it spent: no new session starts
    again = Scripted(path, budget, per).run()
    assert again.sessions == sessions
    assert [s.type for s in read_trajectory(path)][-3:] == ["run_start", "budget_stop", "run_end"]


def test_stop_request_ends_cleanly_and_lines_are_schema_valid(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    Scripted(path, Budget(wall_s=None, submissions=None), {"dollars": 0.01}, stop_at=3).run()
    steps = read_trajectory(path)
    assert steps[-1].data["reason"] == "stopped" and steps[-2].type == "session_end"
    assert all(Step.model_validate(json.loads(line)).schema_version == 1 for line in path.read_text().splitlines())
    assert usage_from(steps).dollars == pytest.approx(0.02)


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    Scripted(path, Budget(wall_s=None, submissions=2), {"submissions": 1}).run()
    with path.open("a") as f:
        f.write('{"schema_version": 1, "type": "sess')  # killed mid-write
    assert usage_from(read_trajectory(path)).submissions == 2


def test_a_bad_line_in_the_middle_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: a bad middle line (a torn write, then more runs) raised, and the supervisor crashed on it."""
    path = tmp_path / "trajectory.jsonl"
    Scripted(path, Budget(wall_s=None, submissions=2), {"submissions": 1}).run()
    with path.open("a") as f:
        f.write('{"schema_version": 1, "type": "sess\n\xff\xfe not json\n')
    Scripted(path, Budget(wall_s=None, submissions=4), {"submissions": 1}).run()  # reads past it to resume
    caplog.clear()
    with caplog.at_level("WARNING"):
        steps = read_trajectory(path)
    assert usage_from(steps).submissions == 4
    assert sum("not a valid step" in r.message for r in caplog.records) == 2


def test_the_trajectory_is_capped_but_keeps_charges_and_submissions(tmp_path: Path) -> None:
    """Before: an agent printing without end grew its trajectory (and every reader's work) without bound."""
    from aar.agents.base import Trajectory

    traj = Trajectory(tmp_path / "trajectory.jsonl", max_bytes=20_000)
    traj.append("run_start")
    for _ in range(200):
        traj.append("tool_result", name="shell", result="x" * 1000)
    traj.append("message", tokens=100, cost_usd=0.5, role="proxy_call")
    traj.append("submission", submission_id="s1")
    traj.append("run_end")
    steps = read_trajectory(traj.path)
    assert traj.path.stat().st_size < 25_000
    assert sum("no longer kept" in s.data.get("error", "") for s in steps) == 1
    assert usage_from(steps).dollars == 0.5 and usage_from(steps).submissions == 1 and steps[-1].type == "run_end"
    reopened = Trajectory(traj.path, max_bytes=20_000)  # a restart knows the size already written
    reopened.append("tool_result", name="shell", result="y" * 1000)
    assert "y" * 1000 not in traj.path.read_text()
