"""Build a researcher's workspace: what an agent sees in its sandbox, and nothing that reveals a label.

A workspace holds a README for agents (the problem, PGR, the tools, the rules), a notebook that
persists across sessions, ``findings/`` (kept in sync with the team's findings by the MCP server),
``library/`` (the method library as readable source) and ``ideas/`` (the agent's experiments).
The data is not copied in: the sandbox shows the testbed's public folder read-only (published
splits, the weak model's outputs, the exported feature store), which ``sandbox_paths`` names.
Building is idempotent: the notebook, findings and ideas of an earlier session are kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aar.config import Settings, get_settings
from aar.sandbox.files import open_dir_beneath, replace_at, walk_dirs
from aar.w2s.features import export_features
from aar.w2s.testbeds.base import load_testbed, public_dir

NOTEBOOK = "NOTEBOOK.md"
LIBRARY_FILES = ("methods", "recipes.py", "workbench.py", "features.py", "experiment.py")

AGENT_README = """# Your research workspace: weak-to-strong supervision on `{testbed}`

## The problem
A **weak** model was trained on ground truth (you never see those labels). It labelled `strong_train`:
its P(label 1) is the `weak` field of each item. Your job: train the **strong** model from that weak
supervision so it beats its teacher. Success is the **performance gap recovered** on the test items:

    PGR = (acc_yours - acc_weak) / (acc_ceiling - acc_weak)

where the ceiling is the strong model trained on ground truth. Scores come for in-distribution
(`test_id`), out-of-distribution (`test_ood`) and both combined.

Task format: **{format}** ({format_help}). Sizes: {sizes}.

## What you have
- Data (read-only, under `{data_dir}`): `strong_train.jsonl`, `test_id.jsonl`, `test_ood.jsonl`
  with the weak model's `weak` P(label 1) on every item; no labels anywhere.
- Fast features: the strong model's frozen features and zero-shot scores per split. In Python:

      from aar.w2s.workbench import Workbench
      wb = Workbench("{testbed}")
      head = wb.fit(wb.weak("strong_train") > 0.5)      # vanilla W2S in seconds
      preds = wb.predict_tests(head)
      print(wb.checks(preds))                            # label-free proxies only
      wb.save_predictions(preds, "ideas/vanilla/predictions.jsonl")

- Recipes: compositions of known ideas as JSON (`library/recipes.py`, `Recipe`):
  `python -m aar.w2s.recipes ideas/x/recipe.json --testbed {testbed} --out ideas/x`
- The method library as source, to read and copy: `library/`.

## Every idea is a folder with one entry point
Keep each idea you submit in its own folder, `ideas/<name>/`, with a `run.py` that rebuilds the
predictions from scratch:

    python ideas/<name>/run.py --testbed {testbed} --out DIR     # writes DIR/predictions.jsonl

Submit with `submit_predictions(..., predictions_file="DIR/predictions.jsonl", idea_dir="ideas/<name>")`:
the folder is snapshotted with the submission, so the idea can be re-run on other testbeds and on
items you never see. `run.py` must take the testbed from `--testbed` (never hard-code names, ids or
paths of this testbed), read only what `Workbench(testbed)` or the data folder gives, need no network
or model API, and finish in minutes. A recipe idea is a folder with `recipe.json` and this `run.py`:

    import sys; from pathlib import Path; from aar.w2s.recipes import main
    raise SystemExit(main([str(Path(__file__).with_name("recipe.json")), *sys.argv[1:]]))
