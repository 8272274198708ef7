"""``aar ideas classify``: the family of any idea descriptions, by the offline or an LLM classifier."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

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
