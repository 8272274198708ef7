"""8 concurrent writers post findings and snapshots to the hub: none lost; kill -9 loses no acked write."""

from __future__ import annotations

import gzip
import io
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.hub.client import HubClient, HubError
from aar.servicekit import free_port, wait_for_port

N_WRITERS = 8


def small_tarball(text: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as t:
        data = text.encode()
        info = tarfile.TarInfo("method.py")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def start_hub(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "AAR_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "aar.hub.app:create_app", "--factory",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    wait_for_port("127.0.0.1", port, timeout=60)
    return proc


class Writer(threading.Thread):
    """Posts findings (and every third time a snapshot) until told to stop or the hub goes away."""

    def __init__(self, url: str, token: str, name: str, n: int | None, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.label, self.n, self.halt = HubClient(url, token, timeout=30), name, n, stop
        self.findings: dict[int, str] = {}
        self.snapshots: set[str] = set()
        self.error: Exception | None = None

    def run(self) -> None:
        i = 0
        while (self.n is None or i < self.n) and not self.halt.is_set():
            try:
                title = f"{self.label} finding {i}"
                f = self.client.post_finding({"title": title, "kind": "insight", "body": f"body {i}"})
                self.findings[f.id] = title  # acknowledged
                if i % 3 == 0:
                    self.snapshots.add(self.client.upload_snapshot(small_tarball(f"{self.label} {i}")).id)
            except HubError as exc:
                self.error = exc
                return
            i += 1


def run_writers(url: str, tokens: list[str], n: int | None, stop: threading.Event) -> list[Writer]:
    writers = [Writer(url, t, f"w{k}", n, stop) for k, t in enumerate(tokens)]
    for w in writers:
        w.start()
    return writers


def check_all_present(url: str, token: str, writers: list[Writer]) -> int:
    c = HubClient(url, token)
    stored: dict[int, str] = {}
    cursor = 0
    while page := c.findings(since_rev=cursor, limit=500).findings:
        stored.update({f.id: f.title for f in page})
        cursor = page[-1].rev
    for w in writers:
        for fid, title in w.findings.items():
            assert stored.get(fid) == title, f"acknowledged finding {fid} lost"
        for sid in w.snapshots:
            assert c.download_snapshot(sid)  # record and blob both there, sha256 checked
    return len(stored)


def test_concurrent_writers_and_kill9(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tokens_db = TokenStore(make_engine(Settings(home=home).sqlite_url("auth")))
    tokens = [tokens_db.create(f"w{k}", "t1") for k in range(N_WRITERS)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_hub(home, port)
    try:
        # phase 1: 8 writers x 12 findings (+4 snapshots each), all must land
        t0 = time.monotonic()
        writers = run_writers(url, tokens, 12, threading.Event())
        for w in writers:
            w.join(timeout=120)
        elapsed = time.monotonic() - t0
        assert all(w.error is None for w in writers), [str(w.error) for w in writers if w.error]
        assert check_all_present(url, tokens[0], writers) == N_WRITERS * 12
        writes = N_WRITERS * (12 + 4)
        print(f"\n{writes} concurrent writes by {N_WRITERS} writers in {elapsed:.2f}s "
              f"({writes / elapsed:.0f} writes/s)")
        # phase 2: writers run flat out; the hub is killed -9 under them, then restarted
        stop = threading.Event()
        writers = run_writers(url, tokens, None, stop)
        time.sleep(1.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for w in writers:
            w.join(timeout=60)
        stop.set()
        acked = sum(len(w.findings) + len(w.snapshots) for w in writers)
        assert acked > 0 and all(w.error is not None for w in writers)
        proc = start_hub(home, port)
        total = check_all_present(url, tokens[0], writers)
        print(f"kill -9 with {acked} acknowledged writes in flight: 0 lost ({total} findings after restart)")
        with sqlite3.connect(home / "hub.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # the restarted hub takes writes again, ids keep increasing
        c = HubClient(url, tokens[1])
        assert c.post_finding({"title": "after restart", "kind": "insight"}).id > max(
            fid for w in writers for fid in w.findings)
    finally:
        proc.kill()
        proc.wait(timeout=10)
