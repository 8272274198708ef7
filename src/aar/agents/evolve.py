"""The ``evolve`` researcher: evolutionary search over recipes of the method library (no LLM).

It keeps a population of ideas (:class:`~aar.w2s.recipes.Recipe`: compositions of label filtering,
confidence weighting, loss choice, zero-shot elicitation mixing, self-training, curricula, co-training
over encoder views and ensembling, with their hyper-parameters). Each generation it

1. reads the team's findings (the synced ``findings/`` files) and adopts the best-scoring recipes
   other workers shared, within its families;
2. makes children by mutating one or two genes of good parents, or crossing two parents;
3. runs every child as a real experiment **inside its sandbox** (``python -m aar.w2s.recipes``) and
   scores it with label-free proxies (agreement with the weak model where it is confident and with
   the strong model's zero-shot view);
4. submits the most promising child through the MCP tools (snapshot of its folder first, then the
   predictions, then a finding: ``result`` when the ladder released a better team score,
   ``negative`` when it did not), and remembers what the ladder said.

Directed mode restricts mutations to the genes of the families its direction names. Its memory
(population, generation, findings read) lives in ``memory/evolve_state.json`` (rendered for people
in ``NOTEBOOK.md``) and is snapshotted to the hub after every generation, so a restarted worker
resumes where it stopped, from its workspace or, when that is gone, from its last memory snapshot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aar.agents.base import Budget, Researcher, Trajectory
from aar.agents.tools import McpTools, ToolCallError
from aar.sandbox import Sandbox, SandboxError
from aar.w2s.recipes import FAMILY_OF, RUN_PY, Recipe

MEMORY_DIR = "memory"
STATE_FILE = f"{MEMORY_DIR}/evolve_state.json"
MEMORY_NOTE = "evolve memory"
STATE_VERSION = 1

#: Words in a research direction that select a method family (directed mode).
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "self_training": ("self-train", "self train", "pseudo-label", "pseudo label", "bootstrap"),
    "ensemble": ("ensembl", "bagging", "committee"),
    "data_filtering": ("filter", "data selection", "select", "clean", "noise"),
    "confidence_weighting": ("weight", "confidence"),
    "loss_function": ("loss", "objective", "regulari"),
    "unsupervised_elicitation": ("elicit", "zero-shot", "zeroshot", "unsupervised", "prompt"),
    "curriculum": ("curricul", "easy-to-hard", "easy to hard", "order"),
    "model_internal": ("internal", "representation", "view", "co-train", "cotrain", "feature"),
    "distillation": ("distill", "soft label", "soft-label"),
}

GENES: dict[str, Callable[[np.random.Generator], Any]] = {
    "labels": lambda g: str(g.choice(["hard", "soft"])),
    "C": lambda g: round(float(10 ** g.uniform(-2.3, 0.0)), 4),
    "filter_keep": lambda g: round(float(g.uniform(0.3, 1.0)), 2),
    "agree_only": lambda g: bool(g.random() < 0.5),
    "weight_power": lambda g: round(float(g.uniform(0.0, 2.0)), 2),
    "loss": lambda g: str(g.choice(["bce", "logconf"])),
    "zeroshot_mix": lambda g: round(float(g.uniform(0.0, 1.0)), 2),
    "test_zeroshot_mix": lambda g: round(float(g.uniform(0.0, 0.8)), 2),
    "self_train_rounds": lambda g: int(g.integers(0, 4)),
    "self_train_mix": lambda g: round(float(g.uniform(0.2, 0.8)), 2),
    "curriculum_stages": lambda g: int(g.integers(0, 4)),
    "cotrain_rounds": lambda g: int(g.integers(0, 3)),
    "ensemble": lambda g: int(g.choice([1, 3, 5])),
}


def direction_families(direction: str | None) -> set[str] | None:
    """The families a direction names (None: undirected, or a direction naming none: every family)."""
    if not direction:
        return None
    text = direction.lower()
    found = {fam for fam, words in DIRECTION_WORDS.items() if any(w in text for w in words)}
    return found or None


class EvolveConfig(BaseModel):
    """Search settings of one evolve worker."""

    model_config = ConfigDict(extra="forbid")

    children: int = Field(default=4, ge=1, le=32, description="Experiments per generation.")
    parents: int = Field(default=4, ge=1, le=32, description="Best candidates kept as parents.")
    submit_per_generation: int = Field(default=1, ge=0, le=8, description="Submissions per generation (best proxies).")
    generations_per_session: int = Field(default=3, ge=1, le=100, description="Generations before a fresh session.")
    max_generations: int | None = Field(default=None, ge=1, description="Stop after this many generations in total.")
    exec_timeout_s: float = Field(default=900.0, gt=0, description="Wall-clock limit of one experiment.")
    min_label_change: float = Field(default=0.03, ge=0, le=1, description=(
        "Submit only predictions whose hard labels differ from each earlier submission of this worker on at "
        "least this share of test items: closer ones are reruns, and picking among them is cherry-picking."))
    seed: int = Field(default=0, ge=0)


class Candidate(BaseModel):
    """One idea and what is known about it."""

    id: str
    recipe: Recipe
    generation: int
    origin: str
    parents: list[str] = Field(default_factory=list)
    checks: dict[str, float] | None = None
    proxy: float | None = None
    error: str | None = None
    seconds: float | None = None
    submission_id: str | None = None
    released: dict[str, Any] | None = None
    improved: bool | None = None
    finding_id: int | None = None
    snapshot_id: str | None = None

    def fitness(self) -> float:
        """Label-free proxy, nudged by what the ladder said when it was submitted."""
        if self.proxy is None:
            return -1.0
        return self.proxy + (0.05 if self.improved else -0.02 if self.improved is False else 0.0)


class EvolveState(BaseModel):
    """The researcher's memory, kept in the workspace."""

    schema_version: int = STATE_VERSION
    generation: int = 0
    candidates: list[Candidate] = Field(default_factory=list)
    findings_read: list[int] = Field(default_factory=list)


