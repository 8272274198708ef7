"""``aar team launch|status|stop|supervise``: commands over :mod:`aar.orchestrator` (``finalize`` is in
:mod:`aar.cli`, next to the other eval-server admin commands)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer


def register(team_app: typer.Typer) -> None:
    """Add the orchestrator's commands to the ``team`` sub-app."""
    team_app.command("launch")(team_launch)
    team_app.command("status")(team_status_cmd)
    team_app.command("stop")(team_stop)
    team_app.command("resume")(team_resume)
    team_app.command("supervise", hidden=True)(team_supervise)


def team_launch(
    config: Annotated[Path | None, typer.Option(help="team.toml with TeamSpec fields (flags override).")] = None,
    team: Annotated[str | None, typer.Option(help="Team id (default: a fresh one).")] = None,
    workers: Annotated[int | None, typer.Option(help="Number of workers.")] = None,
    kind: Annotated[str | None, typer.Option(help="Researcher kind: evolve, llm or claude.")] = None,
    mode: Annotated[str | None, typer.Option(help="directed (a direction each) or undirected.")] = None,
    testbed: Annotated[str | None, typer.Option(help="Testbed name.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Per-worker wall-clock budget in minutes.")] = None,
    max_submissions: Annotated[int | None, typer.Option(help="Per-worker submission budget.")] = None,
    team_submissions: Annotated[int | None, typer.Option(help="Team submission budget.")] = None,
    backend: Annotated[str | None, typer.Option(help="local (processes) or ray.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Existing Ray cluster (ray backend).")] = None,
    sandbox: Annotated[str | None, typer.Option(help="Sandbox backend: bwrap or local.")] = None,
    hub_url: Annotated[str | None, typer.Option(envvar="AAR_HUB_URL", help="Hub base URL.")] = None,
    eval_url: Annotated[str | None, typer.Option(envvar="AAR_EVAL_URL", help="Eval server base URL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Launch a team of researchers and return at once with its id (a supervisor runs it)."""
    from pydantic import ValidationError

    from aar.cli import UserError, emit_json, out
    from aar.orchestrator.team import TeamSpec, launch

    data: dict[str, Any] = {}
    if config is not None:
        try:
            data = tomllib.loads(config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"cannot read {config}: {exc}") from None
    flags = {"team": team, "workers": workers, "kind": kind, "mode": mode, "testbed": testbed, "backend": backend,
             "ray_address": ray_address, "sandbox": sandbox, "hub_url": hub_url, "eval_url": eval_url}
    data.update({k: v for k, v in flags.items() if v is not None})
    if minutes is not None:
        data.setdefault("budget", {})["wall_s"] = minutes * 60
    if max_submissions is not None:
        data.setdefault("budget", {})["submissions"] = max_submissions
    if team_submissions is not None:
        data.setdefault("team_budget", {})["submissions"] = team_submissions
    try:
        spec = TeamSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"bad team config: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    state = launch(spec)
    if as_json:
        emit_json({"team": state.team, "workers": list(state.workers), "phase": state.phase})
        return
    out.print(f"launched team {state.team}: {len(state.workers)} {spec.kind} workers ({spec.mode}); "
              f"`aar team status {state.team}`")


def team_status_cmd(
    team: Annotated[str, typer.Argument(help="Team id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Each worker's phase, sessions, submissions, best released PGR, cost, hours, last activity and flags.

    On a terminal the table fits its width (lowest-priority columns dropped first, directions and flags
    wrapped); piped, a plain aligned layout with every column in full."""
    from aar.cli import emit_json, out
    from aar.config import get_settings
    from aar.orchestrator.status import plain_status, team_status

    st = team_status(get_settings(), team)
    if as_json:
        emit_json(st)
        return
    if out.is_terminal:
        out.print(rich_status(st, out.width))
    else:
        out.file.write(plain_status(st) + "\n")


def rich_status(st: Any, width: int) -> Any:
    """A rich renderable of the status that fits ``width`` columns (see :func:`fit_columns`)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from aar.orchestrator.status import COLUMNS, fit_columns, status_cells, summary_line

    cells = status_cells(st)
    keep = fit_columns(cells, width)
    right = {h for h, _, r in COLUMNS if r}
    table = Table(title=escape(f"team {st.team} on {st.testbed}: {st.phase}" + (f" ({st.reason})" if st.reason
                                                                                  else "")))
    for h in keep:
        wraps = h in ("direction", "flags")
        table.add_column(h, justify="right" if h in right else "left", no_wrap=not wraps, overflow="fold",
                         min_width=min(16, len(h)) if wraps else None, ratio=1 if wraps else None)
    for c in cells:
        table.add_row(*(Text(c[h]) for h in keep))
    parts: list[Any] = [table]
    if "direction" not in keep:
        parts += [Text("directions:")] + [Text(f"  {c['worker']}: {c['direction']}") for c in cells]
    parts.append(Text(summary_line(st)))
    return Group(*parts)


def team_stop(
    team: Annotated[str, typer.Argument(help="Team id.")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for every worker to stop.")] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Stop a team gracefully: every worker ends its session and writes its trajectory's end."""
    from aar.cli import emit_json, out
    from aar.config import get_settings
    from aar.orchestrator.team import stop_team

    state = stop_team(get_settings(), team, wait)
    if as_json:
        emit_json({"team": team, "phase": state.phase, "workers": {w: s.phase for w, s in state.workers.items()}})
        return
    out.print(f"team {team}: {state.phase}")


def team_resume(team: Annotated[str, typer.Argument(help="Team id.")]) -> None:
    """Start a new supervisor for a running team whose supervisor died (it adopts the live workers)."""
    from aar.cli import out
    from aar.config import get_settings
    from aar.orchestrator.team import resume_team

    state = resume_team(get_settings(), team)
    out.print(f"team {team}: supervisor {state.supervisor_pid} resumed it")


def team_supervise(team: Annotated[str, typer.Argument(help="Team id.")]) -> None:
    """Run a team's supervisor in the foreground (aar team launch starts it detached)."""
    import logging

    from aar.config import get_settings
    from aar.orchestrator.supervisor import Supervisor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    Supervisor(get_settings(), team).run()
