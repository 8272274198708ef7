"""``aar worker run``: run one researcher against the running services (registered in :mod:`aar.cli`)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

worker_app = typer.Typer(help="Run one researcher (what the orchestrator runs for each worker).",
                         no_args_is_help=True)


@worker_app.command("run")
def worker_run(
    team: Annotated[str | None, typer.Option(help="Team id.")] = None,
    worker: Annotated[str | None, typer.Option(help="Worker id (the one its token was made for).")] = None,
    kind: Annotated[str | None, typer.Option(help="Researcher kind: evolve, llm or claude.")] = None,
    testbed: Annotated[str | None, typer.Option(help="Testbed name (default: the offline default).")] = None,
    direction: Annotated[str | None, typer.Option(help="Research direction (directed mode).")] = None,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock budget in minutes (all runs together).")] = None,
    max_submissions: Annotated[int | None, typer.Option(help="Submission budget (all runs together).")] = None,
    max_generations: Annotated[int | None, typer.Option(help="evolve: stop after this many generations.")] = None,
    children: Annotated[int | None, typer.Option(help="evolve: experiments per generation.")] = None,
    sandbox: Annotated[str | None, typer.Option(help="Sandbox backend: bwrap (default) or local.")] = None,
    hub_url: Annotated[str | None, typer.Option(envvar="AAR_HUB_URL", help="Hub base URL.")] = None,
    eval_url: Annotated[str | None, typer.Option(envvar="AAR_EVAL_URL", help="Eval server base URL.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML or JSON WorkerConfig (flags override).")] = None,
    token_file: Annotated[Path | None, typer.Option(help="File holding the worker token.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Run one researcher in its sandbox until its budget ends; its trajectory goes beside the workspace."""
    from pydantic import ValidationError

    from aar.agents.worker import WorkerConfig, run_worker
    from aar.cli import UserError, emit_json, out

    data: dict[str, Any] = {}
    if config is not None:
        try:
            text = config.read_text()
            data = json.loads(text) if config.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read config {config}: {exc}") from None
    flags = {"team": team, "worker": worker, "kind": kind, "testbed": testbed, "direction": direction,
             "sandbox": sandbox, "hub_url": hub_url, "eval_url": eval_url}
    data.update({k: v for k, v in flags.items() if v is not None})
    budget = data.setdefault("budget", {})
    if minutes is not None:
        budget["wall_s"] = minutes * 60
    if max_submissions is not None:
        budget["submissions"] = max_submissions
    evolve = data.setdefault("evolve", {})
    if max_generations is not None:
        evolve["max_generations"] = max_generations
    if children is not None:
        evolve["children"] = children
    try:
        cfg = WorkerConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"bad worker config: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    token = token_file.read_text().strip() if token_file else os.environ.get("AAR_WORKER_TOKEN", "")
    result = run_worker(cfg, token)
    if as_json:
        emit_json(result)
        return
    u = result.usage
    out.print(f"worker {result.worker} ({result.kind}) stopped: {u.sessions} sessions, {u.submissions} submissions, "
              f"{u.wall_s / 60:.1f} min; trajectory {result.trajectory}")
