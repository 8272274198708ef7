"""``aar ideas classify``: the family of any idea descriptions, by the offline or an LLM classifier."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from aar.config import Settings

ideas_app = typer.Typer(help="What researchers tried: idea families.", no_args_is_help=True)


@ideas_app.command("classify")
def classify(
    texts: Annotated[list[str], typer.Argument(help="Idea descriptions; '-' reads one per line from stdin.")],
    classifier: Annotated[str, typer.Option(help="offline (MiniLM + keywords, no key) or llm.")] = "offline",
    provider: Annotated[str, typer.Option(help="llm: anthropic, openai (any compatible server) or scripted.")] = (
        "anthropic"),
    model: Annotated[str, typer.Option(help="llm: the model id.")] = "claude-sonnet-4-5",
    base_url: Annotated[str | None, typer.Option(help="llm: API base URL (vLLM, Ollama, a proxy).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Classify each description into one of the 11 method families (one family per text)."""
    from rich.table import Table

    from aar.analysis.families import LlmClassifier, OfflineClassifier
    from aar.cli import UserError, emit_json, out
    from aar.config import get_settings

    if texts == ["-"]:
        texts = [line.strip() for line in sys.stdin if line.strip()]
    if not texts or any(not t.strip() for t in texts):
        raise UserError("give one or more non-empty idea descriptions (or '-' to read them from stdin)")
    if classifier == "offline":
        chosen: OfflineClassifier | LlmClassifier = OfflineClassifier(get_settings().cache_dir)
    elif classifier == "llm":
        from aar.agents.llm import LlmConfig, make_provider
        from aar.agents.providers import ProviderError

        try:
            chosen = LlmClassifier(make_provider(LlmConfig(provider=provider, model=model, base_url=base_url),  # type: ignore[arg-type]
                                                 dict(os.environ)))
        except (ProviderError, ValueError) as exc:
            raise UserError(str(exc)) from None
    else:
        raise UserError(f"--classifier must be offline or llm, not {classifier!r}")
    labels = chosen.classify(texts)
    if as_json:
        emit_json([{"text": t, **lab.model_dump()} for t, lab in zip(texts, labels, strict=True)])
        return
    table = Table("family", "score", "idea", title=f"idea families ({chosen.name} classifier)")
    for text, lab in zip(texts, labels, strict=True):
        table.add_row(lab.family, f"{lab.score:.2f}", text if len(text) <= 90 else text[:87] + "...")
    out.print(table)


