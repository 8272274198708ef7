"""How complex an idea is: the published study's measures, and offline ones that need no key.

* ``judged`` (1-10) and ``pseudocode_lines``: a chat model (:class:`ComplexityJudge`, any
  ``ChatProvider``) rates the idea and writes it as pseudocode; the score is its rating, the lines are
  the non-blank lines of that pseudocode. The model and the prompt's sha256 are kept with each result.
* ``components`` (offline): for a recipe (an ``evolve`` idea, described ``recipe {json}``), its genes
  that differ from vanilla (:class:`~aar.w2s.recipes.Recipe` defaults; the seed is not a component);
  for a text, the distinct method keywords of :data:`aar.analysis.families.KEYWORDS` it names.
* ``python_lines``: for a recipe, the lines of its JSON written one gene per line; for an idea folder,
  the non-blank, non-comment lines of its ``*.py`` files that the workspace template (the library the
  workspace ships, :data:`aar.w2s.workspace.LIBRARY_FILES`) does not hold: a multiset difference of
  stripped lines, so a copied library file counts 0 and only what the agent wrote counts. The folder is
  read without following links (``aar.sandbox.files``), with caps on depth, files and bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from aar.analysis.families import KEYWORDS

MAX_DEPTH = 16
MAX_FILES = 2000
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 32 << 20
SKIP_DIRS = frozenset({"__pycache__", "node_modules"})


class Complexity(BaseModel):
    """One idea's complexity measures (None where a measure was not taken)."""

    idea_id: str
    components: int = Field(description="Method components: non-default recipe genes, or distinct method keywords.")
    components_source: Literal["recipe", "keywords"]
    component_names: list[str] = Field(default_factory=list)
    python_lines: int | None = Field(default=None, description="Lines of code the idea adds to the template.")
    python_lines_source: Literal["recipe_json", "folder"] | None = None
    judged: int | None = Field(default=None, ge=1, le=10, description="The judge model's complexity score.")
    pseudocode_lines: int | None = None
    judge: dict[str, Any] = Field(default_factory=dict, description="model, prompt_sha256, tokens, error.")


def recipe_of(description: str) -> Any | None:
    """The :class:`~aar.w2s.recipes.Recipe` of an ``evolve`` idea's description (``recipe {json}``), else None."""
    from aar.w2s.recipes import Recipe

    if not description.startswith("recipe "):
        return None
    try:
        return Recipe.model_validate(json.loads(description[len("recipe "):]))
    except ValueError:
        return None


def recipe_components(recipe: Any) -> list[str]:
    """The genes of ``recipe`` that differ from vanilla (the defaults), the seed left out."""
    return sorted(k for k in recipe.model_dump(exclude_defaults=True) if k != "seed")


def recipe_json_lines(recipe: Any) -> int:
    """Lines of the recipe's JSON with one gene per line (the non-default genes, seed included)."""
    return len(json.dumps(recipe.model_dump(exclude_defaults=True), indent=2, sort_keys=True).splitlines())


def text_components(text: str) -> list[str]:
    """The distinct method keywords a text names, as ``family:matched words`` (one per keyword pattern)."""
    low = text.lower()
    found = []
    for family, patterns in KEYWORDS.items():
        for pattern in patterns:
            m = re.search(pattern, low)
            if m:
                found.append(f"{family}:{m.group(0).strip()}")
    return found


def code_lines(source: str) -> list[str]:
    """The non-blank, non-comment lines of Python source, stripped."""
    return [s for s in (line.strip() for line in source.splitlines()) if s and not s.startswith("#")]


@functools.cache
def _library_lines() -> Counter[str]:
    import aar.w2s
    from aar.w2s.workspace import LIBRARY_FILES

    src = Path(aar.w2s.__file__).parent
    lines: Counter[str] = Counter()
    for name in LIBRARY_FILES:
        paths = [src / name] if (src / name).is_file() else sorted((src / name).rglob("*.py"))
        for p in paths:
            if p.suffix == ".py" and "__pycache__" not in p.parts:
                lines.update(code_lines(p.read_text(errors="replace")))
    return lines


def template_lines(extra: Iterable[str] = ()) -> Counter[str]:
    """The template's code lines (the shipped library), plus any ``extra`` sources (e.g. a stock ``run.py``)."""
    lines = Counter(_library_lines())
    for source in extra:
        lines.update(code_lines(source))
    return lines


