"""``aar sandbox check``: run every escape attempt in a sandbox configured like a worker's.

The check never touches real data. It builds a throwaway world (under ``/var/tmp`` when it can, so
that no default mask hides it by accident): an AAR_HOME with a fake label store, a fake admin token,
a fake service database and snapshot, two workers (the sandbox's and another one), a fake label
source declared as a hidden path; on the host side a decoy process (cwd in the label store, the
label file open on stdin, a fake ``ANTHROPIC_API_KEY`` in its environment), a loopback TCP listener
and a unix socket listener in ``/tmp``. The host environment the sandbox is built from also holds the
fake key and admin token. Every process it starts is killed and every file removed at the end; the
whole suite takes about 15 s on an idle machine (limits are small: 1 GiB address space, 32 processes,
8 MiB quota, 1 CPU second for the CPU attempt).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aar.sandbox.attempts import ATTEMPTS, Attempt
from aar.sandbox.base import ExecResult, Limits, Sandbox
from aar.sandbox.files import disk_usage

CHECK_LIMITS = Limits(wall_s=15, cpu_s=10, memory_bytes=1 << 30, max_processes=32, max_output_bytes=64 << 10,
                      disk_bytes=8 << 20, tmp_bytes=16 << 20)


class AttemptResult(BaseModel):
    """One attempt under one backend. ``blocked`` is None when the attempt does not apply here."""

    name: str
    what: str
    kind: str
    expected_blocked: bool | None
    blocked: bool | None
    ok: bool
    detail: str = ""


class CheckReport(BaseModel):
    """The whole suite under one backend; ``passed`` is False if any attempt broke its expectation."""

    backend: str
    passed: bool
    attempts: list[AttemptResult]
    duration_s: float
    root: str


class _Listener:
    """A thread that accepts connections and sends ``payload`` to each (TCP or unix)."""

    def __init__(self, sock: socket.socket, payload: bytes) -> None:
        self.sock, self.payload = sock, payload
        sock.listen(8)
        sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.sendall(self.payload)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(1)
        self.sock.close()


DECOY = ("import signal, sys, time\n"
         "signal.signal(signal.SIGUSR1, lambda *a: open(sys.argv[1], 'w').write('signalled'))\n"
         "time.sleep(120)\n")


class CheckFixture:
    """The throwaway world of one check run (a context manager that removes itself)."""

    def __init__(self, base: Path | None = None) -> None:
        base = base or (Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path(tempfile.gettempdir()))
        self.root = Path(tempfile.mkdtemp(prefix="aar-check-", dir=base)).resolve()
        os.chmod(self.root, 0o755)  # everything here is world-readable: only the sandbox's masks may stop a read
        self.marks = {k: f"{k.upper()}-{secrets.token_hex(6)}" for k in
                      ("label", "other", "admin", "api", "db", "snap", "source", "tcp", "unix")}
        home = self.root / "home"
        self.home = home
        tb = home / "labels" / "tb"
        tb.mkdir(parents=True)
        self.label_file = tb / "labels.jsonl"
        self.label_file.write_text(f'{{"id": "x1", "label": 1, "mark": "{self.marks["label"]}"}}\n')
        (home / "admin.token").write_text(self.marks["admin"] + "\n")
        (home / "hub.db").write_text(f"SQLite format 3 {self.marks['db']}\n")
        (home / "snapshots").mkdir()
        (home / "snapshots" / "snap.tar").write_text(self.marks["snap"])
        workers = home / "runs" / "team" / "workers"
        self.workspace = workers / "w1" / "workspace"
        self.workspace.mkdir(parents=True)
        (workers / "w2" / "workspace").mkdir(parents=True)
        self.other_file = workers / "w2" / "workspace" / "notes.md"
        self.other_file.write_text(self.marks["other"])
        self.label_source = self.root / "labelsource"
        self.label_source.mkdir()
        (self.label_source / "data.noun").write_text(f"00001740 03 n 01 entity 0 | {self.marks['source']}\n")
        self.outside = self.root / "outside"
        self.outside.mkdir()
        os.chmod(self.outside, 0o777)  # only the read-only mount may stop the write
        (self.workspace / "planted-link").symlink_to(self.label_file)
        os.link(self.label_file, self.workspace / "planted-hardlink")  # a host-side mistake, masked per exec
        self.flag = self.root / "decoy-signalled"
        self.decoy_mark = f"aar-check-decoy-{secrets.token_hex(4)}"
        with open(self.label_file, "rb") as stdin:
            self.decoy = subprocess.Popen(
                [sys.executable, "-c", DECOY, str(self.flag), self.decoy_mark], cwd=tb, stdin=stdin,
                env={"PATH": os.environ.get("PATH", ""), "ANTHROPIC_API_KEY": self.marks["api"]},
                start_new_session=True)
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        self.tcp = _Listener(tcp, self.marks["tcp"].encode())
        self.unix_path = Path(tempfile.gettempdir()) / f"aar-check-{secrets.token_hex(4)}.sock"
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(str(self.unix_path))
        os.chmod(self.unix_path, 0o777)
        self.unix = _Listener(unix, self.marks["unix"].encode())
        self.outside_name = f"aar-check-{secrets.token_hex(4)}"
        self.tmp_prefix = f"aar-check-fill-{secrets.token_hex(4)}"
        self.linger = f"47.{secrets.randbelow(10**6):06d}"
        self.host_env = {**os.environ, "ANTHROPIC_API_KEY": self.marks["api"], "AAR_ADMIN_TOKEN": self.marks["admin"]}

    def context(self, limits: Limits) -> dict[str, Any]:
        """The ``{fields}`` the attempt programs are formatted with."""
        assert limits.memory_bytes and limits.disk_bytes
        return {"label_file": str(self.label_file), "label_dir": str(self.label_file.parent),
                "aar_home": str(self.home), "decoy_pid": self.decoy.pid, "decoy_mark_reversed": self.decoy_mark[::-1],
                "other_file": str(self.other_file), "label_source": str(self.label_source),
                "admin_token": str(self.home / "admin.token"), "hub_db": str(self.home / "hub.db"),
                "snapshot": str(self.home / "snapshots" / "snap.tar"), "host_home": str(Path.home()),
                "tcp_port": self.tcp.sock.getsockname()[1], "unix_socket": str(self.unix_path),
                "outside_dir": str(self.outside), "outside_name": self.outside_name, "linger_s": self.linger,
                "memory_hog": 2 * limits.memory_bytes, "disk_files": 10 * limits.disk_bytes // (1 << 20),
                "disk_bytes": limits.disk_bytes,
                "tmp_files": limits.tmp_bytes // (1 << 20), "tmp_prefix": self.tmp_prefix}

    def lingering(self) -> list[int]:
        """Host pids of processes an attempt left behind (found by their unique argv)."""
        pids = []
        for d in Path("/proc").glob("[0-9]*"):
            try:
                if self.linger.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                continue
        return pids

    def close(self) -> None:
        for pid in [self.decoy.pid, *self.lingering()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.decoy.wait(5)
        self.tcp.close()
        self.unix.close()
        for p in [self.unix_path, *Path(tempfile.gettempdir()).glob(self.tmp_prefix + "-*"),
                  Path("/var/tmp") / self.outside_name]:
            p.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> CheckFixture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host_check(name: str, fx: CheckFixture, r: ExecResult, limits: Limits, sb: Sandbox) -> tuple[bool | None, str]:
    """(escaped, detail) for attempts whose effect shows on the host; escaped None = not applicable."""
    if name == "other_tampered":
        return "tampered" in fx.other_file.read_text(), ""
    if name == "wordnet_installed":
        if "ESCAPED" in r.stdout:
            return True, ""
        installed = any(Path(d, "data.noun").exists() for d in ("/usr/share/wordnet", "/usr/local/share/wordnet"))
        return (False, "") if installed else (None, "WordNet is not installed on this host")
    if name == "decoy_signalled":
        time.sleep(0.3)
        return fx.flag.exists(), ""
    if name == "outside_written":
        hits = [p for p in (fx.outside / fx.outside_name, fx.home / fx.outside_name, Path("/var/tmp") / fx.outside_name)
                if p.exists()]
        return bool(hits), ", ".join(map(str, hits))
    if name == "process_left":
        time.sleep(0.3)
        return bool(fx.lingering()), ""
    if name == "disk_held":
        used = disk_usage(fx.workspace)
        refused = sb.exec(["true"]).limit_hit == "disk"
        for p in fx.workspace.glob("fill-*"):
            p.unlink()
        assert limits.disk_bytes
        return ("ESCAPED" in r.stdout or not refused,
                f"stopped at {used / limits.disk_bytes:.1f}x the quota by {r.limit_hit}; next exec refused: {refused}")
    if name == "tmp_cleanup":
        return "ESCAPED" in r.stdout, r.stderr.strip().splitlines()[-1][:120] if r.stderr.strip() else ""
    if name == "output_capped":
        capped = r.limit_hit == "output" and len(r.stdout.encode()) <= limits.max_output_bytes
        return not capped, f"kept {len(r.stdout)} bytes, killed: {r.limit_hit == 'output'}"
    if name == "cpu_killed":
        return r.limit_hit != "cpu", f"stopped by {r.limit_hit} after {r.duration_s:.1f}s"
    if name == "wall_killed":
        return not (r.timed_out and r.duration_s < 5), f"stopped by {r.limit_hit} after {r.duration_s:.1f}s"
    raise KeyError(name)


def _escaped(a: Attempt, fx: CheckFixture, r: ExecResult, limits: Limits, sb: Sandbox) -> tuple[bool | None, str]:
    if a.host_check:
        return _host_check(a.host_check, fx, r, limits, sb)
    hit = "ESCAPED" in r.stdout and (not a.secret or any(m in r.stdout for m in fx.marks.values()))
    detail = (r.stdout if hit else (r.stderr or r.stdout)).strip().splitlines()
    return hit, (detail[-1][:120] if detail else f"exit {r.exit_code}")


def run_check(backend: str = "bwrap", attempts: Iterable[Attempt] = ATTEMPTS, limits: Limits = CHECK_LIMITS,
              progress: Callable[[AttemptResult], None] | None = None) -> CheckReport:
    """Run the escape suite under ``backend`` and report each attempt.

    Under ``bwrap`` (or any isolating backend) every attempt must be blocked. Under ``local`` the
    isolation attempts must succeed (proof that each check can fail) and the limit attempts are
    informational.
    """
    from aar.sandbox import get_sandbox
    from aar.sandbox.policy import worker_config

    start = time.monotonic()
    isolating = backend != "local"
    with CheckFixture() as fx:
        config = worker_config(fx.workspace, aar_home=fx.home, hidden_paths=[fx.label_source], limits=limits)
        kwargs: dict[str, Any] = {"host_env": fx.host_env}
        if backend == "local":
            kwargs["warn"] = False
        sb: Sandbox = get_sandbox(backend, config, **kwargs)
        ctx = fx.context(limits)
        results = []
        for a in attempts:
            env = {k: v.format(**ctx) for k, v in a.env}
            run_in = sb
            if a.limits:
                tight = config.model_copy(update={"limits": limits.model_copy(update=dict(a.limits))})
                run_in = get_sandbox(backend, tight, **kwargs)
            r = run_in.exec([sys.executable, "-c", a.program.format(**ctx)], timeout=a.timeout, env=env)
            escaped, detail = _escaped(a, fx, r, limits, sb)
            expected = True if isolating else (False if a.kind == "isolation" else None)
            blocked = None if escaped is None else not escaped
            ok = blocked is None or expected is None or blocked == expected
            if a.kind == "isolation" and blocked and r.limit_hit is not None:
                ok, detail = False, f"inconclusive: stopped by the {r.limit_hit} limit, not by isolation"
            res = AttemptResult(name=a.name, what=a.what, kind=a.kind, expected_blocked=expected, blocked=blocked,
                                ok=ok, detail=detail)
            results.append(res)
            if progress:
                progress(res)
        sb.close()
        root = str(fx.root)
    return CheckReport(backend=backend, passed=all(r.ok for r in results), attempts=results,
                       duration_s=round(time.monotonic() - start, 2), root=root)