- Research tools (MCP): `submit_predictions` (scores on the published part of the tests, released through a
  leak-resistant ladder: a score moves only when you beat the team's best by a margin),
  `get_leaderboard`, `share_finding` / `search_findings` / `read_finding` / `comment_on_finding` /
  `vote_on_finding`, `upload_snapshot` / `list_snapshots` / `download_snapshot`.
- `findings/`: your team's findings as files, kept in sync. `{notebook}`: your notes; it persists
  across sessions, so write down what you tried, what worked, and what to try next.

## Rules
- Do not try to learn labels: no probing the scoring server with crafted predictions, no looking for
  label files, no rebuilding the testbed. Submissions are audited and such patterns are flagged.
- Submissions are budgeted; submit what your own label-free checks say is promising.
- Your final judgement is a **private** test half that is not published here: at the end, your idea
  folder's `run.py` is re-run, without network or model access, on testbeds made only of unseen items
  under fresh ids: their `strong_train` too is unseen, and about a third the size of this one (a few
  thousand items). Only what your method computes counts; overfitting the public half, labels written
  for any published item, or picking the luckiest seed, does not help you there, and neither do
  settings that only work at this `strong_train`'s size (scale regularisation with the item count).
- Share findings, negative ones too, and cite your submission ids in results.
"""

FORMAT_HELP = {
    "pairwise": "a prompt with answers A and B; label 1 means B is the better answer",
    "binary": "a question and a candidate answer; label 1 means the candidate is correct",
}


@dataclass
class WorkspaceInfo:
    """A built workspace and the host paths its sandbox must show read-only."""

    root: Path
    testbed: str
    sandbox_paths: list[Path]


def build_workspace(root: Path, testbed: str, settings: Settings | None = None) -> WorkspaceInfo:
    """Create or refresh the workspace at ``root`` for ``testbed`` (feature store exported if missing)."""
    settings = settings or get_settings()
    tb = load_testbed(testbed, settings)
    export_features(testbed, settings=settings)
    root.mkdir(parents=True, exist_ok=True)
    sizes = ", ".join(f"{s} {len(tb[s])}" for s in tb.splits)
    data_dir = public_dir(testbed, settings).resolve()
    readme = AGENT_README.format(testbed=testbed, format=tb.format, format_help=FORMAT_HELP[tb.format],
                                 sizes=sizes, data_dir=data_dir, notebook=NOTEBOOK)
    # The folder may be the agent's from an earlier session: every write walks from its descriptor
    # and replaces what is there (a planted link is removed, never followed).
    root_fd = open_dir_beneath(root)
    try:
        for sub in ("findings", "ideas"):
            if not _is(root_fd, sub, stat.S_ISDIR):
                _remove(root_fd, sub)
                os.mkdir(sub, 0o755, dir_fd=root_fd)
        replace_at(root_fd, "README.md", readme.encode())
        if not _is(root_fd, NOTEBOOK, stat.S_ISREG):
            _remove(root_fd, NOTEBOOK)
            replace_at(root_fd, NOTEBOOK, f"# Notebook ({testbed})\n\nNothing tried yet.\n".encode())
        _copy_library(root_fd)
    finally:
        os.close(root_fd)
    return WorkspaceInfo(root.resolve(), testbed, [data_dir])


def _is(dir_fd: int, name: str, kind: Callable[[int], bool]) -> bool:
    try:
        return kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _remove(dir_fd: int, name: str) -> None:
    """Remove ``name`` (a folder's tree, a file or a link itself) from ``dir_fd``; absent is fine."""
    if _is(dir_fd, name, stat.S_ISDIR):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows a link inside
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)


def _copy_library(root_fd: int) -> None:
    """Copy the method library's source into ``library/`` (read to learn, copy to change); replaced on
    every build, each file written beneath the workspace descriptor."""
    import aar.w2s

    src = Path(aar.w2s.__file__).parent
    _remove(root_fd, "library")
    files = [p for name in LIBRARY_FILES for p in ([src / name] if (src / name).is_file() else
             sorted((src / name).rglob("*"))) if p.is_file() and "__pycache__" not in p.parts]
    lib_fd = walk_dirs(root_fd, ["library"], create=True)
    try:
        for path in files:
            rel = path.relative_to(src).parts
            dir_fd = walk_dirs(lib_fd, list(rel[:-1]), create=True)
            try:
                replace_at(dir_fd, rel[-1], path.read_bytes())
            finally:
                os.close(dir_fd)
    finally:
        os.close(lib_fd)
