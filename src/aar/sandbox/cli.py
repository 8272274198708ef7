"""``aar sandbox run`` and ``aar sandbox check``: the commands over :mod:`aar.sandbox`.

Registered in :mod:`aar.cli` as the ``sandbox`` sub-app. Sandbox errors become one-line messages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

sandbox_app = typer.Typer(help="Run commands in a worker sandbox; run the escape suite.", no_args_is_help=True)

BackendOpt = Annotated[str, typer.Option("--backend", help="Sandbox backend: bwrap (default) or local (no isolation).")]


def _user_error(exc: Exception) -> Exception:
    from aar.cli import UserError

    return UserError(str(exc))


@sandbox_app.command("run", context_settings={"allow_interspersed_args": False})
def sandbox_run(
    cmd: Annotated[list[str], typer.Argument(help="The command (after --).", show_default=False)],
    workspace: Annotated[Path | None, typer.Option(help="Workspace and working directory (default: here).")] = None,
    backend: BackendOpt = "bwrap",
    timeout: Annotated[float | None, typer.Option(help="Wall-clock seconds (default: the worker limit).")] = None,
) -> None:
    """Run CMD in a sandbox configured like a worker's (same hidden paths, limits, network).

    Stdin, stdout and stderr pass through; the exit code is CMD's. As root, DIR is handed to the
    sandbox uid (65534) so that the sandbox can write it.
    """
    from aar.sandbox import SandboxError, get_sandbox, worker_config

    ws = (workspace or Path.cwd()).resolve()
    if not ws.is_dir():
        raise _user_error(ValueError(f"workspace {ws} is not a directory"))
    try:
        sb = get_sandbox(backend, worker_config(ws))
        result = sb.exec(cmd, timeout=timeout, stream=True)
    except SandboxError as exc:
        raise _user_error(exc) from None
    if result.limit_hit:
        sys.stderr.write(f"aar sandbox: stopped by the {result.limit_hit} limit\n")
    raise typer.Exit(result.exit_code)


@sandbox_app.command("check")
def sandbox_check(
    backend: BackendOpt = "bwrap",
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Run the escape suite: every attempt must be blocked (under local: must succeed, as proof)."""
    from rich.console import Console
    from rich.table import Table

    from aar.sandbox import SandboxError
    from aar.sandbox.check import run_check

    err = Console(stderr=True)
    try:
        with err.status(f"running escape attempts under {backend}...", spinner="dots") as status:
            report = run_check(backend, progress=None if as_json else lambda r: status.update(f"ran {r.name}"))
    except SandboxError as exc:
        raise _user_error(exc) from None
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        table = Table("attempt", "kind", "expected", "result", "detail",
                      title=f"escape suite under {backend} ({report.duration_s:.0f}s)")
        for a in report.attempts:
            result = ("n/a" if a.blocked is None else "blocked" if a.blocked else
                      "NOT BLOCKED" if a.expected_blocked else "succeeded")
            style = "" if a.ok else "bold red"
            expected = {True: "blocked", False: "succeeds (no isolation)", None: "-"}[a.expected_blocked]
            table.add_row(a.name, a.kind, expected, f"[{style}]{result}[/{style}]" if style else result, a.detail[:70])
        Console(width=None if sys.stdout.isatty() else 140).print(table)
        verdict = "every attempt behaved as expected" if report.passed else "SOME ATTEMPTS DID NOT BEHAVE AS EXPECTED"
        err.print(f"{backend}: {verdict}", highlight=False)
    if not report.passed:
        raise typer.Exit(1)
