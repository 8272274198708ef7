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
    """Each worker's phase, sessions, submissions, best released PGR, cost, hours, last activity and flags."""
    from rich.table import Table

    from aar.cli import emit_json, out
    from aar.config import get_settings
    from aar.orchestrator.status import team_status

    st = team_status(get_settings(), team)
    if as_json:
        emit_json(st)
        return

    def fmt(v: float | None, digits: int = 3) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    table = Table(title=f"team {st.team} on {st.testbed}: {st.phase}" + (f" ({st.reason})" if st.reason else ""))
    for col in ("worker", "direction", "phase", "rst", "sess", "subs", "best PGR", "$", "tokens", "hours", "last",
                "flags"):
        table.add_column(col, no_wrap=col != "flags", max_width=22 if col == "direction" else None,
                         overflow="ellipsis")
    for w in st.workers:
        table.add_row(w.worker, (w.direction or "open brief")[:40], w.phase, str(w.restarts), str(w.sessions),
                      str(w.submissions), fmt(w.best_released_pgr), fmt(w.dollars, 2), str(w.tokens),
                      fmt(w.hours, 2), w.last_activity.strftime("%H:%M:%S") if w.last_activity else "-",
                      ", ".join(f"{k} x{v}" for k, v in sorted(w.flags.items())))
    out.print(table)
    out.print(f"supervisor {'alive' if st.supervisor_alive else 'not running'}; {st.submissions} submissions; "
              f"${st.dollars:.2f}, {st.tokens} tokens, {st.hours:.2f} AAR-hours"
              + (f", ${st.dollars_per_aar_hour:.2f}/AAR-hour" if st.dollars_per_aar_hour is not None else "")
              + f"; best released PGR {fmt(st.best_released_pgr)}"
              + (f"\n(leaderboard unavailable: {st.leaderboard_error})" if st.leaderboard_error else ""))


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
