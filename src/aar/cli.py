"""The ``aar`` command: a thin layer over the Python API.

Each command parses its flags, calls one API function that returns a result object, and prints it
as a rich table or, with ``--json``, as JSON. Bad input ends the command with a one-line reason
and a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(help="aar: automated alignment researchers on weak-to-strong supervision.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
testbed_app = typer.Typer(help="Prepare, list and inspect testbeds.", no_args_is_help=True)
app.add_typer(testbed_app, name="testbed")

console = Console(stderr=True)
out = Console()

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
    seed: Annotated[int, typer.Option(help="Seed for the split assignment.")] = 0,
    max_items: Annotated[int | None, typer.Option(help="Cap on items per split (HF testbeds).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build a testbed: label-free public splits, the admin-only label store and the testbed card."""
    from aar.w2s.testbeds import prepare_testbed

    card = prepare_testbed(name, seed=seed, max_items=max_items)
    if as_json:
        emit_json(card)
    else:
        out.print(card.to_markdown())


@testbed_app.command("show")
def testbed_show(name: str, as_json: JsonFlag = False) -> None:
    """Show a prepared testbed's card (admin side: it holds label statistics)."""
    from aar.w2s.testbeds.card import load_card

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
    as_json: JsonFlag = False,
) -> None:
    """Train and evaluate baseline methods with labels (trusted admin side) and store W and S."""
    from aar.w2s.experiment import run_baselines
    from aar.w2s.report import print_report

    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    report = run_baselines(testbed, methods=names, seeds=seeds, progress=not as_json)
    if as_json:
        emit_json(report)
    else:
        print_report(report, out)


def main() -> None:
    """Console entry point: run the app, turning user errors into one-line messages."""
    from aar.w2s.testbeds.base import TestbedError

    try:
        app()
    except (UserError, TestbedError, ValueError, FileNotFoundError, PermissionError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None
