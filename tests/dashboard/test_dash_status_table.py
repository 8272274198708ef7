"""``aar team status`` on a narrow terminal and piped: short worker labels, full phase and PGR, columns that
drop by priority, directions listed below instead of cut."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from aar.orchestrator.cli import rich_status
from aar.orchestrator.directions import DEFAULT_DIRECTIONS
from aar.orchestrator.status import TeamStatus, WorkerStatus, plain_status, short_label

TEAM = "team-20261205-115800-ab12"


def status() -> TeamStatus:
    workers = [WorkerStatus(worker=f"{TEAM}-w{k:02d}", direction=DEFAULT_DIRECTIONS[k], phase="running", restarts=0,
                            sessions=2, submissions=7, best_released_pgr=0.41234, dollars=1.25, dollars_known=k != 2,
                            tokens=12345, hours=0.5, last_activity=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
                            flags={"seed_cherry_picking": 1} if k == 1 else {}) for k in (1, 2, 3)]
    return TeamStatus(team=TEAM, phase="running", reason=None, supervisor_alive=True, testbed="wordsense",
                      workers=workers, submissions=21, dollars=3.75, dollars_known=False, tokens=37035, hours=1.5,
                      dollars_per_aar_hour=None, best_released_pgr=0.41234)


def test_short_labels() -> None:
    assert short_label(TEAM, f"{TEAM}-w01") == "w01"
    assert short_label(TEAM, "other-w01") == "other-w01"


def test_plain_layout_when_piped() -> None:
    text = plain_status(status())
    assert "…" not in text and "w01" in text and f"{TEAM}-w01" not in text
    header = text.splitlines()[1].split()
    assert header[:4] == ["worker", "phase", "best", "PGR"]
    assert "running" in text and "0.412" in text and "unknown" in text  # no known price: never $0
    assert DEFAULT_DIRECTIONS[1] in text  # in full, below the table


def test_80_columns_fit_and_keep_the_important_columns() -> None:
    console = Console(width=80, record=True, force_terminal=True, color_system=None)
    console.print(rich_status(status(), 80))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for must in ("w01", "running", "best PGR", "0.412", "subs", "unknown"):
        assert must in text, must
    assert "…" not in text and "runni…" not in text
    assert "directions:" in text  # the direction column was dropped, listed below instead
    wide = Console(width=220, record=True, force_terminal=True, color_system=None)
    wide.print(rich_status(status(), 220))
    text = wide.export_text()
    assert "directions:" not in text and "tokens" in text


def test_cli_status_piped(tmp_path: Path) -> None:
    from dashkit import fake_team, home
    from typer.testing import CliRunner

    from aar.cli import app

    settings = home(tmp_path)
    fake_team(settings, TEAM, workers=3)
    out = CliRunner().invoke(app, ["team", "status", TEAM], env={"AAR_HOME": str(settings.home)})
    assert out.exit_code == 0, out.output
    assert "…" not in out.stdout and "w03" in out.stdout and f"{TEAM}-w03" not in out.stdout
    assert "running" in out.stdout and "best PGR" in out.stdout and "leaderboard unavailable" in out.stdout
