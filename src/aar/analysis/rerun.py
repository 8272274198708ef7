"""Re-run an idea's code, unchanged, on a prepared testbed: in a fresh sandbox with no model API, no
network and no hub.

An idea is a folder with one entry point (the workspace convention): ``python run.py --testbed NAME
--out DIR`` writes ``DIR/predictions.jsonl``. Its code comes from the snapshot taken when it was
submitted (``submit_predictions(idea_dir=...)``), or, for an ``evolve`` idea without one, from its
recipe. :func:`rerun_idea` builds a fresh workspace for the testbed (README, library, the testbed's
public folder read-only), extracts the folder into ``idea/``, runs the entry point under the worker
sandbox policy with no sockets bound in, and reads back predictions for exactly the testbed's test
items. Used by ``aar transfer``; finalize's replay on the private items is meant to use the same runner.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from aar.config import Settings
from aar.hub.snapshots import SnapshotError, extract_tarball
from aar.sandbox import Limits, SandboxError, get_sandbox, worker_config
from aar.sandbox.files import UnsafePathError
from aar.w2s.recipes import RUN_PY, Recipe
from aar.w2s.testbeds.base import TEST_SPLITS, load_testbed

ENTRY_POINT = "run.py"
IDEA_DIR = "idea"
OUT_DIR = "out"
MAX_PREDICTIONS_BYTES = 64 << 20


class IdeaRunError(Exception):
    """The idea's code could not be obtained or did not produce usable predictions (the reason says why)."""


class Rerun(BaseModel):
    """One re-run of an idea on one testbed."""

    testbed: str
    ok: bool
    reason: str | None = Field(default=None, description="Why it failed (exit code, limit, bad output).")
    seconds: float
    stderr_tail: str = ""
    predictions: dict[str, float] = Field(default_factory=dict, exclude=True, repr=False)


def folder_tarball(files: dict[str, bytes]) -> bytes:
    """An idea folder ``{relative path: content}`` as a snapshot-style gzipped tarball."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def recipe_tarball(recipe: Recipe) -> bytes:
    """A recipe's idea folder: ``recipe.json`` and the recipe ``run.py``."""
    return folder_tarball({"recipe.json": recipe.model_dump_json(indent=1).encode(), ENTRY_POINT: RUN_PY.encode()})


