"""Durability: kill -9 during a stream of submissions loses no acknowledged one; failed commits are safe."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from evalkit import LiveEval, free_port, make_testbed, noisy_predictions

from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.evalserver.audit import verify_chain
from aar.evalserver.store import Store


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "AAR_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    with log.open("ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "aar.evalserver", "--port", str(port)], env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start: " + log.read_text())


def test_kill_9_loses_no_acknowledged_submission(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    tb = make_testbed(settings)
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    admin = {"Authorization": f"Bearer {tokens.create('root', 'ops', 'admin')}"}
    workers = {f"w{k}": tokens.create(f"w{k}", "dur") for k in range(4)}
    log = tmp_path / "server.log"
    proc, url = start_server(home, log)
    r = httpx.put(f"{url}/v1/teams/dur/config", json={"max_per_hour": 10_000, "team_max_per_hour": 100_000},
                  headers=admin)
    assert r.status_code == 200
    acked: dict[str, list[str]] = {w: [] for w in workers}
    sent: dict[str, list[dict[str, float]]] = {w: [] for w in workers}
    stop = threading.Event()

    def stream(worker: str, token: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            while not stop.is_set():
                preds = noisy_predictions(tb.labels, 0.85, rng)
                try:
                    resp = c.post("/v1/submissions", json={"testbed": tb.name, "predictions": preds})
                except httpx.HTTPError:
                    return
                if resp.status_code == 200:
                    acked[worker].append(resp.json()["id"])
                    sent[worker].append(preds)

    threads = [threading.Thread(target=stream, args=(w, t, k)) for k, (w, t) in enumerate(workers.items())]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, acked.values())) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    n_acked = sum(map(len, acked.values()))
    assert n_acked >= 60

    proc, url = start_server(home, log)
    try:
        stored = {r["id"] for r in httpx.get(f"{url}/v1/audit", params={"limit": 5000}, headers=admin).json()}
        missing = {i for ids in acked.values() for i in ids} - stored
        assert not missing, f"{len(missing)} acknowledged submissions lost"
        checked, broken = verify_chain(Store(make_engine(settings.sqlite_url("evalserver"))))
        assert broken is None and checked == len(stored)
        # state came back from the log: budgets count every stored row, the ladder keeps its best
        w0 = {"Authorization": f"Bearer {workers['w0']}"}
        listed = httpx.get(f"{url}/v1/submissions", params={"limit": 1000}, headers=w0).json()
        n_w0 = len(listed["submissions"])
        again = httpx.post(f"{url}/v1/submissions", json={"testbed": tb.name, "predictions": sent["w0"][0]},
                           headers=w0).json()
        assert again["budget"]["used_total"] == n_w0 + 1
        assert again["released"]["improved"] is False  # the same hard labels as a stored one: withheld
        assert again["released"]["acc"]["combined"] is not None  # a fresh ladder would have nothing yet
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_failed_commit_answers_503_and_keeps_state_consistent(make_live) -> None:  # type: ignore[no-untyped-def]
    live: LiveEval = make_live()
    db = live.settings.home / "evalserver.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON eval_submissions WHEN NEW.worker_id = 'doomed' "
                     "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    doomed, fine = live.client("doomed", "fail"), live.client("fine", "fail")
    body = {"testbed": live.testbed.name, "predictions": dict.fromkeys(live.testbed.test_ids, 0.7)}
    good = {"testbed": live.testbed.name,
            "predictions": noisy_predictions(live.testbed.labels, 0.95, np.random.default_rng(0))}
    r = doomed.post("/v1/submissions", json=good)
    assert r.status_code == 503 and "not recorded" in r.json()["detail"]
    ok = fine.post("/v1/submissions", json=body)
    assert ok.status_code == 200 and ok.json()["budget"]["used_total"] == 1
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER boom")
    r = doomed.post("/v1/submissions", json=good)  # the failed one left no trace: released now
    assert r.status_code == 200
    assert r.json()["budget"]["used_total"] == 1 and r.json()["released"]["improved"] is True
    assert [s["worker_id"] for s in live.client(admin=True).get("/v1/audit").json()] == ["fine", "doomed"]
    _, broken = verify_chain(Store(make_engine(live.settings.sqlite_url("evalserver"))))
    assert broken is None


def test_second_server_on_the_same_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_testbed(Settings(home=home))
    log = tmp_path / "server.log"
    proc, _ = start_server(home, log)
    try:
        env = {**os.environ, "AAR_HOME": str(home)}
        second = subprocess.run([sys.executable, "-m", "aar.evalserver", "--port", str(free_port())], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "another eval server" in second.stderr + second.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