def proxy_score(checks: dict[str, float]) -> float:
    """Mean over test splits of agreement with the confident weak labels and with zero-shot labels."""
    parts = [(checks[f"{s}.agree_weak_confident"] + checks[f"{s}.agree_zeroshot"]) / 2 for s in ("test_id", "test_ood")]
    return float(np.mean(parts))


class EvolveResearcher(Researcher):
    """See the module docstring. ``tools_factory`` opens the worker's MCP tools for one session."""

    kind = "evolve"

    def __init__(self, *, trajectory_path: Path, budget: Budget, sandbox: Sandbox, testbed: str,
                 tools_factory: Callable[[Trajectory], McpTools], direction: str | None = None,
                 config: EvolveConfig | None = None, worker_id: str = "") -> None:
        super().__init__(trajectory_path, budget, {"testbed": testbed, "direction": direction, "worker": worker_id})
        self.sandbox = sandbox
        self.testbed = testbed
        self.tools_factory = tools_factory
        self.direction = direction
        self.families = direction_families(direction)
        self.config = config or EvolveConfig()
        self.worker_id = worker_id
        self.workspace = sandbox.workspace
        self.state = self._load_state()
        self.rng = np.random.default_rng([self.config.seed, self.state.generation, len(self.state.candidates)])

    # --- memory -------------------------------------------------------------------------------------
    def _load_state(self) -> EvolveState:
        try:
            return EvolveState.model_validate_json(self.sandbox.read_file(STATE_FILE))
        except SandboxError:  # absent (or not a regular file: never followed out of the workspace)
            return EvolveState()
        except ValidationError:
            self.sandbox.write_file(f"{STATE_FILE}.corrupt", self.sandbox.read_file(STATE_FILE))  # for a human
            return EvolveState()

    def _save_state(self) -> None:
        self.sandbox.write_file(STATE_FILE, self.state.model_dump_json(indent=1).encode())
        self._write_notebook()

    def _write_notebook(self) -> None:
        best = sorted((c for c in self.state.candidates if c.proxy is not None), key=lambda c: -c.fitness())[:8]
        lines = [f"# Notebook ({self.testbed}, evolve worker {self.worker_id})", "",
                 f"Direction: {self.direction or 'open brief (undirected)'}",
                 f"Families searched: {', '.join(sorted(self.families)) if self.families else 'all'}",
                 f"Generations done: {self.state.generation}; experiments: {len(self.state.candidates)}", "",
                 "## Best ideas so far (label-free proxy; ladder outcome if submitted)", "",
                 "| idea | proxy | submitted | ladder | recipe |", "|---|---|---|---|---|"]
        for c in best:
            ladder = "" if c.improved is None else ("raised team best" if c.improved else "no release")
            lines.append(f"| {c.id} | {c.proxy:.4f} | {c.submission_id or ''} | {ladder} | `{_diff(c.recipe)}` |")
        failed = [c for c in self.state.candidates if c.error]
        if failed:
            lines += ["", f"## Failed experiments: {len(failed)}", *(f"- {c.id}: {c.error}" for c in failed[-5:])]
        self.sandbox.write_file("NOTEBOOK.md", ("\n".join(lines) + "\n").encode())

    # --- the loop -----------------------------------------------------------------------------------
    def session(self, number: int) -> bool:
        return anyio.run(self._session)

    async def _session(self) -> bool:
        async with self.tools_factory(self.trajectory) as tools:
            if not self.state.candidates:
                await self.restore_memory(tools)
            for _ in range(self.config.generations_per_session):
                if self.budget_left() or self._done():
                    break
                await self.generation(tools)
        return not self._done()

    def _done(self) -> bool:
        cap = self.config.max_generations
        return cap is not None and self.state.generation >= cap

    async def generation(self, tools: McpTools) -> None:
        g = self.state.generation + 1
        children = self.propose(g, self.adopt_findings())
        self.trajectory.append("decision", generation=g,
                               children=[{"id": c.id, "origin": c.origin, "parents": c.parents,
                                          "recipe": _diff(c.recipe)} for c in children])
        for child in children:
            if self.budget_left():
                break
            await anyio.to_thread.run_sync(self.run_experiment, child)
            self.state.candidates.append(child)
            self._save_state()
        ranked = sorted((c for c in children if c.proxy is not None and self._in_direction(c.recipe)),
                        key=lambda c: -c.fitness())
        submitted = 0
        for child in ranked:
            if submitted >= self.config.submit_per_generation or self.budget_left():
                break
            twin = self.near_duplicate(child)
            if twin is not None:
                self.trajectory.append("decision", skipped=child.id, reason=f"near-duplicate of {twin}")
                continue
            await self.submit(tools, child)
            submitted += 1
        self.state.generation = g
        self._save_state()
        try:
            await tools.call("upload_snapshot", path=MEMORY_DIR, note=f"{MEMORY_NOTE} after generation {g}")
        except ToolCallError as exc:
            self.trajectory.append("error", error=f"memory snapshot failed: {exc}"[:300])

    async def restore_memory(self, tools: McpTools) -> None:
        """An empty workspace (new machine, lost disk): restore the memory from this worker's last snapshot."""
        listed = await tools.call("list_snapshots", worker=self.worker_id, limit=50)
        latest = next((s for s in listed.get("snapshots", []) if str(s.get("note", "")).startswith(MEMORY_NOTE)), None)
        if latest is None:
            return
        await tools.call("download_snapshot", snapshot_id=latest["id"], target=MEMORY_DIR)
        self.state = self._load_state()
        self.trajectory.append("decision", restored_from=latest["id"], generation=self.state.generation)

    def hard_labels(self, c: Candidate) -> np.ndarray | None:
        """The hard test labels of a candidate's predictions (None when its file is unreadable)."""
        try:
            rows = self.sandbox.read_file(f"ideas/{c.id}/predictions.jsonl").decode().splitlines()
            return np.array([json.loads(r)["prob"] > 0.5 for r in rows if r.strip()])
        except (SandboxError, ValueError, KeyError):
            return None

    def near_duplicate(self, c: Candidate) -> str | None:
        """The id of an earlier submitted candidate whose hard labels are within ``min_label_change`` of ``c``'s."""
        mine = self.hard_labels(c)
        if mine is None:
            return None
        for other in self.state.candidates:
            if other.submission_id is None or other.id == c.id:
                continue
            theirs = self.hard_labels(other)
            if theirs is not None and len(theirs) == len(mine) and \
                    float(np.mean(theirs != mine)) < self.config.min_label_change:
                return other.id
        return None

    def _allowed(self) -> list[str]:
        genes = [k for k in GENES if self.families is None or FAMILY_OF[k] in self.families]
        return genes + (["C"] if "C" not in genes else [])

    def propose(self, g: int, adopted: list[tuple[Recipe, str]] | None = None) -> list[Candidate]:
        """Children of generation ``g``: vanilla first, recipes adopted from findings (up to half), then
        mutations and crossovers of the fittest candidates, never an already-tried recipe."""
        pool = sorted((c for c in self.state.candidates if c.proxy is not None), key=lambda c: -c.fitness())
        parents = pool[: self.config.parents]
        seen = {c.recipe.model_dump_json() for c in self.state.candidates}
        first = sum(c.generation == g for c in self.state.candidates) + 1  # a resumed generation keeps its ids
        out: list[Candidate] = []

        def add(recipe: Recipe, origin: str, ids: list[str]) -> None:
            key = recipe.model_dump_json()
            if key not in seen:
                seen.add(key)
                out.append(Candidate(id=f"g{g:03d}-{first + len(out):02d}", recipe=recipe, generation=g,
                                     origin=origin, parents=ids))

        if not self.state.candidates:
            add(Recipe(), "seed", [])
        for recipe, origin in adopted or []:
            if len(out) < max(1, self.config.children // 2):
                add(recipe, origin, [])
        for _ in range(100 * self.config.children):
            if len(out) >= self.config.children:
                break
            if len(parents) > 1 and self.rng.random() < 0.3:
                a, b = self.rng.choice(len(parents), 2, replace=False)
                add(self._crossover(parents[a].recipe, parents[b].recipe), "crossover", [parents[a].id, parents[b].id])
            elif parents:
                p = parents[int(self.rng.integers(len(parents)))]
                add(self._mutate(p.recipe), "mutation", [p.id])
            else:
                add(self._mutate(Recipe(), n=2), "random", [])
        return out

    def _mutate(self, recipe: Recipe, n: int | None = None) -> Recipe:
        """Redraw ``n`` (1 or 2) genes; the first is always one of the allowed families' own genes."""
        allowed = [g for g in self._allowed() if g != "C"]
        n = n or int(self.rng.integers(1, 3))
        genes = [str(self.rng.choice(allowed))]
        rest = [g for g in [*allowed, "C"] if g not in genes]
        genes += [str(g) for g in self.rng.choice(rest, size=min(n - 1, len(rest)), replace=False)]
        data = recipe.model_dump()
        for gene in genes:
            data[gene] = GENES[gene](self.rng)
        data["seed"] = 0
        return Recipe.model_validate(data)

    def _crossover(self, a: Recipe, b: Recipe) -> Recipe:
        da, db = a.model_dump(), b.model_dump()
        return Recipe.model_validate({k: (da[k] if self.rng.random() < 0.5 else db[k]) for k in da})

    def adopt_findings(self) -> list[tuple[Recipe, str]]:
        """Recipes of other workers' shared results not read before, best released PGR first, in our families."""
        found: list[tuple[float, Recipe, str]] = []
        for path in sorted((self.workspace / "findings").glob("f*.md")):
            front = _front_matter(self.sandbox, f"findings/{path.name}")
            fid = front.get("id")
            if not isinstance(fid, int) or fid in self.state.findings_read:
                continue
            self.state.findings_read.append(fid)
            if front.get("author") == self.worker_id or front.get("kind") != "result":
                continue
            if self.families is not None and front.get("family") not in self.families:
                continue
            try:
                recipe = Recipe.model_validate(front.get("config") or {})
            except ValidationError:
                continue
            found.append((_released_pgr(front), recipe, f"finding:{fid}:{front.get('author')}"))
        return [(r, origin) for _, r, origin in sorted(found, key=lambda t: -t[0])]

    # --- one experiment, in the sandbox ------------------------------------------------------------------
    def run_experiment(self, c: Candidate) -> None:
        folder = f"ideas/{c.id}"
        self.sandbox.write_file(f"{folder}/recipe.json", c.recipe.model_dump_json(indent=1).encode())
        self.sandbox.write_file(f"{folder}/run.py", RUN_PY.encode())
        cmd = ["python", f"{folder}/run.py", "--testbed", self.testbed, "--out", folder]
        self.trajectory.append("tool_call", name="sandbox.exec", arguments={"cmd": cmd})
        res = self.sandbox.exec(cmd, timeout=self.config.exec_timeout_s)
        if not res.ok:
            c.error = (f"exit {res.exit_code}" + (f", {res.limit_hit} limit" if res.limit_hit else "") + ": "
                       + (res.stderr.strip().splitlines() or ["no output"])[-1])[:300]
            self.trajectory.append("tool_result", name="sandbox.exec", ok=False, error=c.error,
                                   seconds=round(res.duration_s, 2))
            return
        result = json.loads(self.sandbox.read_file(f"{folder}/result.json"))
        c.checks, c.seconds = result["checks"], result["seconds"]
        c.proxy = proxy_score(c.checks)
        self.trajectory.append("tool_result", name="sandbox.exec", ok=True, seconds=round(res.duration_s, 2),
                               result={"proxy": round(c.proxy, 4), "checks": c.checks})

    async def submit(self, tools: McpTools, c: Candidate) -> None:
        """Snapshot the idea's folder, submit its predictions, share what the ladder said."""
        folder = f"ideas/{c.id}"
        try:
            sub = await tools.call("submit_predictions", testbed=self.testbed,
                                   predictions_file=f"{folder}/predictions.jsonl", seed=c.recipe.seed,
                                   note=f"evolve {c.id}: {_diff(c.recipe)}", idea_dir=folder)
            c.snapshot_id = sub["snapshot_id"]
        except ToolCallError as exc:
            c.error = str(exc)[:300]
            self.trajectory.append("error", error=c.error, candidate=c.id)
            return
        c.submission_id, c.released = sub["id"], sub["released"]
        c.improved = bool(sub["released"].get("improved"))
        self.record_submission(sub["id"], candidate=c.id, improved=c.improved, released_pgr=sub["released"]["pgr"],
                               snapshot_id=c.snapshot_id)
        family = self._family(c.recipe)
        kind = "result" if c.improved else "negative"
        body = (f"Recipe (evolve, generation {c.generation}, {c.origin}): `{_diff(c.recipe)}`\n\n"
                f"Label-free proxy {c.proxy:.4f}; checks: {json.dumps(c.checks, sort_keys=True)}\n\n"
                + ("The ladder released a better team score." if c.improved else
                   "The ladder released nothing: not better than the team's best by its margin.")
                + f"\n\nRe-run: `python {folder}/run.py --testbed {self.testbed} --out DIR` (snapshot "
                f"{(c.snapshot_id or '')[:12]}).")
        try:
            found = await tools.call("share_finding", title=f"{family}: {_diff(c.recipe)}"[:200], kind=kind, body=body,
                                     family=family, tags=["evolve", f"gen{c.generation}"],
                                     submission_ids=[c.submission_id], config=c.recipe.model_dump(),
                                     snapshot_id=c.snapshot_id)
            c.finding_id = found["id"]
        except ToolCallError as exc:
            self.trajectory.append("error", error=str(exc)[:300], candidate=c.id)
        self._save_state()

    def _in_direction(self, recipe: Recipe) -> bool:
        """Undirected: every recipe; directed: recipes using one of the direction's families (vanilla is a
        reference point then, run but not submitted)."""
        return self.families is None or bool(set(recipe.families()) & self.families)

    def _family(self, recipe: Recipe) -> str:
        fams = recipe.families()
        inside = [f for f in fams if self.families is None or f in self.families]
        return (inside or fams)[0]


def _diff(recipe: Recipe) -> str:
    """The recipe's fields that differ from vanilla, compactly (``{}`` is vanilla)."""
    base = Recipe().model_dump()
    return json.dumps({k: v for k, v in recipe.model_dump().items() if v != base[k]}, sort_keys=True)


_FRONT = re.compile(r"^([a-z_]+): (.*)$")


def _front_matter(sandbox: Sandbox, rel: str) -> dict[str, Any]:
    """The JSON front matter of a synced finding file (empty when unreadable; links are never followed)."""
    try:
        lines = sandbox.read_file(rel).decode(errors="replace").split("\n")
        end = lines.index("---", 1)
    except (SandboxError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for line in lines[1:end]:
        m = _FRONT.match(line)
        if m:
            try:
                out[m.group(1)] = json.loads(m.group(2))
            except ValueError:
                continue
    return out


def _released_pgr(front: dict[str, Any]) -> float:
    """The best released combined PGR among a finding's scores (0 when none)."""
    best = 0.0
    for score in (front.get("scores") or {}).values():
        pgr = ((score or {}).get("released") or {}).get("pgr") or {}
        if isinstance(pgr.get("combined"), int | float):
            best = max(best, float(pgr["combined"]))
    return best