def rerun_idea(code: bytes, testbed: str, settings: Settings, *, sandbox: str = "bwrap",
               timeout_s: float = 1800.0, limits: Limits | None = None,
               replace: dict[str, bytes] | None = None, hidden: Sequence[Path] = ()) -> Rerun:
    """Run the idea folder in ``code`` (a snapshot tarball) on ``testbed``; see the module docstring.

    Args:
        code: the idea folder as a gzipped tarball (a hub snapshot, or :func:`recipe_tarball`).
        testbed: a prepared testbed (its public folder is shown read-only).
        sandbox: the backend (``bwrap``; ``local`` only for tests on machines without namespaces).
        timeout_s: wall clock for the whole run.
        limits: resource limits (default: a worker's).
        replace: files of the idea folder to overwrite after extraction (tuned hyper-parameters).
        hidden: more host paths to mask (a replay view's home lies inside the real AAR_HOME: mask that too).
    """
    from aar.w2s.workspace import build_workspace

    tb = load_testbed(testbed, settings)
    expected = {i for s in TEST_SPLITS for i in tb[s].ids}
    root = settings.runs_dir / "reruns"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{testbed}-", dir=root))
    start = time.monotonic()
    try:
        info = build_workspace(work / "workspace", testbed, settings)
        try:
            extract_tarball(code, Path(IDEA_DIR), info.root)
        except SnapshotError as exc:
            raise IdeaRunError(f"the idea's code cannot be restored: {exc}") from None
        if not (info.root / IDEA_DIR / ENTRY_POINT).is_file():  # our fresh folder: no agent writes here yet
            raise IdeaRunError(f"the idea folder holds no {ENTRY_POINT} (entry point: python {ENTRY_POINT} "
                               f"--testbed NAME --out DIR)")
        for name, data in (replace or {}).items():
            (info.root / IDEA_DIR / name).write_bytes(data)
        env = {"AAR_HOME": str(settings.home.resolve()), "AAR_QUIET": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
        # no sockets: no hub, MCP or model API
        config = worker_config(info.root, aar_home=settings.home, ro_paths=info.sandbox_paths, env=env,
                               hidden_paths=hidden, limits=limits or Limits(wall_s=timeout_s))
        try:
            sb = get_sandbox(sandbox, config)
            res = sb.exec(["python", f"{IDEA_DIR}/{ENTRY_POINT}", "--testbed", testbed, "--out", OUT_DIR],
                          timeout=timeout_s)
        except SandboxError as exc:
            raise IdeaRunError(f"sandbox: {exc}") from None
        tail = res.stderr[-2000:]
        seconds = round(time.monotonic() - start, 2)
        if not res.ok:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            why = f"exit {res.exit_code}" + (f" ({res.limit_hit} limit)" if res.limit_hit else "") + f": {last}"
            return Rerun(testbed=testbed, ok=False, reason=why[:500], seconds=seconds, stderr_tail=tail)
        try:
            preds = _read_predictions(sb.read_file(f"{OUT_DIR}/predictions.jsonl"), expected)
        except (IdeaRunError, UnsafePathError, OSError) as exc:
            return Rerun(testbed=testbed, ok=False, reason=f"predictions: {exc}"[:500], seconds=seconds,
                         stderr_tail=tail)
        return Rerun(testbed=testbed, ok=True, seconds=seconds, stderr_tail=tail, predictions=preds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_predictions(raw: bytes, expected: set[str]) -> dict[str, float]:
    """``{"id", "prob"}`` JSON lines covering exactly ``expected``, each a probability in [0, 1]."""
    if len(raw) > MAX_PREDICTIONS_BYTES:
        raise IdeaRunError(f"over {MAX_PREDICTIONS_BYTES} bytes")
    out: dict[str, float] = {}
    try:
        for n, line in enumerate(raw.decode().splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            p = row.get("prob") if isinstance(row, dict) else None
            if not isinstance(p, int | float) or not math.isfinite(p) or not 0 <= p <= 1:
                raise IdeaRunError(f"line {n}: expected {{'id': ..., 'prob': P in [0, 1]}}")
            out[str(row.get("id"))] = float(p)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdeaRunError(f"not JSON lines: {exc}") from None
    missing, extra = expected - out.keys(), out.keys() - expected
    if missing or extra:
        raise IdeaRunError(f"{len(missing)} test items missing and {len(extra)} unknown ids "
                           f"(e.g. {sorted(missing or extra)[0]!r})")
    return out


def idea_code(settings: Settings, team: str, snapshot_id: str | None, recipe: dict | None) -> bytes:
    """The idea's folder: its snapshot from the team's hub (admin token), or a folder built from its recipe."""
    from aar.hub.client import HubClient, HubError
    from aar.orchestrator.team import load_state, team_dir

    if snapshot_id:
        state = load_state(settings, team)
        token = (team_dir(settings, team) / "admin.token").read_text().strip()
        try:
            with HubClient(state.spec.hub_url, token) as hub:
                return hub.download_snapshot(snapshot_id)
        except HubError as exc:
            if recipe is None:
                raise IdeaRunError(f"snapshot {snapshot_id[:12]} cannot be fetched from the hub: {exc}") from None
    if recipe is None:
        raise IdeaRunError("the idea has no snapshot and no recipe: nothing to re-run (an LLM worker's idea "
                           "is runnable when it was submitted with idea_dir)")
    return recipe_tarball(Recipe.model_validate(recipe))


def safe_name(text: str) -> str:
    """``text`` as a file name: letters, digits, ``-``, ``_`` and ``.`` kept, anything else ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def idea_folders(settings: Settings, team: str, ideas: list, into: Path) -> tuple[dict[str, Path], list[str]]:
    """Restore the snapshot of each idea that has one and no recipe (an agent's own code) under ``into``,
    for counting its lines; returns {idea id: folder} and a note per idea that could not be restored."""
    folders: dict[str, Path] = {}
    notes: list[str] = []
    into.mkdir(parents=True, exist_ok=True)
    for idea in ideas:
        if not idea.snapshot_id or idea.recipe is not None:
            continue
        name = safe_name(idea.id)
        shutil.rmtree(into / name, ignore_errors=True)
        try:
            extract_tarball(idea_code(settings, team, idea.snapshot_id, None), Path(name), into)
        except (IdeaRunError, SnapshotError, OSError) as exc:
            notes.append(f"idea {idea.id}: code not restored ({exc})")
            continue
        folders[idea.id] = into / name
    return folders, notes
