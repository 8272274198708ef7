"""The ``local`` backend: no isolation at all, for development only.

Commands run as the calling user with the host's full environment, filesystem, processes and
network; only the per-exec limits apply (wall time, CPU, address space, output, file size, workspace
quota, the rlimits only where util-linux ``prlimit`` exists; ``RLIMIT_NPROC`` is not enforced for
root). It blocks nothing a researcher could use to read
labels or credentials, and says so loudly on stderr whenever one is created. Use it to develop
without bubblewrap, and in ``aar sandbox check`` to prove that each escape attempt really works
when nothing stops it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from aar.sandbox.base import ExecResult, Sandbox, SandboxConfig, SandboxError
from aar.sandbox.files import disk_usage, read_beneath, write_beneath
from aar.sandbox.policy import prlimit_argv
from aar.sandbox.runner import run_limited

WARNING = ("WARNING: sandbox backend 'local' isolates NOTHING: commands can read labels, credentials and "
           "other workers' files, and reach the network. Development only; use 'bwrap'.")


class LocalSandbox(Sandbox):
    """Runs commands directly on the host in the workspace, under the per-exec limits only."""

    kind = "local"

    def __init__(self, config: SandboxConfig, host_env: dict[str, str] | None = None, warn: bool = True) -> None:
        super().__init__(config)
        if not self.workspace.is_dir():
            raise SandboxError(f"workspace {self.workspace} is not a directory")
        self.host_env = dict(os.environ if host_env is None else host_env)
        if warn:
            sys.stderr.write(WARNING + "\n")

    def exec(self, cmd: list[str] | str, timeout: float | None = None, env: dict[str, str] | None = None,
             input: bytes | None = None, stream: bool = False) -> ExecResult:
        lim = self.config.limits
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        fsize = over = None
        if lim.disk_bytes is not None:
            quota = lim.disk_bytes
            used = disk_usage(self.workspace)
            if used >= quota:
                return ExecResult(exit_code=125, limit_hit="disk", stderr=f"workspace over its quota of {quota}\n")
            fsize = quota - used

            def over() -> bool:
                return disk_usage(self.workspace) > quota

        full_env = {**self.host_env, **self.config.env, **(env or {})}
        wrap = prlimit_argv(lim, fsize) if shutil.which("prlimit") else []  # util-linux; absent on macOS
        return run_limited(wrap + argv, env=full_env, cwd=str(self.workspace), stream=stream,
                           input=input, timeout=timeout if timeout is not None else lim.wall_s,
                           max_output=lim.max_output_bytes, over_quota=over)

    def read_file(self, path: str | Path) -> bytes:
        return read_beneath(self.workspace, path)

    def write_file(self, path: str | Path, data: bytes) -> None:
        write_beneath(self.workspace, path, data, None)
