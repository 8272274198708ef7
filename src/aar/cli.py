"""The ``aar`` command: a thin layer over the Python API.

Each command parses its flags, calls one API function that returns a result object, and prints it
as a rich table or, with ``--json``, as JSON. Bad input ends the command with a one-line reason
and a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="aar: automated alignment researchers on weak-to-strong supervision.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
testbed_app = typer.Typer(help="Prepare, list and inspect testbeds.", no_args_is_help=True)
app.add_typer(testbed_app, name="testbed")

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 120)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit code 2."""


def emit_json(data: Any) -> None:
    """Print JSON to stdout (pydantic models are dumped)."""
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ---------------------------------------------------------------- testbeds


@testbed_app.command("list")
def testbed_list(as_json: JsonFlag = False) -> None:
    """List available testbeds (built-in offline, Hugging Face, and your own JSONL)."""
    from aar.w2s.testbeds import list_testbeds

    rows = list_testbeds()
    if as_json:
        emit_json([r.model_dump() for r in rows])
        return
    from rich.table import Table

    table = Table("name", "format", "source", "offline", "default", "prepared", "description")
    for r in rows:
        table.add_row(r.name, r.format, r.source, "yes" if r.offline else "no", "*" if r.default else "",
                      "yes" if r.prepared else "", r.description)
    out.print(table)


