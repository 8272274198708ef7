"""Shared fixtures for the sandbox tests: one check whether bwrap works here, small limits, a workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from aar.sandbox import Limits, SandboxConfig


def bwrap_reason() -> str | None:
    """Why bwrap tests cannot run on this machine (checked once per session), or None."""
    import os

    from aar.sandbox.bwrap import bwrap_problem

    return bwrap_problem(os.geteuid() == 0)


needs_bwrap = pytest.mark.skipif(bwrap_reason() is not None, reason=f"bwrap unusable here: {bwrap_reason()}")

SMALL = Limits(wall_s=20, cpu_s=5, memory_bytes=1 << 30, max_processes=32, max_output_bytes=32 << 10,
               disk_bytes=8 << 20, tmp_bytes=8 << 20)


@pytest.fixture()
def small_config(tmp_path: Path) -> SandboxConfig:
    """A worker-like config over a fresh workspace in a throwaway AAR_HOME, with small limits."""
    from aar.sandbox import worker_config

    home = tmp_path / "home"
    ws = home / "runs" / "t" / "workers" / "w1" / "workspace"
    ws.mkdir(parents=True)
    (home / "labels").mkdir()
    (home / "labels" / "secret.jsonl").write_text("LABEL-SECRET\n")
    return worker_config(ws, aar_home=home, limits=SMALL)