def python_files(folder: Path) -> list[tuple[str, bytes]]:
    """``(relative path, bytes)`` of the ``*.py`` files under ``folder``, walked without following links.

    Hidden folders and caches are skipped; at most ``MAX_DEPTH`` deep, ``MAX_FILES`` files, files over
    ``MAX_FILE_BYTES`` skipped, reading stops at ``MAX_TOTAL_BYTES``.
    """
    from aar.sandbox.files import UnsafePathError, open_dir_beneath, read_beneath, walk_dirs

    out: list[tuple[str, bytes]] = []
    total = 0
    stack: list[tuple[int, list[str]]] = [(open_dir_beneath(folder), [])]
    try:
        while stack:
            fd, parts = stack.pop()
            try:
                entries = sorted(os.scandir(fd), key=lambda e: e.name)
                for e in entries:
                    if e.is_dir(follow_symlinks=False):
                        if len(parts) < MAX_DEPTH and not e.name.startswith(".") and e.name not in SKIP_DIRS:
                            try:
                                stack.append((walk_dirs(fd, [e.name]), [*parts, e.name]))
                            except OSError:
                                continue
                    elif e.name.endswith(".py") and e.is_file(follow_symlinks=False):
                        if len(out) >= MAX_FILES or total >= MAX_TOTAL_BYTES:
                            return out
                        rel = "/".join([*parts, e.name])
                        try:
                            data = read_beneath(folder, rel, MAX_FILE_BYTES)
                        except (UnsafePathError, OSError):
                            continue
                        total += len(data)
                        out.append((rel, data))
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return out


def python_lines(folder: Path, template: Counter[str] | None = None) -> int:
    """Lines of Python the idea folder adds to ``template`` (default: the shipped library)."""
    lines: Counter[str] = Counter()
    for _, data in python_files(folder):
        lines.update(code_lines(data.decode("utf-8", errors="replace")))
    return sum((lines - (template if template is not None else _library_lines())).values())


def judge_prompt() -> str:
    """The judge's system prompt (its sha256 is recorded with every result)."""
    return "\n".join([
        "You rate the complexity of a research idea on weak-to-strong supervision (a strong student model "
        "trained from a weak model's labels).",
        "Scale 1-10: 1 = train the student on the weak labels as they are; 3 = one extra mechanism (a filter, "
        "a loss term, a weighting); 6 = several interacting components or stages; 10 = a multi-stage pipeline "
        "with several models, searches and schedules.",
        "Also write the method as short pseudocode, one statement per line, with no blank lines.",
        'Answer with JSON only: {"complexity": <integer 1-10>, "pseudocode": "<lines separated by \\n>"}',
    ])


def parse_judgement(answer: str) -> tuple[int | None, int | None, str | None]:
    """(score, pseudocode lines, error) from a judge's answer."""
    match = re.search(r"\{.*\}", answer, re.S)
    try:
        data = json.loads(match.group(0)) if match else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, None, f"no JSON object in the answer: {answer[:120]!r}"
    score = data.get("complexity")
    score = int(score) if isinstance(score, int | float) and 1 <= score <= 10 else None
    code = data.get("pseudocode")
    if isinstance(code, list):
        code = "\n".join(str(c) for c in code)
    lines = len([s for s in code.splitlines() if s.strip()]) if isinstance(code, str) else None
    error = None if score is not None and lines is not None else f"incomplete answer: {answer[:120]!r}"
    return score, lines, error


class ComplexityJudge:
    """A chat model rates each idea 1-10 and writes its pseudocode (one call per idea)."""

    def __init__(self, provider: Any, max_tokens: int = 1024) -> None:
        self.provider, self.max_tokens = provider, max_tokens
        self.system = judge_prompt()
        self.prompt_sha256 = hashlib.sha256(self.system.encode()).hexdigest()

    def info(self) -> dict[str, str]:
        """The model and the prompt, for the report."""
        return {"model": self.provider.model, "prompt": self.system, "prompt_sha256": self.prompt_sha256}

    def judge(self, text: str) -> tuple[int | None, int | None, dict[str, Any]]:
        """(score, pseudocode lines, detail with model, prompt hash, tokens and any error)."""
        turn = self.provider.complete(self.system, [{"role": "user", "content": f"Idea: {text}"}], [],
                                      max_tokens=self.max_tokens)
        score, lines, error = parse_judgement(turn.text)
        detail: dict[str, Any] = {"model": self.provider.model, "prompt_sha256": self.prompt_sha256,
                                  "tokens": turn.input_tokens + turn.output_tokens}
        if error:
            detail["error"] = error
        return score, lines, detail


def measure(idea_id: str, description: str, folder: Path | None = None, judge: ComplexityJudge | None = None,
            template: Counter[str] | None = None) -> Complexity:
    """Every measure of one idea that its inputs allow (see the module docstring)."""
    recipe = recipe_of(description)
    if recipe is not None:
        names = recipe_components(recipe)
        c = Complexity(idea_id=idea_id, components=len(names), components_source="recipe", component_names=names,
                       python_lines=recipe_json_lines(recipe), python_lines_source="recipe_json")
    else:
        names = text_components(description)
        c = Complexity(idea_id=idea_id, components=len(names), components_source="keywords", component_names=names)
        if folder is not None:
            c.python_lines, c.python_lines_source = python_lines(folder, template), "folder"
    if judge is not None:
        c.judged, c.pseudocode_lines, c.judge = judge.judge(description)
    return c


def measure_ideas(ideas: Sequence[Any], folder_of: Callable[[Any], Path | None] | None = None,
                  judge: ComplexityJudge | None = None) -> list[Complexity]:
    """:func:`measure` for each idea (anything with ``id`` and ``description``, e.g. ``Idea``), same order."""
    template = _library_lines()
    return [measure(i.id, i.description, folder_of(i) if folder_of else None, judge, template) for i in ideas]
