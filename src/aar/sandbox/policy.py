"""What every sandbox of a worker gets: the environment allow-list, resource limits as argv, and the
standard worker config (AAR_HOME masked, the testbeds' declared label sources hidden).

Threat model: the environment is the easiest place to leak a credential, so it is rebuilt from
scratch: only the names in ``ENV_ALLOW`` pass from the host (none of them holds a secret), and only
what the caller passes explicitly is added. It does not stop a caller from passing a
secret explicitly (the worker's own MCP token is passed that way on purpose).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from aar.sandbox.base import Limits, SandboxConfig

ENV_ALLOW = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
             "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
             "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "AAR_QUIET")
HOME_DIRS = (Path("/root"), Path("/home"))


def build_env(config: SandboxConfig, host_env: Mapping[str, str], extra: Mapping[str, str] | None,
              home: Path) -> dict[str, str]:
    """The complete environment of one exec: allow-listed host names, then config.env, then ``extra``."""
    env = {k: host_env[k] for k in ENV_ALLOW if k in host_env}
    if "PYTHONPATH" in env:  # relative entries would resolve against the workspace inside
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = str(home)
    env.setdefault("LANG", "C.UTF-8")
    env["AAR_SANDBOX"] = "1"
    if config.gpu_devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_index(d) for d in config.gpu_devices)
    env.update(config.env)
    env.update(extra or {})
    return env


def gpu_index(device: Path) -> str:
    """``/dev/nvidia3`` -> ``"3"``; anything else is rejected."""
    m = re.fullmatch(r"/dev/nvidia(\d+)", str(device))
    if not m:
        raise ValueError(f"{device}: GPU devices are /dev/nvidia<N>")
    return m.group(1)


def prlimit_argv(limits: Limits, fsize: int | None, nproc_offset: int = 0) -> list[str]:
    """``prlimit`` options for the limits (soft CPU limit sends SIGXCPU, one second later SIGKILL)."""
    argv = ["prlimit", "--core=0"]
    if limits.cpu_s is not None:
        argv.append(f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}")
    if limits.memory_bytes is not None:
        argv.append(f"--as={limits.memory_bytes}")
    if limits.max_processes is not None:
        argv.append(f"--nproc={limits.max_processes + nproc_offset}")
    if fsize is not None:
        argv.append(f"--fsize={max(fsize, 1)}")
    return argv + ["--"]


def python_paths(host_env: Mapping[str, str]) -> list[Path]:
    """Folders the sandbox needs to run this Python and import aar (kept visible under masks)."""
    import aar

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.executable).resolve().parent,
             Path(aar.__file__).resolve().parent.parent}
    for p in host_env.get("PYTHONPATH", "").split(os.pathsep):
        if p:
            paths.add(Path(p))
    return sorted({p.resolve() for p in paths if p.exists()})


def declared_label_sources() -> list[Path]:
    """Every testbed's declared label sources (files a label can be rebuilt from)."""
    from aar.w2s.testbeds import all_label_sources

    return all_label_sources()


def sealed_paths() -> list[Path]:
    """Code no worker may read: the sealed reference method (``aar.labels.sealed``) and, when aar runs from a
    source checkout, that checkout's git history and tests (both hold the reference's code)."""
    import aar

    package = Path(aar.__file__).resolve().parent
    paths = [package / "labels" / "sealed"]
    checkout = package.parent.parent  # src/aar -> the checkout, for an editable install
    if (checkout / "pyproject.toml").is_file():
        paths += [checkout / ".git", checkout / "tests"]
    return paths


SANDBOX_UID_BASE, SANDBOX_UID_RANGE = 1_000_000, 1 << 20


def sandbox_uid(team: str, worker: str) -> int:
    """The sandbox user of one worker when the host is root: its own uid, so ``RLIMIT_NPROC`` (counted per
    uid) and process ownership are its own; stable across restarts; far above any real account."""
    digest = hashlib.sha256(f"{team}/{worker}".encode()).digest()
    return SANDBOX_UID_BASE + int.from_bytes(digest[:8], "big") % SANDBOX_UID_RANGE


def worker_config(workspace: Path, aar_home: Path | None = None, hidden_paths: Iterable[Path] = (),
                  sockets: Iterable[Path] = (), gpu_devices: Iterable[Path] = (), env: Mapping[str, str] | None = None,
                  limits: Limits | None = None, ro_paths: Iterable[Path] = (), uid: int = 65534) -> SandboxConfig:
    """The config every worker sandbox uses (and ``aar sandbox run``): AAR_HOME, label sources and sealed code hidden.

    Args:
        workspace: the worker's workspace folder (writable; the working directory).
        aar_home: defaults to the current settings' AAR_HOME.
        hidden_paths: more paths to hide on top of the declared label sources.
        sockets: host-side forwarder sockets to bind in (MCP endpoint, model-API proxy).
        gpu_devices: the worker's ``/dev/nvidia<N>`` devices.
        env: variables for every exec (e.g. the worker's own token for its MCP server).
        limits: resource limits (defaults: :class:`Limits`).
        ro_paths: paths under AAR_HOME to show read-only (e.g. the public testbed split).
        uid: the sandbox user when the host is root; give each worker its own for separate NPROC counts.
    """
    from aar.config import get_settings

    home = (aar_home or get_settings().home).resolve()
    hidden = [*declared_label_sources(), *sealed_paths(), *hidden_paths]
    return SandboxConfig(workspace=workspace.resolve(), aar_home=home, hidden_paths=hidden, sockets=list(sockets),
                         gpu_devices=list(gpu_devices), env=dict(env or {}), limits=limits or Limits(),
                         ro_paths=list(ro_paths), uid=uid, gid=uid)
