"""The sandbox contract: a config, an exec result, and the ``Sandbox`` ABC every backend implements.

A sandbox runs one worker's commands against one workspace folder. Lifecycle: construct it with a
:class:`SandboxConfig` (it prepares the workspace), call :meth:`Sandbox.exec` any number of times
(each exec is a fresh, separately limited process tree), read and write workspace files from the
host with :meth:`Sandbox.read_file` / :meth:`Sandbox.write_file`, then :meth:`Sandbox.close`.

Threat model (the ``bwrap`` backend; ``local`` protects nothing but the limits):

What it blocks, for a program that runs as the sandbox user with no capabilities:
  * reading hidden paths: ``AAR_HOME`` as a whole (labels, other workers, the services' SQLite
    databases and snapshot store, admin token files) except this worker's workspace, every path in
    ``hidden_paths`` (a testbed's declared label sources such as ``/usr/share/wordnet``), the
    host's home folders (``/root``, ``/home``, ``$HOME``), the host's ``/tmp`` and ``/run``
    (and the unix sockets in them); masks are mounts the sandbox cannot remove;
  * the host's processes: own PID namespace with its own ``/proc``, so no ``/proc/<pid>/{root,cwd,
    fd,environ}`` of a host process, no signals, no ptrace;
  * credentials in the environment: the environment is rebuilt from a short allow-list of harmless
    names (locale, PYTHONPATH, thread counts); API keys and tokens pass only when given explicitly;
  * the network: own network namespace with only loopback; the only way out is a unix socket the
    host binds in (``sockets``): the worker's MCP endpoint, a model-API proxy;
  * writing outside the workspace (the system is a read-only bind, ``/tmp`` a private tmpfs);
  * leaving processes behind: the namespace dies with the exec;
  * exhausting the host, per exec: wall time, CPU time, address space per process, process count
    (``RLIMIT_NPROC``, enforced because the command runs under its own uid when the host is root),
    output size, file size and the workspace quota.

What it does not block (see README, "Sandbox"):
  * anything readable in the rest of the read-only root (``/usr``, ``/etc``, ``/sys``, the venv,
    the source tree, other folders under ``/var`` or ``/work``), including unix sockets placed there;
    put such paths in ``hidden_paths``;
  * a hard link to a hidden file that the host itself placed in the workspace is masked at each exec
    (files whose link count exceeds the links inside the workspace); one made by the host *while* an
    exec runs is not; host-side code must copy files into a workspace, never link them;
  * other AAR_HOMEs on the same machine: only the configured one is masked (list others in
    ``hidden_paths``);
  * kernel exploits (no seccomp filter; nested user namespaces are allowed when the host is root);
  * side channels and covert channels over what it may legitimately use (CPU timing, the MCP tools);
  * total memory across processes (``RLIMIT_AS`` is per process; the worst case is
    ``max_processes * memory_bytes``), and the workspace quota is enforced by polling, so one exec can
    overshoot it by what it writes in one poll interval (each file is capped at the remaining quota).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LimitHit = Literal["wall", "cpu", "memory", "output", "disk", "file_size"]


class SandboxError(Exception):
    """A sandbox could not be created or used (bad config, missing ``bwrap``, unsafe path)."""


class SandboxUnavailable(SandboxError):
    """The backend cannot run on this machine (e.g. ``bwrap`` missing or namespaces refused)."""


class Limits(BaseModel):
    """Per-exec resource limits; ``None`` means no limit for that resource."""

    model_config = ConfigDict(extra="forbid")

    wall_s: float | None = Field(default=600.0, gt=0, description="Wall-clock seconds; the default for exec().")
    cpu_s: int | None = Field(default=3600, gt=0, description="CPU seconds per process (RLIMIT_CPU).")
    memory_bytes: int | None = Field(default=8 << 30, gt=0, description="Address space per process (RLIMIT_AS).")
    max_processes: int | None = Field(default=256, gt=0, description="Processes of the sandbox uid (RLIMIT_NPROC).")
    max_output_bytes: int = Field(default=1 << 20, gt=0, description="Per stream; the exec is killed past it.")
    disk_bytes: int | None = Field(default=4 << 30, gt=0, description="Workspace quota (polled) and file size cap.")
    tmp_bytes: int = Field(default=512 << 20, gt=0, description="Size of the private /tmp (memory-backed tmpfs).")


class SandboxConfig(BaseModel):
    """Everything that decides what one sandbox sees and may use.

    Attributes:
        workspace: the only writable host folder; the working directory of every exec.
        aar_home: masked as a whole (labels, other workers, databases, snapshots, tokens).
        hidden_paths: more host paths to make invisible (files or folders; absent ones are skipped).
        ro_paths: host paths to show read-only again even though they lie under a mask
            (e.g. a public testbed folder or the feature cache under ``AAR_HOME``).
        sockets: host unix sockets bound in at the same path (the only way out of the sandbox).
        gpu_devices: ``/dev/nvidia<N>`` devices to pass through; ``CUDA_VISIBLE_DEVICES`` follows.
        env: variables set in every exec (on top of the allow-list).
        uid / gid: the sandbox user when the host runs as root (default 65534, ``nobody``).
        allow_external_hardlinks: show workspace files that are hard-linked from outside the
            workspace (by default each exec masks them, since an inode is readable whatever the path).
    """

    model_config = ConfigDict(extra="forbid")

    workspace: Path
    aar_home: Path | None = None
    hidden_paths: list[Path] = Field(default_factory=list)
    ro_paths: list[Path] = Field(default_factory=list)
    sockets: list[Path] = Field(default_factory=list)
    gpu_devices: list[Path] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    uid: int = 65534
    gid: int = 65534
    allow_external_hardlinks: bool = False


class ExecResult(BaseModel):
    """What one exec did. ``limit_hit`` names the limit that stopped it, when one did.

    ``exit_code`` is the command's status; a command killed by a signal reports ``128 + signal``
    (bwrap's convention) and ``signal`` is set. ``limit_hit="memory"`` is a best-effort reading of
    the command's own allocation failure (RLIMIT_AS makes allocations fail; nothing is killed).
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    limit_hit: LimitHit | None = None
    signal: int | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the command exited 0 and no limit stopped it."""
        return self.exit_code == 0 and self.limit_hit is None


class Sandbox(abc.ABC):
    """One worker's sandbox over one workspace; see the module docstring for the threat model."""

    kind: str = "abstract"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.workspace = config.workspace.resolve()

    @abc.abstractmethod
    def exec(self, cmd: list[str] | str, timeout: float | None = None, env: dict[str, str] | None = None,
             input: bytes | None = None, stream: bool = False) -> ExecResult:
        """Run ``cmd`` (argv, or a string for ``sh -c``) in the workspace under the limits.

        Args:
            cmd: the command.
            timeout: wall-clock seconds (default ``limits.wall_s``); the whole process tree is killed.
            env: extra variables for this exec only (passed as given, secrets included).
            input: bytes fed to stdin (stdin is empty otherwise).
            stream: inherit this process's stdin/stdout/stderr instead of capturing (no output cap).
        """

    @abc.abstractmethod
    def read_file(self, path: str | Path) -> bytes:
        """Read a workspace file from the host side, never following a link out of the workspace."""

    @abc.abstractmethod
    def write_file(self, path: str | Path, data: bytes) -> None:
        """Write a workspace file from the host side (parents created), owned by the sandbox user."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the sandbox holds (backends here hold nothing between execs)."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
