"""The generated bwrap command line (masks, binds, GPU pass-through, launcher) and the env allow-list."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aar.sandbox import Limits, SandboxConfig, SandboxError
from aar.sandbox.bwrap import bwrap_argv
from aar.sandbox.policy import build_env, gpu_index


@pytest.fixture()
def tmp_path() -> Iterator[Path]:
    """A folder outside /tmp (the private /tmp mask would hide the masks these tests look for)."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else None
    d = Path(tempfile.mkdtemp(prefix="aar-argv-", dir=base))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def _config(tmp_path: Path, **kw: object) -> SandboxConfig:
    home = tmp_path / "home"
    ws = home / "runs" / "t" / "workers" / "w1" / "workspace"
    ws.mkdir(parents=True)
    (home / "labels").mkdir()
    return SandboxConfig(workspace=ws, aar_home=home, limits=Limits(max_processes=40, cpu_s=9, memory_bytes=1 << 30),
                         **kw)  # type: ignore[arg-type]


def test_root_argv_masks_aar_home_and_binds_only_the_workspace(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    argv = bwrap_argv(cfg, ["echo", "hi"], root=True)
    assert argv[:2] == ["bwrap", "--unshare-ipc"]
    for flag in ("--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--ro-bind"):argv.index("--ro-bind") + 3] == ["--ro-bind", "/", "/"]
    tmpfs = _pairs(argv, "--tmpfs")
    assert "/tmp" in tmpfs and "/root" in tmpfs and "/run" in tmpfs
    home = str(cfg.aar_home)
    ws = str(cfg.workspace)
    assert home in tmpfs
    assert _pairs(argv, "--bind") == [ws]
    assert not any(p.startswith(home + "/labels") for p in _pairs(argv, "--ro-bind") + _pairs(argv, "--dir"))
    assert argv.index("--tmpfs") < argv.index("--bind")  # masks before the workspace bind
    # the folders leading to the workspace inside a mask are traversable
    dirs = _pairs(argv, "--dir")
    assert str(Path(ws).parent) in dirs
    for d in dirs:
        assert argv[argv.index(d) - 2:argv.index(d)] == ["0755", "--dir"]
    tail = argv[argv.index("setpriv"):]
    assert "--reuid=65534" in tail and "--no-new-privs" in tail and "--bounding-set=-all" in tail
    assert "--nproc=40" in tail and "--as=1073741824" in tail and "--cpu=9:10" in tail
    assert tail[-3:] == ["--", "echo", "hi"]


def test_unprivileged_argv_uses_a_user_namespace(tmp_path: Path) -> None:
    argv = bwrap_argv(_config(tmp_path), ["true"], root=False, nproc_offset=100)
    assert "--unshare-all" in argv and "--disable-userns" in argv
    assert "--reuid=65534" not in argv and "--nproc=140" in argv


def test_hidden_paths_file_and_folder_and_nested(tmp_path: Path) -> None:
    src = tmp_path / "wordnet"
    src.mkdir()
    (src / "data.noun").write_text("x")
    token = tmp_path / "admin.token"
    token.write_text("t")
    cfg = _config(tmp_path, hidden_paths=[src, src / "data.noun", token, tmp_path / "absent"])
    argv = bwrap_argv(cfg, ["true"], root=True)
    assert str(src) in _pairs(argv, "--tmpfs")
    assert str(token) in [argv[i + 2] for i, a in enumerate(argv) if a == "--ro-bind" and argv[i + 1] == "/dev/null"]
    assert str(src / "data.noun") not in argv  # nested in a mask: already invisible, and no mount point
    assert str(tmp_path / "absent") not in argv


def test_ro_paths_and_sockets_and_gpus(tmp_path: Path) -> None:
    sock = tmp_path / "mcp.sock"
    sock.write_text("")
    public = tmp_path / "home" / "testbeds" / "tb"
    public.mkdir(parents=True)
    cfg = _config(tmp_path, sockets=[sock], ro_paths=[public], gpu_devices=[Path("/dev/nvidia1"), Path("/dev/nvidia3")])
    argv = bwrap_argv(cfg, ["true"], root=True)
    assert str(sock) in _pairs(argv, "--bind")
    assert [str(public), str(public)] == argv[argv.index(str(public)):argv.index(str(public)) + 2]
    assert argv[argv.index(str(public)) - 1] == "--ro-bind"
    devs = _pairs(argv, "--dev-bind")
    assert "/dev/nvidia1" in devs and "/dev/nvidia3" in devs
    assert argv.index("--dev") < argv.index("--dev-bind")
    env = build_env(cfg, {"PATH": "/x", "ANTHROPIC_API_KEY": "k"}, None, home=cfg.workspace)
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"
    with pytest.raises(ValueError):
        gpu_index(Path("/dev/sda"))


def test_workspace_may_not_contain_a_hidden_path(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    bad = cfg.model_copy(update={"workspace": cfg.aar_home.parent})  # type: ignore[union-attr]
    with pytest.raises(SandboxError):
        bwrap_argv(bad, ["true"], root=True)


def test_env_allow_list_drops_credentials(tmp_path: Path) -> None:
    cfg = _config(tmp_path, env={"AAR_WORKER_TOKEN": "mine"})
    host = {"PATH": "/bin", "ANTHROPIC_API_KEY": "sk-x", "AAR_ADMIN_TOKEN": "adm", "AWS_SECRET_ACCESS_KEY": "a",
            "DATABASE_URL": "postgres://u:p@h/db", "LANG": "C.UTF-8", "PYTHONPATH": "src"}
    env = build_env(cfg, host, {"EXTRA": "1"}, home=cfg.workspace)
    assert "ANTHROPIC_API_KEY" not in env and "AAR_ADMIN_TOKEN" not in env and "DATABASE_URL" not in env
    assert not any("SECRET" in k for k in env)
    assert env["AAR_WORKER_TOKEN"] == "mine" and env["EXTRA"] == "1" and env["LANG"] == "C.UTF-8"
    assert Path(env["PYTHONPATH"]).is_absolute() and env["HOME"] == str(cfg.workspace)


def test_files_linked_from_outside_are_masked_after_the_workspace_bind(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    planted = cfg.workspace / "planted"
    argv = bwrap_argv(cfg, ["true"], root=True, masked_files=[planted, tmp_path / "elsewhere"])
    i = argv.index(str(planted))
    assert argv[i - 2:i] == ["--ro-bind", "/dev/null"]
    assert argv.index("--bind") < i and str(tmp_path / "elsewhere") not in argv
