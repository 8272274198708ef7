"""CLI: aar token create / revoke, aar audit export, aar team finalize, aar serve (eval server + hub)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from evalkit import LiveEval, free_port
from typer.testing import CliRunner

from aar.cli import app
from aar.evalserver.launch import hub_problem

runner = CliRunner()
MAIN = "from aar.cli import main; main()"


def cli(live: LiveEval, *args: str) -> str:
    result = runner.invoke(app, list(args), env={"AAR_HOME": str(live.settings.home)})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_token_create_and_revoke(make_live) -> None:  # type: ignore[no-untyped-def]
    live: LiveEval = make_live()
    token = cli(live, "token", "create", "--worker", "w9", "--team", "cli").strip()
    assert token.startswith("aar_") and "\n" not in token
    info = json.loads(cli(live, "token", "create", "--worker", "boss", "--role", "admin", "--json"))
    assert info["role"] == "admin" and info["token"].startswith("aar_")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/v1/whoami").json() == {"worker_id": "w9", "team": "cli", "role": "worker"}
    assert json.loads(cli(live, "token", "revoke", "--worker", "w9", "--json"))["revoked"] == 1
    assert live.tokens.verify(token) is None


def test_audit_export_and_finalize(make_live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    live: LiveEval = make_live()
    client = live.client("w1", "cli-f")
    for p in (0.6, 0.2):
        body = {"testbed": live.testbed.name, "predictions": dict.fromkeys(live.testbed.test_ids, p)}
        assert client.post("/v1/submissions", json=body).status_code == 200
    local = json.loads(cli(live, "team", "finalize", "cli-f", "--json"))
    admin_token = live.tokens.create("root", "ops", "admin")
    remote = json.loads(cli(live, "team", "finalize", "cli-f", "--url", live.url, "--token", admin_token,
                            "--json"))
    assert local["workers"][0]["public"] == remote["workers"][0]["public"]
    assert local["workers"][0]["private"] is None  # no idea folder was submitted: nothing to replay
    assert "idea_dir" in local["workers"][0]["replay"]["reason"]
    table = cli(live, "team", "finalize", "cli-f")
    assert "private" in table and "REPRODUCIBLE" in table and "w1" in table, table
    out = tmp_path / "audit.jsonl"
    summary = json.loads(cli(live, "audit", "export", "--out", str(out), "--json"))
    assert summary["submissions"] == 2 and summary["finalizations"] == 3 and summary["chain_ok"]
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header" and json.loads(lines[-1])["type"] == "summary"
    stdout_export = cli(live, "audit", "export", "--team", "cli-f").splitlines()
    assert len(stdout_export) == len(lines)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AAR_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", MAIN, "team", "finalize", "ghost"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no submissions" in r.stderr and r.stderr.startswith("error:")
    r = subprocess.run([sys.executable, "-c", MAIN, "serve", "--config", str(tmp_path / "missing.toml")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "does not exist" in " ".join(r.stderr.split())  # rich wraps long lines


def _wait(url: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.parametrize("with_hub", [False, True])
def test_serve_starts_both_services_and_stops_on_sigterm(tmp_path: Path, with_hub: bool) -> None:
    if with_hub and hub_problem() is not None:
        pytest.skip(f"aar.hub.app is not importable yet: {hub_problem()}")
    eval_port, hub_port, dash_port = free_port(), free_port(), free_port()  # not 8712: a user's may be up
    cfg = tmp_path / "eval.toml"
    cfg.write_text("max_items = 5000\n[team_defaults]\nmax_per_hour = 7\n")
    args = ["serve", "--port", str(eval_port), "--hub-port", str(hub_port), "--dashboard-port", str(dash_port),
            "--config", str(cfg)]
    if not with_hub:
        args.append("--no-hub")
    env = {**os.environ, "AAR_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-c", MAIN, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait(f"http://127.0.0.1:{eval_port}", proc)
        if with_hub:
            _wait(f"http://127.0.0.1:{hub_port}", proc)
        saved = json.loads((tmp_path / "home" / "evalserver" / "config.json").read_text())
        assert saved["max_items"] == 5000 and saved["team_defaults"]["max_per_hour"] == 7
        assert proc.stderr is not None
        ready = proc.stderr.readline()  # serve says so once both answer their health checks
        assert "serving eval server at" in ready and ("hub at" in ready) == with_hub
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{eval_port}/healthz", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_on_busy_ports_fails_in_one_line(tmp_path: Path) -> None:
    """A second ``aar serve`` used to print "serving" (the first server answered its health check)."""
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    env = {**os.environ, "AAR_HOME": str(tmp_path)}
    try:
        r = subprocess.run([sys.executable, "-c", MAIN, "serve", "--port", str(port), "--no-hub", "--no-dashboard"],
                           env=env, capture_output=True, text=True, timeout=120)
    finally:
        busy.close()
    assert r.returncode == 2 and "serving" not in r.stderr + r.stdout
    assert r.stderr.startswith("error:") and "not free" in " ".join(r.stderr.split())
    assert len(r.stderr.strip().splitlines()) <= 2  # one line (rich may wrap it)