@testbed_app.command("prepare")
def testbed_prepare(
    name: Annotated[str, typer.Argument(help="Testbed name (see `aar testbed list`) or jsonl:PATH.")],
    new_salt: Annotated[bool, typer.Option(
        help="Draw a new secret salt (new items, distractors, order and splits) instead of the stored one.")] = False,
    max_items: Annotated[int | None, typer.Option(
        help="Cap on items (per split for HF; per pool for built-ins).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build a testbed: label-free public splits with the weak model's outputs, the label store and the card."""
    from dataclasses import replace

    from aar.labels.prepare import prepare_testbed
    from aar.w2s.models.encoder import ENCODE_STATS

    before = replace(ENCODE_STATS)
    card = prepare_testbed(name, max_items=max_items, new_salt=new_salt)
    if as_json:
        emit_json(card)
    else:
        out.print(card.to_markdown())
    console.print(ENCODE_STATS.since(before).summary(), highlight=False)


@testbed_app.command("show")
def testbed_show(name: str, as_json: JsonFlag = False) -> None:
    """Show a prepared testbed's card (admin side: it holds label statistics)."""
    from aar.labels.card import load_card

    card = load_card(name)
    if as_json:
        emit_json(card)
    else:
        out.print(card.to_markdown())


# ---------------------------------------------------------------- experiments


@app.command("baselines")
def baselines(
    testbed: Annotated[str | None, typer.Option(help="Testbed name; the default testbed when omitted.")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated method names (default: all that apply).")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=20, help="Number of seeds.")] = 3,
    reference: Annotated[bool, typer.Option(
        "--reference", help="Also run the sealed reference method and write the room criteria into the card.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train and evaluate baseline methods with labels (trusted admin side) and store W and S."""
    from dataclasses import replace

    from aar.labels.baselines import run_baselines
    from aar.w2s.models.encoder import ENCODE_STATS
    from aar.w2s.report import print_report

    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    before = replace(ENCODE_STATS)
    report = run_baselines(testbed, methods=names, seeds=seeds, progress=not as_json, reference=reference)
    if as_json:
        emit_json(report)
    else:
        print_report(report, out)
    console.print(ENCODE_STATS.since(before).summary(), highlight=False)


# ---------------------------------------------------------------- mcp (hub & MCP server: aar.hub, aar.mcp)


@app.command("mcp")
def mcp_serve(
    workspace: Annotated[str | None, typer.Option(
        envvar="AAR_WORKSPACE", help="The worker's workspace (default: current folder).")] = None,
    hub_url: Annotated[str, typer.Option(envvar="AAR_HUB_URL", help="Hub base URL.")] = "http://127.0.0.1:8711",
    eval_url: Annotated[str, typer.Option(envvar="AAR_EVAL_URL", help="Eval server base URL.")] = (
        "http://127.0.0.1:8710"),
    token_file: Annotated[str | None, typer.Option(
        help="File holding the worker token (preferred: a --token flag shows in `ps`).")] = None,
    token: Annotated[str | None, typer.Option(envvar="AAR_WORKER_TOKEN", show_default=False,
                                              help="The worker's bearer token.")] = None,
    sync: Annotated[bool, typer.Option(help="Keep <workspace>/findings in sync.")] = True,
    record: Annotated[str | None, typer.Option(envvar="AAR_MCP_RECORD", help=(
        "Append each accepted submission to this host file (JSON lines; keep it outside the workspace)."))] = None,
) -> None:
    """Run one worker's MCP server over stdio (tools over the eval server and the hub)."""
    from pathlib import Path

    from aar.mcp import McpConfig, run_stdio

    if token_file:
        token = Path(token_file).read_text().strip()
    if not token:
        raise UserError("no worker token: pass --token-file or set AAR_WORKER_TOKEN")
    ws = Path(workspace) if workspace else Path.cwd()
    if not ws.is_dir():
        raise UserError(f"workspace {ws} is not a directory")
    run_stdio(McpConfig(token=token, hub_url=hub_url, eval_url=eval_url, workspace=ws, sync=sync,
                        record=Path(record) if record else None))


# ---------------------------------------------------------------- eval server: serve, token, audit, team

token_app = typer.Typer(help="Create and revoke bearer tokens (shared by the eval server and the hub).",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")
audit_app = typer.Typer(help="The eval server's append-only audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
team_app = typer.Typer(help="Launch, watch, stop and finalise teams of researchers.", no_args_is_help=True)
app.add_typer(team_app, name="team")

EvalConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML file of eval server options.")]


def _eval_config(path: str | None) -> Any:
    from pathlib import Path

    from aar.evalserver.config import load_config

    if path is not None and not Path(path).is_file():
        raise UserError(f"config file {path} does not exist")
    return load_config(Path(path) if path else None)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Bind address of both services.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Eval server port.")] = 8710,
    hub_port: Annotated[int, typer.Option(help="Hub port.")] = 8711,
    config: EvalConfigOpt = None,
    hub: Annotated[bool, typer.Option(help="Also run the hub (when aar.hub is importable).")] = True,
    dashboard: Annotated[bool, typer.Option(help="Also run the web dashboard (admin login).")] = True,
    dashboard_port: Annotated[int, typer.Option(help="Dashboard port.")] = 8712,
) -> None:
    """Run the eval server, the hub and the dashboard as processes until interrupted (Ctrl-C)."""
    from pathlib import Path

    from aar.evalserver import launch

    _eval_config(config)  # a bad file fails here, in one line
    problem = launch.hub_problem() if hub else None
    if problem:
        console.print(f"[yellow]warning:[/yellow] hub not started: aar.hub.app is not importable ({problem})",
                      highlight=False, soft_wrap=True)
    services = launch.plan(host, port, hub_port, Path(config) if config else None, hub and problem is None,
                           dashboard_port if dashboard else None)

    def ready(started: list[launch.Service]) -> None:
        console.print("serving " + ", ".join(f"{s.name} at {s.url}" for s in started) + " (Ctrl-C stops)",
                      highlight=False, soft_wrap=True)

    try:
        code = launch.run(services, ready)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    raise typer.Exit(code)


@token_app.command("create")
def token_create(
    worker: Annotated[str, typer.Option(help="Worker id (or an admin's name).")],
    team: Annotated[str, typer.Option(help="Team of the worker.")] = "default",
    role: Annotated[str, typer.Option(help="worker, or admin (audit, finalize, team config).")] = "worker",
    admin: Annotated[bool, typer.Option("--admin", help="Same as --role admin.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a token and print it (the only time it is shown; it is stored hashed)."""
    from aar.config import get_settings
    from aar.evalserver.admin import create_token

    if role not in ("worker", "admin"):
        raise UserError(f"--role must be worker or admin, not {role!r}")
    info = create_token(get_settings(), worker, team, admin or role == "admin")
    if as_json:
        emit_json(info)
    else:
        sys.stdout.write(info.token + "\n")


@token_app.command("revoke")
def token_revoke(worker: Annotated[str, typer.Option(help="Worker id.")], as_json: JsonFlag = False) -> None:
    """Revoke every token of a worker."""
    from aar.config import get_settings
    from aar.evalserver.admin import revoke_tokens

    n = revoke_tokens(get_settings(), worker)
    if as_json:
        emit_json({"worker_id": worker, "revoked": n})
    else:
        out.print(f"revoked {n} token(s) of {worker}")


@audit_app.command("export")
def audit_export(
    out_path: Annotated[str | None, typer.Option("--out", "-o", help="JSONL file (default: stdout).")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's records.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the audit log as JSONL (header, configs, submissions, finalisations, summary)."""
    from pathlib import Path

    from aar.config import get_settings
    from aar.evalserver.admin import export_audit_file

    summary = export_audit_file(get_settings(), Path(out_path) if out_path else None, team)
    if out_path is None:
        return
    if as_json:
        emit_json(summary)
    else:
        chain = ("hash chain verified" if summary.chain_ok
                 else f"HASH CHAIN BROKEN at seq {summary.chain_broken_at}")
        out.print(f"{summary.submissions} submissions, {summary.team_configs} config changes, "
                  f"{summary.finalizations} finalisations -> {out_path}; {chain}")
    if not summary.chain_ok:
        raise typer.Exit(1)


@team_app.command("finalize")
def team_finalize(
    team: Annotated[str, typer.Argument(help="Team to finalise.")],
    testbed: Annotated[str | None, typer.Option(help="Only this testbed.")] = None,
    url: Annotated[str | None, typer.Option(
        help="Ask the eval server at this URL for the selection instead of reading here.")] = None,
    token: Annotated[str | None, typer.Option(envvar="AAR_ADMIN_TOKEN", show_default=False,
                                              help="Admin token (with --url).")] = None,
    config: EvalConfigOpt = None,
    replay: Annotated[bool, typer.Option(help="Replay each selected idea to score it on the private half (the "
                                              "only private score there is; --no-replay selects only).")] = True,
    sandbox: Annotated[str, typer.Option(help="Sandbox backend of the replays.")] = "bwrap",
    as_json: JsonFlag = False,
) -> None:
    """Select each worker's best true-public submission and replay its idea on the never-published private half.

    Each idea folder runs in a fresh sandbox with no model API, network or hub, on fresh-id views: first on
    the public items (it must reproduce its own submission), then on the private items (scored, with the
    paired SE against the best baseline on the same items). Saved to runs/TEAM/final.json."""
    from aar.config import get_settings
    from aar.evalserver.admin import finalize
    from aar.orchestrator.status import team_trajectory_flags
    from aar.orchestrator.team import final_path, freeze_team

    settings = get_settings()
    report = finalize(settings, team, _eval_config(config), testbed, url, token)
    host_flags = team_trajectory_flags(settings, team)  # e.g. the proxy's scripted model calls
    for entry in [*report.workers, *report.team_best]:
        for name, n in host_flags.get(entry.worker_id, {}).items():
            entry.flags[name] = entry.flags.get(name, 0) + n
    frozen = freeze_team(settings, team)  # a team launched here: stopped, tokens revoked
    if replay:
        from aar.analysis.rerun import idea_code
        from aar.labels.replay import replay_finalists

        report = replay_finalists(settings, report, lambda snap: idea_code(settings, team, snap, None),
                                  sandbox=sandbox, progress=None if as_json else lambda m: console.print(m))
        path = final_path(settings, team)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.model_dump_json(indent=1))
    if as_json:
        emit_json(report)
        return
    _print_final(team, report, replayed=replay)
    if frozen is not None:
        out.print(f"team {team} is frozen: {frozen.reason}")
    out.print(f"the team's analysis (ideas, entropy, complexity, progress, cost): aar report {team}")


def _print_final(team: str, report: Any, replayed: bool) -> None:
    from rich.table import Table

    def fmt(v: float | None, se: float | None = None) -> str:
        return "-" if v is None else f"{v:.3f}" + ("" if se is None else f" ± {se:.3f}")

    table = Table("worker", "testbed", "subs", "public PGR", "reproduces", "private PGR (replay)", "gap (acc)",
                  "vs best baseline (paired SE)", "flags",
                  title=f"team {team}: selected = best true public score; private = replay on the unpublished half")
    for e in report.workers:
        r = e.replay
        verdict = ("not replayed" if r is None else f"{r.public_agreement:.1%}" if r.reproducible
                   else f"NOT REPRODUCIBLE: {r.reason}")
        vs = e.vs_best_baseline
        versus = "-" if vs is None or vs.diff.combined is None else (
            f"{vs.diff.combined:+.3f} ± {vs.paired_se.combined:.3f} vs {vs.baseline}"
            + (" (inside the noise)" if abs(vs.diff.combined) < 2 * (vs.paired_se.combined or 0) else "")
            + ("" if vs.headroom_share is None or vs.headroom_share.combined is None or vs.headroom_se is None
               else f"; headroom share {vs.headroom_share.combined:.2f} ± {vs.headroom_se.combined or 0:.2f}"))
        pse = e.public.pgr_se.combined if e.public.pgr_se else None
        private = e.private
        table.add_row(e.worker_id, e.testbed, str(e.submissions), fmt(e.public.pgr.combined, pse), verdict,
                      fmt(private.pgr.combined, private.pgr_se.combined if private.pgr_se else None) if private
                      else "-", fmt(e.gap.combined) if e.gap else "-", versus,
                      ", ".join(f"{k} x{v}" for k, v in sorted(e.flags.items())))
    out.print(table)
    for e in report.team_best:
        if e.private is not None:
            out.print(f"team best on {e.testbed}: {e.worker_id} private PGR {fmt(e.private.pgr.combined)} (replay)")
        else:
            why = "not replayed (--no-replay)" if not replayed else (e.replay.reason if e.replay else "?")
            out.print(f"team best on {e.testbed}: {e.worker_id} has no private score: {why}")


# ---------------------------------------------------------------- sandbox (aar.sandbox; commands in aar/sandbox/cli.py)

from aar.sandbox.cli import sandbox_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox")
# ---------------------------------------------------------------- end sandbox

# ---------------------------------------------------------------- teams (aar.orchestrator; commands in its cli.py)

from aar.orchestrator.cli import register as register_team_commands  # noqa: E402

register_team_commands(team_app)

# ---------------------------------------------------------------- workers (aar.agents; commands in aar/agents/cli.py)

from aar.agents.cli import worker_app  # noqa: E402

app.add_typer(worker_app, name="worker")


# ---------------------------------------------------------------- ideas (aar.analysis; commands in its cli.py)

from aar.analysis.cli import ideas_app  # noqa: E402
from aar.analysis.cli import transfer as transfer_cmd  # noqa: E402

app.add_typer(ideas_app, name="ideas")
app.command("transfer")(transfer_cmd)


@app.command("report")
def report_cmd(
    team: Annotated[str, typer.Argument(help="A team launched from this AAR_HOME (running or finished).")],
    out_dir: Annotated[str | None, typer.Option("--out", help="Folder (default: AAR_HOME/runs/TEAM/report).")] = None,
    compare: Annotated[list[str] | None, typer.Option(help="Overlay this team's entropy curve (repeatable).")] = None,
    min_workers: Annotated[int, typer.Option(help="Entropy points need this many active workers.")] = 5,
    judge: Annotated[str | None, typer.Option(help="Judge idea complexity with a model: anthropic, openai or "
                                                   "scripted (default: offline measures only).")] = None,
    judge_model: Annotated[str, typer.Option(help="The judge's model id.")] = "claude-sonnet-4-5",
    base_url: Annotated[str | None, typer.Option(help="The judge's API base URL (vLLM, Ollama, a proxy).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the team's report: report.json, PNG plots and a self-contained report.html."""
    import os
    from pathlib import Path

    from aar.agents.providers import ProviderError
    from aar.analysis.report import build_report, gather, write_report
    from aar.config import get_settings

    settings = get_settings()
    chosen = None
    if judge is not None:
        from aar.agents.llm import LlmConfig, make_provider
        from aar.analysis.complexity import ComplexityJudge

        try:
            chosen = ComplexityJudge(make_provider(LlmConfig(provider=judge, model=judge_model,  # type: ignore[arg-type]
                                                             base_url=base_url), dict(os.environ)))
        except (ProviderError, ValueError) as exc:
            raise UserError(str(exc)) from None
    target = Path(out_dir) if out_dir else settings.runs_dir / team / "report"
    try:
        report = build_report(gather(settings, team, compare or [], chosen, min_workers=min_workers))
    except ProviderError as exc:
        raise UserError(f"complexity judge: {exc}") from None
    files = write_report(report, target)
    if as_json:
        emit_json(report)
        return
    s = report.summary
    best = "-" if s.best_pgr is None else f"{s.best_pgr:.3f} " + (
        "(SE unknown)" if s.best_pgr_se is None else f"± {s.best_pgr_se:.3f}")
    out.print(f"team {team}: {s.workers} workers, {s.ideas} ideas, {s.submissions} submissions, {s.aar_hours:.2f} "
              f"AAR-hours, best released PGR {best}, dollars {report.progress.team_cost.dollars_text()}")
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    out.print(f"wrote {len(files)} files to {target} (open {target / 'report.html'})")


@app.command("demo")
def demo_cmd(
    testbed: Annotated[str | None, typer.Option(help="Testbed (default: the offline default).")] = None,
    max_items: Annotated[int | None, typer.Option(help="Build the testbed smaller (items per pool) if it is "
                                                       "not prepared yet; default: full size.")] = None,
    workers: Annotated[int, typer.Option(help="Researchers in the team.")] = 3,
    minutes: Annotated[float, typer.Option(help="Per-worker wall-clock budget.")] = 4.0,
    submissions: Annotated[int, typer.Option(help="Per-worker submission budget.")] = 12,
    seeds: Annotated[int, typer.Option(help="Seeds of the baselines, if they are not stored yet.")] = 3,
    sandbox: Annotated[str, typer.Option(help="Sandbox backend: bwrap or local.")] = "bwrap",
    keep_serving: Annotated[bool, typer.Option(help="Keep the services (and dashboard) up until Ctrl-C.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """From nothing to a finished team: testbed, baselines, services, a 3-worker evolve team, finalize, leaderboard."""
    import dataclasses

    from rich.table import Table

    from aar.config import get_settings
    from aar.demo import format_pgr, run_demo
    from aar.w2s.testbeds import DEFAULT_TESTBED

    def wait_forever() -> None:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    started = time.monotonic()
    say = (lambda _m: None) if as_json else (lambda m: console.print(m, highlight=False, soft_wrap=True))
    try:
        result = run_demo(get_settings(), say, testbed=testbed or DEFAULT_TESTBED, max_items=max_items,
                          workers=workers, minutes=minutes, submissions=submissions, seeds=seeds, sandbox=sandbox,
                          keep_serving=keep_serving, wait_forever=wait_forever)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    total = time.monotonic() - started
    if as_json:
        emit_json({**dataclasses.asdict(result), "total_seconds": round(total, 1)})
        return
    table = Table("", "public PGR ± SE", "private PGR ± SE", "", title=f"{result.testbed}: leaderboard "
                  "(combined ID + OOD; private = never-published half)")
    for line in result.lines:
        table.add_row(line.name, format_pgr(line.public, line.public_se), format_pgr(line.private, line.private_se),
                      line.note)
    out.print(table)
    out.print(result.verdict)
    if result.report is not None:
        out.print(f"report: {result.report / 'report.html'}")
    if not keep_serving:
        out.print(f"dashboard: `aar serve`, then http://127.0.0.1:8712/teams/{result.team} "
                  f"(log in with the admin token in {result.admin_token_file})")
    out.print("took " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in result.seconds.items())
              + f"; {total / 60:.1f} min in all")


def main() -> None:
    """Console entry point: run the app, turning user errors into one-line messages."""
    from aar.httpclient import ServiceError
    from aar.sandbox.base import SandboxError
    from aar.w2s.testbeds.base import TestbedError

    try:
        app()
    except (UserError, TestbedError, ValueError, FileNotFoundError, PermissionError, ServiceError,
            SandboxError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
