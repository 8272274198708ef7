"""Per-exec limits under bwrap and local: timeout, memory hog, bounded fork bomb, output cap, quota."""

from __future__ import annotations

import sys
import time

import pytest

from aar.sandbox import SandboxConfig, get_sandbox
from conftest import needs_bwrap

BACKENDS = [pytest.param("bwrap", marks=needs_bwrap), "local"]


def _sb(kind: str, config: SandboxConfig):  # type: ignore[no-untyped-def]
    return get_sandbox(kind, config, **({"warn": False} if kind == "local" else {}))


@pytest.mark.parametrize("kind", BACKENDS)
def test_timeout_kills_the_tree_and_the_next_exec_works(kind: str, small_config: SandboxConfig) -> None:
    sb = _sb(kind, small_config)
    t = time.monotonic()
    r = sb.exec("sleep 30 & sleep 30; echo never", timeout=1)
    assert r.timed_out and r.limit_hit == "wall" and "never" not in r.stdout
    assert time.monotonic() - t < 5
    assert sb.exec(["echo", "alive"]).stdout == "alive\n"


@pytest.mark.parametrize("kind", BACKENDS)
def test_memory_hog_fails_alone(kind: str, small_config: SandboxConfig) -> None:
    sb = _sb(kind, small_config)
    r = sb.exec([sys.executable, "-c", "b = bytearray(4 << 30); print('allocated')"], timeout=20)
    assert r.exit_code != 0 and "allocated" not in r.stdout
    assert r.limit_hit == "memory"
    assert sb.exec(["echo", "alive"]).ok


@needs_bwrap
def test_fork_bomb_contained(small_config: SandboxConfig) -> None:
    """A real (recursive) fork bomb, capped by RLIMIT_NPROC=32 and a 3-second wall clock."""
    sb = _sb("bwrap", small_config)
    t = time.monotonic()
    r = sb.exec("bomb() { bomb | bomb & }; bomb; sleep 10", timeout=3)
    assert r.limit_hit in ("wall", "output")  # its "Cannot fork" flood may hit the output cap first
    assert "Cannot fork" in r.stderr and time.monotonic() - t < 8
    time.sleep(0.2)
    assert not _processes_of(small_config.uid)
    assert sb.exec(["echo", "alive"]).ok


def _processes_of(uid: int) -> list[str]:
    import os
    from pathlib import Path

    if os.geteuid() != 0:
        return []
    found = []
    for d in Path("/proc").glob("[0-9]*"):  # the real uid from status: /proc/<pid> of a process that
        try:                                 # changed uid is root's (not dumpable), whatever its uid
            real = next(line.split()[1] for line in (d / "status").read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(real) == uid:
            found.append(d.name)
    return found


@pytest.mark.parametrize("kind", BACKENDS)
def test_output_capped_and_killed(kind: str, small_config: SandboxConfig) -> None:
    r = _sb(kind, small_config).exec("yes", timeout=10)
    assert r.limit_hit == "output" and r.stdout_truncated
    assert len(r.stdout) == small_config.limits.max_output_bytes


@pytest.mark.parametrize("kind", BACKENDS)
def test_workspace_quota(kind: str, small_config: SandboxConfig) -> None:
    sb = _sb(kind, small_config)
    r = sb.exec("for i in 1 2 3 4 5 6; do head -c 3000000 /dev/zero > f$i; sleep 0.1; done; echo done", timeout=10)
    assert r.limit_hit in ("disk", "file_size") and "done" not in r.stdout
    refused = sb.exec(["true"])
    assert refused.limit_hit == "disk" and refused.exit_code == 125
    for p in sb.workspace.glob("f*"):
        p.unlink()
    assert sb.exec(["true"]).ok


@pytest.mark.parametrize("kind", BACKENDS)
def test_single_file_capped_at_remaining_quota(kind: str, small_config: SandboxConfig) -> None:
    r = _sb(kind, small_config).exec("head -c 20000000 /dev/zero > big; echo $?", timeout=10)
    assert r.limit_hit in ("disk", "file_size") or r.stdout.strip() != "0"
    assert (small_config.workspace / "big").stat().st_size <= small_config.limits.disk_bytes  # type: ignore[operator]


@needs_bwrap
def test_cpu_limit(small_config: SandboxConfig) -> None:
    cfg = small_config.model_copy(update={"limits": small_config.limits.model_copy(update={"cpu_s": 1})})
    r = _sb("bwrap", cfg).exec([sys.executable, "-c", "while True: pass"], timeout=15)
    assert r.limit_hit == "cpu" and r.signal in (24, 9)


@pytest.mark.parametrize("kind", BACKENDS)
def test_sparse_files_count_their_apparent_size(kind: str, small_config: SandboxConfig) -> None:
    """Before: five sparse 7 MB files (each under the file cap) used no blocks and passed an 8 MB quota."""
    sb = _sb(kind, small_config)
    r = sb.exec("for i in 1 2 3 4 5; do truncate -s 7000000 s$i; sleep 0.1; done; echo done", timeout=10)
    assert r.limit_hit == "disk" or sb.exec(["true"]).limit_hit == "disk"
    for p in sb.workspace.glob("s*"):
        p.unlink()
    assert sb.exec(["true"]).ok


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0.0])
def test_a_timeout_that_is_not_a_positive_number_is_refused(kind: str, bad: float,
                                                            small_config: SandboxConfig) -> None:
    """Before: ``timeout=nan`` disabled the wall clock (every comparison with NaN is false)."""
    from aar.agents.tools import run_shell
    from aar.sandbox import SandboxError

    sb = _sb(kind, small_config)
    with pytest.raises(SandboxError, match="positive number"):
        sb.exec(["true"], timeout=bad)
    text, is_error = run_shell(sb, "echo hi", timeout=bad)
    assert is_error and "positive number" in text


HOG = """import os, time
while True:  # fork until RLIMIT_NPROC says no, then hold every process
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    except OSError:
        break
open("hog.ready", "w").close()
time.sleep(8)
"""


@needs_bwrap
@pytest.mark.parametrize("own_uid", [True, False])
def test_one_workers_processes_cannot_starve_another(own_uid: bool, small_config: SandboxConfig) -> None:
    """Worker A holds all 32 processes its limit allows; worker B can still start one under its own uid.
    The control (both as one uid, as before) shows B starved: RLIMIT_NPROC counts per uid."""
    import os
    import threading

    from aar.sandbox.policy import sandbox_uid

    if os.geteuid() != 0:
        pytest.skip("per-worker uids apply when the host runs as root")
    a_cfg = small_config.model_copy(update={"uid": sandbox_uid("t", "a"), "gid": sandbox_uid("t", "a")})
    b_uid = sandbox_uid("t", "b") if own_uid else a_cfg.uid
    b_ws = small_config.workspace.parent / "b-workspace"
    b_ws.mkdir()
    b_cfg = small_config.model_copy(update={"workspace": b_ws, "uid": b_uid, "gid": b_uid})
    a = _sb("bwrap", a_cfg)
    hog = threading.Thread(target=a.exec, args=(["python3", "-c", HOG],), kwargs={"timeout": 8})
    hog.start()
    try:
        deadline = time.monotonic() + 6
        while not (a_cfg.workspace / "hog.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        r = _sb("bwrap", b_cfg).exec(["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 0.2 & done; wait && echo started"],
                                     timeout=5)
    finally:
        hog.join(12)
    assert ("started" in r.stdout) == own_uid, (r.stdout, r.stderr)