@ideas_app.command("list")
def list_ideas(
    team: Annotated[str, typer.Argument(help="A team launched from this AAR_HOME.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Every idea the team's workers tried: when, who, what, its family and its submissions."""
    from rich.table import Table

    from aar.analysis.ideas import team_ideas
    from aar.cli import emit_json, out
    from aar.config import get_settings

    ideas = team_ideas(get_settings(), team).ideas
    if as_json:
        emit_json([i.model_dump(mode="json") for i in ideas])
        return
    table = Table("hours", "worker", "family", "subs", "idea", title=f"team {team}: {len(ideas)} ideas")
    for i in ideas:
        table.add_row(f"{i.hours:.2f}", i.worker, i.family, str(len(i.submission_ids)),
                      i.description if len(i.description) <= 70 else i.description[:67] + "...")
    out.print(table)


@ideas_app.command("entropy")
def entropy(
    team: Annotated[str, typer.Argument(help="A team launched from this AAR_HOME.")],
    min_workers: Annotated[int, typer.Option(help="Drop points with fewer active workers.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Family entropy of the active workers' ideas at each step (90% band), and the ideas' Vendi score."""
    from rich.table import Table

    from aar.analysis.diversity import entropy_curve, vendi_score
    from aar.analysis.families import idea_encoder
    from aar.analysis.ideas import idea_starts, team_ideas
    from aar.cli import emit_json, out
    from aar.config import get_settings
    from aar.w2s.models.encoder import embed_texts

    found = team_ideas(get_settings(), team)
    ideas = found.ideas
    points = entropy_curve(*idea_starts(ideas, found.worker_end), min_workers=min_workers)
    vendi = vendi_score(embed_texts(idea_encoder(), [i.description for i in ideas])) if ideas else 0.0
    if as_json:
        emit_json({"team": team, "ideas": len(ideas), "vendi": vendi, "points": [p.model_dump() for p in points]})
        return
    table = Table("hours", "AAR-hours", "active", "entropy (bits)", "90% band",
                  title=f"team {team}: {len(ideas)} ideas, Vendi score {vendi:.2f}")
    shown = points if len(points) <= 30 else [points[round(k * (len(points) - 1) / 29)] for k in range(30)]
    if len(shown) < len(points):
        table.caption = f"{len(shown)} of {len(points)} steps, evenly spaced (--json has all)"
    for p in shown:
        table.add_row(f"{p.hours:.2f}", f"{p.aar_hours:.2f}", str(p.active), f"{p.entropy:.2f}",
                      f"{p.low:.2f}-{p.high:.2f}")
    out.print(table if points else f"no step of team {team} had {min_workers} active workers")


def team_best_submission(settings: Settings, team: str) -> str | None:
    """The team's best submission by its true public PGR (admin view; the rule finalize selects by)."""
    from aar.evalserver.client import EvalClient
    from aar.orchestrator.team import load_state, team_dir

    state = load_state(settings, team)
    token = (team_dir(settings, team) / "admin.token").read_text().strip()
    client = EvalClient(state.spec.eval_url)
    try:
        board = client.leaderboard(token, state.spec.testbed)
    finally:
        client.close()
    rows = [(r.public_true.pgr.combined, r.best_public_submission) for b in board.boards for r in b.workers
            if r.public_true is not None and r.public_true.pgr.combined is not None and r.best_public_submission]
    return max(rows)[1] if rows else None


def transfer(
    team: Annotated[str, typer.Option(help="The team whose idea to re-run (launched from this AAR_HOME).")],
    idea: Annotated[str, typer.Option(help="An idea id from `aar ideas list TEAM`, or 'best' (the idea of the "
                                           "team's best submission by true public PGR, as finalize selects).")],
    testbed: Annotated[str, typer.Option(help="The target testbed (prepared, with baselines).")],
    tune: Annotated[int, typer.Option(min=1, max=50, help="Recipe ideas: try this many hyper-parameter variants "
                                                          "on the target, chosen by label-free checks only.")] = 1,
    sandbox: Annotated[str, typer.Option(help="Sandbox backend of the re-runs.")] = "bwrap",
    timeout: Annotated[float, typer.Option(help="Wall-clock seconds per re-run.")] = 1800.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Re-run an idea's code, unchanged, on its own testbed and on another; score both on all test items."""
    from rich.table import Table

    from aar.analysis.ideas import team_ideas
    from aar.analysis.rerun import IdeaRunError, idea_code, safe_name
    from aar.analysis.transfer import transfer_idea
    from aar.cli import UserError, console, emit_json, out
    from aar.config import get_settings
    from aar.orchestrator.team import load_state, team_dir
    from aar.w2s.recipes import Recipe

    settings = get_settings()
    source = load_state(settings, team).spec.testbed
    ideas = team_ideas(settings, team).ideas
    runnable = [i for i in ideas if i.snapshot_id or i.recipe is not None]
    if idea == "best":  # the idea of the team's best submission (true public PGR, as finalize selects)
        best_sub = team_best_submission(settings, team)
        owners = [i for i in runnable if best_sub in i.submission_ids]
        if not owners:
            raise UserError(f"team {team} has no runnable idea behind its best submission "
                            f"({'none scored yet' if best_sub is None else best_sub})")
        chosen = owners[0]
    else:
        found = [i for i in ideas if i.id == idea]
        if not found:
            raise UserError(f"team {team} has no idea {idea!r} (see `aar ideas list {team}`)")
        chosen = found[0]
    try:
        code = idea_code(settings, team, chosen.snapshot_id, chosen.recipe)
        recipe = Recipe.model_validate(chosen.recipe) if chosen.recipe is not None else None
        result = transfer_idea(team, chosen.id, code, recipe, source, testbed, settings, tune=tune,
                               sandbox=sandbox, timeout_s=timeout, snapshot_id=chosen.snapshot_id,
                               progress=None if as_json else lambda m: console.print(m, highlight=False))
    except IdeaRunError as exc:
        raise UserError(str(exc)) from None
    folder = team_dir(settings, team) / "transfers"
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_name(f"{chosen.id}-{testbed}")
    (folder / f"{safe}.json").write_text(result.model_dump_json(indent=2))
    if as_json:
        emit_json(result)
        return

    def pgr(v: object, se: object = None) -> str:
        return "-" if not isinstance(v, float | int) else f"{v:.3f}" + (f" ± {se:.3f}" if isinstance(se, float) else "")

    row = result.row()
    table = Table("", source, testbed, title=f"idea {chosen.id}: {chosen.description[:60]}")
    table.add_row("PGR (all test items)", pgr(row["source_pgr"], row["source_pgr_se"]),
                  pgr(row["target_pgr"], row["target_pgr_se"]))
    for side in (result.source, result.target):
        if not side.ok:
            table.caption = f"{side.testbed}: {side.reason}"
    cmp = result.target.vs_best_baseline
    if cmp is not None:
        table.add_row("best baseline on target", "", f"{cmp.baseline} {pgr(row['best_baseline_pgr'])}")
        table.add_row("idea - best baseline (paired SE)", "", pgr(row["diff"], row["diff_se"]))
    if result.chosen is not None:
        table.add_row("tuned (label-free)", "", ", ".join(f"{k}={v}" for k, v in result.chosen.items()))
    out.print(table)
    out.print(f"saved to {folder / f'{safe}.json'} (aar report {team} shows it)")
