"""`aar sandbox run` passes stdin, stdout and the exit code through; `aar sandbox check` reports and exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aar.cli import app
from conftest import needs_bwrap

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _aar(args: list[str], home: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "AAR_HOME": str(home), "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", "from aar.cli import main; main()", *args], input=stdin,
                          capture_output=True, env=env, timeout=60)


@pytest.mark.parametrize("backend", [pytest.param("bwrap", marks=needs_bwrap), "local"])
def test_run_passes_stdin_stdout_and_exit_code(tmp_path: Path, backend: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    r = _aar(["sandbox", "run", "--workspace", str(ws), "--backend", backend, "--",
              "sh", "-c", "tr a-z A-Z; echo made > out.txt; exit 7"], tmp_path / "home", b"hello sandbox\n")
    assert r.returncode == 7, r.stderr
    assert r.stdout == b"HELLO SANDBOX\n"
    assert (ws / "out.txt").read_text() == "made\n"
    if backend == "local":
        assert b"isolates NOTHING" in r.stderr


@needs_bwrap
def test_run_hides_aar_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "labels").mkdir(parents=True)
    (home / "labels" / "l.jsonl").write_text("SECRET")
    ws = home / "runs" / "t" / "workers" / "w" / "workspace"
    ws.mkdir(parents=True)
    r = _aar(["sandbox", "run", "--workspace", str(ws), "--", "cat", str(home / "labels" / "l.jsonl")], home)
    assert r.returncode != 0 and b"SECRET" not in r.stdout


def test_bad_backend_is_one_line(tmp_path: Path) -> None:
    r = _aar(["sandbox", "run", "--backend", "nope", "--", "true"], tmp_path)
    assert r.returncode == 2 and b"unknown sandbox backend" in r.stderr and b"Traceback" not in r.stderr


def test_check_json_and_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import aar.sandbox.check as check
    from aar.sandbox.attempts import ATTEMPTS

    real = check.run_check
    few = [a for a in ATTEMPTS if a.name in ("label-file", "env-api-key")]
    monkeypatch.setattr(check, "run_check", lambda backend, progress=None: real(backend, few, progress=progress))
    r = CliRunner().invoke(app, ["sandbox", "check", "--backend", "local", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["backend"] == "local" and data["passed"]
    assert {a["name"]: a["blocked"] for a in data["attempts"]} == {"label-file": False, "env-api-key": False}
    # an isolating backend that blocks nothing fails the check
    monkeypatch.setattr(check, "run_check", lambda backend, progress=None: real("local", few).model_copy(
        update={"passed": False}))
    assert CliRunner().invoke(app, ["sandbox", "check", "--json"]).exit_code == 1
