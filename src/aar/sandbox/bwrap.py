"""The ``bwrap`` (bubblewrap) backend: the default sandbox on Linux.

Each exec is one ``bwrap`` process: the host's root bound read-only, ``/proc`` and ``/dev`` fresh,
private ``/tmp`` and ``/dev/shm`` (size-capped tmpfs), masks (empty tmpfs over folders, ``/dev/null``
over files) on AAR_HOME, the home folders, ``/run`` and every hidden path, then read-only binds of
what must stay visible under a mask (the Python installation, ``ro_paths``), the workspace read-write,
forwarder sockets and GPU devices. New PID, network, IPC, UTS (and cgroup) namespaces; the sandbox
dies with its parent and runs in a new session (no terminal injection).

When the host runs as root, bwrap runs without a user namespace and the command is started through
``setpriv`` as the sandbox uid with every capability and the bounding set dropped and
``no_new_privs`` set, so setuid binaries give nothing, root-only files stay unreadable even where
they are not masked, and ``RLIMIT_NPROC`` is enforced (the kernel never enforces it for uid 0).
As an ordinary user, bwrap makes a user namespace (mapped to that user) and forbids nested ones;
``RLIMIT_NPROC`` then counts all of the user's processes, so it is set to their current count plus
``max_processes``.

See :mod:`aar.sandbox.base` for the full threat model. Fact that shapes the mount plan: every bwrap
mount point must already exist, so a mask is only placed over a path that exists, a mask nested in
another mask is dropped (it is already invisible), and the folders leading to a bind inside a mask
are created first with mode 0755 (bwrap would make them 0700, untraversable for the sandbox uid).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path

from aar.sandbox.base import ExecResult, Sandbox, SandboxConfig, SandboxError, SandboxUnavailable
from aar.sandbox.files import chown_tree, disk_usage, linked_out, read_beneath, write_beneath
from aar.sandbox.policy import HOME_DIRS, build_env, prlimit_argv, python_paths
from aar.sandbox.runner import run_limited

log = logging.getLogger(__name__)
MASKS = ("tmpfs", "null", "proc", "dev")
NVIDIA_CONTROL = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def mount_ops(config: SandboxConfig, keep: list[Path],
              masked_files: list[Path] | None = None) -> list[tuple[str, Path]]:
    """The mounts as (kind, path), parents before children; see the module docstring for the rules."""
    tmp = config.limits.tmp_bytes
    defaults = {Path("/run"), *HOME_DIRS, Path.home()}
    masks: list[Path] = sorted(p for p in defaults if p.is_dir())
    if config.aar_home is not None:
        masks.append(config.aar_home)
    masks += config.hidden_paths
    ops: dict[Path, str] = {Path("/proc"): "proc", Path("/dev"): "dev", Path("/tmp"): f"tmpfs:{tmp}",
                            Path("/dev/shm"): f"tmpfs:{tmp}"}
    hidden_roots: list[Path] = []
    for raw in masks:
        p = Path(os.path.realpath(raw))
        if p == Path("/"):
            raise SandboxError("cannot hide /")
        if p.is_dir():
            ops.setdefault(p, "tmpfs")
        elif p.exists():
            ops.setdefault(p, "null")
        if raw not in defaults:
            hidden_roots.append(p)
    masked = [p for p, k in ops.items() if k.split(":")[0] == "tmpfs"]  # /tmp too: a venv may live there
    for p in keep:  # the Python installation: only where a default mask covers it, never a hidden path
        if any(_under(p, m) for m in masked) and not any(_under(p, h) for h in hidden_roots):
            ops.setdefault(p, "ro")
    for p in config.ro_paths:
        ops[Path(os.path.realpath(p))] = "ro"
    ws = Path(os.path.realpath(config.workspace))
    if ws == Path("/") or any(_under(h, ws) for h in hidden_roots):
        raise SandboxError(f"workspace {ws} would contain a hidden path")
    ops[ws] = "rw"
    for f in masked_files or []:  # files hard-linked from outside the workspace
        if _under(f, ws):
            ops[f] = "null"
    for s in config.sockets:
        if not Path(s).exists():
            raise SandboxError(f"socket {s} does not exist")
        ops[Path(s)] = "rw"
    if config.gpu_devices:
        for d in [*config.gpu_devices, *map(Path, NVIDIA_CONTROL)]:
            if d in config.gpu_devices or d.exists():
                ops[d] = "devbind"
    return sorted(((k, p) for p, k in ops.items()),
                  key=lambda kp: (len(kp[1].parts), kp[0].split(":")[0] not in MASKS))


def bwrap_argv(config: SandboxConfig, cmd: list[str], *, root: bool, keep: list[Path] | None = None,
               fsize: int | None = None, nproc_offset: int = 0, cwd: Path | None = None,
               masked_files: list[Path] | None = None) -> list[str]:
    """The full command line of one exec (a pure function of its inputs, unit-tested)."""
    ns = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"] if root
          else ["--unshare-all", "--unshare-user", "--disable-userns"])
    argv = ["bwrap", *ns, "--die-with-parent", "--new-session", "--ro-bind", "/", "/"]
    placed: list[tuple[str, Path]] = [("ro", Path("/"))]
    made: set[Path] = set()
    for kind, path in mount_ops(config, keep or [], masked_files):
        enclosing = max((kp for kp in placed if _under(path, kp[1])), key=lambda kp: len(kp[1].parts))
        base = kind.split(":")[0]
        if enclosing[0].split(":")[0] in MASKS:
            if kind in ("tmpfs", "null") and enclosing[1] != path:
                continue  # already invisible; and no mount point exists to mask
            for parent in reversed(path.parents):
                if _under(parent, enclosing[1]) and parent != enclosing[1] and parent not in made:
                    argv += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
        p = str(path)
        if base == "tmpfs":
            size = kind.partition(":")[2]
            argv += (["--perms", "1777", "--size", size] if size else []) + ["--tmpfs", p]
        elif base == "null":
            argv += ["--ro-bind", "/dev/null", p]
        elif base in ("proc", "dev"):
            argv += [f"--{base}", p]
        else:
            argv += [{"ro": "--ro-bind", "rw": "--bind", "devbind": "--dev-bind"}[base], p, p]
        placed.append((kind, path))
    argv += ["--chdir", str(cwd or os.path.realpath(config.workspace))]
    if root:
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP", "--", "setpriv", f"--reuid={config.uid}", f"--regid={config.gid}",
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        argv += ["--", "setpriv", "--no-new-privs", "--"]
    return argv + prlimit_argv(config.limits, fsize, nproc_offset) + cmd


@functools.cache
def bwrap_problem(root: bool) -> str | None:
    """Why bwrap cannot run here (checked once per process), or None when it works."""
    for tool in ("bwrap", "setpriv", "prlimit"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install bubblewrap util-linux)"
    ns = ["--unshare-ipc", "--unshare-pid", "--unshare-net"] if root else ["--unshare-all"]
    try:
        r = subprocess.run(["bwrap", *ns, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                            "--die-with-parent", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed: {exc}"
    if r.returncode != 0:
        return f"bwrap cannot create namespaces here: {r.stderr.decode(errors='replace').strip()}"
    return None


def _user_processes(uid: int) -> int:
    n = 0
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and d.stat().st_uid == uid:
                n += 1
        except OSError:
            continue
    return n


class BwrapSandbox(Sandbox):
    """A worker sandbox made of bubblewrap namespaces (see the module docstring)."""

    kind = "bwrap"

    def __init__(self, config: SandboxConfig, host_env: dict[str, str] | None = None) -> None:
        super().__init__(config)
        self.root = os.geteuid() == 0
        problem = bwrap_problem(self.root)
        if problem:
            raise SandboxUnavailable(problem)
        if not self.workspace.is_dir():
            raise SandboxError(f"workspace {self.workspace} is not a directory")
        self.host_env = dict(os.environ if host_env is None else host_env)
        self.keep = python_paths(self.host_env)
        self.owner = (config.uid, config.gid) if self.root else None
        if self.owner:
            chown_tree(self.workspace, *self.owner)
            # bwrap enters the workspace as root without capabilities, before switching to the sandbox
            # uid: a 0700 workspace (e.g. from mkdtemp) needs search permission for "other" (no listing)
            os.chmod(self.workspace, self.workspace.stat().st_mode & 0o7777 | 0o001)
        self._warned: set[Path] = set()
        mount_ops(config, self.keep)  # a bad config fails here, not at the first exec

    def argv(self, cmd: list[str] | str, fsize: int | None = None, nproc_offset: int = 0) -> list[str]:
        """The bwrap command line for ``cmd`` (what exec runs)."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        masked = [] if self.config.allow_external_hardlinks else linked_out(self.workspace)
        if masked and not set(masked) <= self._warned:
            self._warned.update(masked)
            log.warning("masking %d workspace file(s) hard-linked from outside the workspace: %s", len(masked),
                        ", ".join(map(str, masked[:5])))
        return bwrap_argv(self.config, argv, root=self.root, keep=self.keep, fsize=fsize, nproc_offset=nproc_offset,
                          masked_files=masked)

    def exec(self, cmd: list[str] | str, timeout: float | None = None, env: dict[str, str] | None = None,
             input: bytes | None = None, stream: bool = False) -> ExecResult:
        lim = self.config.limits
        fsize = over = None
        if lim.disk_bytes is not None:
            quota = lim.disk_bytes
            used = disk_usage(self.workspace)
            if used >= quota:
                return ExecResult(exit_code=125, limit_hit="disk",
                                  stderr=f"workspace uses {used} bytes, over its quota of {quota}; free space first\n")
            fsize = quota - used

            def over() -> bool:
                return disk_usage(self.workspace) > quota

        offset = 0 if self.root or lim.max_processes is None else _user_processes(os.getuid())
        full_env = build_env(self.config, self.host_env, env, home=self.workspace)
        return run_limited(self.argv(cmd, fsize, offset), env=full_env, cwd="/", stream=stream, input=input,
                           timeout=timeout if timeout is not None else lim.wall_s,
                           max_output=lim.max_output_bytes, over_quota=over)

    def read_file(self, path: str | Path) -> bytes:
        return read_beneath(self.workspace, path)

    def write_file(self, path: str | Path, data: bytes) -> None:
        write_beneath(self.workspace, path, data, self.owner)
