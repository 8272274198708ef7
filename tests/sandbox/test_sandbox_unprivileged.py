"""The unprivileged bwrap path (user namespace, no setpriv uid switch), run here as uid 65534."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from aar.sandbox import Limits, SandboxConfig
from aar.sandbox.bwrap import bwrap_argv

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("bwrap") is None or shutil.which("setpriv") is None,
                                reason="needs root (to become uid 65534) and bwrap")


def test_user_namespace_mode_hides_and_limits() -> None:
    root = Path(tempfile.mkdtemp(prefix="aar-unpriv-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None))
    try:
        os.chmod(root, 0o755)
        home = root / "home"
        (home / "labels").mkdir(parents=True)
        (home / "labels" / "l.jsonl").write_text("LABEL-SECRET")
        ws = home / "runs" / "w1" / "workspace"
        ws.mkdir(parents=True)
        for p in (home, home / "labels", home / "runs", ws.parent):
            os.chmod(p, 0o755)
        os.chown(ws, 65534, 65534)
        cfg = SandboxConfig(workspace=ws, aar_home=home, limits=Limits(max_processes=16))
        script = (f"cat {home}/labels/l.jsonl; echo made > f; unshare -U true && echo NESTED; "
                  "i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo FORKED-ALL")
        argv = bwrap_argv(cfg, ["sh", "-c", script], root=False)
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bwrap",
                                "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("unprivileged user namespaces are not allowed here")
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv], cwd="/",
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
        assert "LABEL-SECRET" not in r.stdout
        assert "NESTED" not in r.stdout  # --disable-userns
        assert "FORKED-ALL" not in r.stdout and "fork" in r.stderr.lower()  # RLIMIT_NPROC binds
        assert (ws / "f").read_text() == "made\n" and (ws / "f").stat().st_uid == 65534
    finally:
        shutil.rmtree(root, ignore_errors=True)
