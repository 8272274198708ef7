"""Ideas as data: one record per idea a worker tried, from its trajectory and the team's findings.

Sources, per kind of researcher:

* ``evolve``: every candidate recipe of every generation (the trajectory's ``decision`` steps); its
  family is its genes' (each gene is tagged with one), its submissions are the ``submission`` steps
  that name the candidate.
* ``llm`` / ``claude``: every finding the worker shared (the hub); its family is the one the worker
  gave, else the offline classifier's on its title and body; its submissions are the ones it cites.

* ``llm`` / ``claude`` idea folders submitted (``submit_predictions(idea_dir=...)``) that no finding cites:
  one idea per snapshot.

An idea's ``snapshot_id`` is its runnable folder (entry point ``run.py``; :mod:`aar.analysis.rerun`).
``hours`` counts from the team's first step. :func:`idea_starts` turns the records into the input of
:func:`aar.analysis.diversity.entropy_curve`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from aar.agents.base import Step
from aar.analysis.diversity import IdeaStart
from aar.analysis.families import FamilyClassifier
from aar.hub.models import Finding


class Idea(BaseModel):
    """One idea a worker tried."""

    id: str
    worker: str
    started_at: datetime
    hours: float = Field(description="Hours since the team's first step.")
    description: str
    family: str
    family_source: str = Field(description="recipe | worker | classifier")
    families: list[str] = Field(default_factory=list, description="Every family it touches (recipes).")
    submission_ids: list[str] = Field(default_factory=list)
    finding_ids: list[int] = Field(default_factory=list)
    snapshot_id: str | None = Field(default=None, description="The idea folder's snapshot (runnable: run.py).")
    recipe: dict[str, Any] | None = Field(default=None, description="An evolve idea's recipe (its non-default genes).")
    parents: list[str] = Field(default_factory=list, description="Ideas it came from (evolve: the recipes it was "
                                                                 "bred from; findings: the findings it builds on).")
    best_released_pgr: float | None = Field(default=None, description="Best combined PGR released to its submissions.")


def _submissions(steps: Sequence[Step]) -> dict[str, Step]:
    return {s.submission_id: s for s in steps if s.type == "submission" and s.submission_id}


def _best_released(subs: Sequence[Step]) -> float | None:
    values = [v for s in subs if isinstance(v := (s.data.get("released_pgr") or {}).get("combined"), int | float)]
    return max(values, default=None)


def ideas_from_evolve(worker: str, steps: Sequence[Step], t0: datetime) -> list[Idea]:
    """The candidate recipes of an ``evolve`` worker's generations, with the submissions that name them."""
    from aar.w2s.recipes import Recipe

    subs: dict[str, list[Step]] = {}
    for s in _submissions(steps).values():
        if isinstance(s.data.get("candidate"), str):
            subs.setdefault(s.data["candidate"], []).append(s)
    out: list[Idea] = []
    for s in steps:
        if s.type != "decision" or not isinstance(s.data.get("children"), list):
            continue
        for child in s.data["children"]:
            try:
                diff = json.loads(child["recipe"])
                families = Recipe.model_validate(diff).families()
            except (KeyError, TypeError, ValueError):
                continue
            mine = subs.get(child["id"], [])
            snapshot = next((x.data["snapshot_id"] for x in mine if isinstance(x.data.get("snapshot_id"), str)), None)
            out.append(Idea(id=f"{worker}:{child['id']}", worker=worker, started_at=s.t,
                            hours=(s.t - t0).total_seconds() / 3600, description=f"recipe {child['recipe']}",
                            family=families[0], family_source="recipe", families=families,
                            submission_ids=[x.submission_id for x in mine if x.submission_id], snapshot_id=snapshot,
                            recipe=diff, best_released_pgr=_best_released(mine),
                            parents=[f"{worker}:{p}" for p in child.get("parents") or [] if isinstance(p, str)]))
    return out


def ideas_from_findings(findings: Sequence[Finding], t0: datetime,
                        classifier: FamilyClassifier | None = None) -> list[Idea]:
    """One idea per finding; a finding without a family is classified (offline by default)."""
    texts = [f"{f.title}. {f.body[:500]}" for f in findings]
    need = [i for i, f in enumerate(findings) if not f.family]
    guessed: dict[int, str] = {}
    if need:
        if classifier is None:
            from aar.analysis.families import OfflineClassifier

            classifier = OfflineClassifier()
        guessed = {i: lab.family for i, lab in zip(need, classifier.classify([texts[i] for i in need]), strict=True)}
    ids = {f.id: f"{f.author}:finding-{f.id}" for f in findings}
    return [Idea(id=ids[f.id], worker=f.author, started_at=f.created_at,
                 hours=(f.created_at - t0).total_seconds() / 3600, description=texts[i][:300],
                 family=f.family or guessed[i], family_source="worker" if f.family else "classifier",
                 submission_ids=list(f.submission_ids), finding_ids=[f.id], snapshot_id=f.snapshot_id,
                 parents=[ids[p] for p in f.parents if p in ids])
            for i, f in enumerate(findings)]


def ideas_from_submissions(worker: str, steps: Sequence[Step], t0: datetime, known: set[str]) -> list[Idea]:
    """One idea per idea folder an ``llm`` / ``claude`` worker submitted (a snapshot no finding cites)."""
    by_snapshot: dict[str, list[Step]] = {}
    for s in _submissions(steps).values():
        snap = s.data.get("snapshot_id")
        if isinstance(snap, str) and snap not in known:
            by_snapshot.setdefault(snap, []).append(s)
    return [Idea(id=f"{worker}:snapshot-{snap[:12]}", worker=worker, started_at=subs[0].t,
                 hours=(subs[0].t - t0).total_seconds() / 3600, description=f"idea folder {snap[:12]} (no finding)",
                 family="other", family_source="classifier", submission_ids=[x.submission_id or "" for x in subs],
                 snapshot_id=snap, best_released_pgr=_best_released(subs))
            for snap, subs in by_snapshot.items()]


def idea_starts(ideas: Sequence[Idea], worker_end: dict[str, float] | None = None,
                ) -> tuple[list[IdeaStart], dict[str, float]]:
    """Entropy-curve input: each idea's start, and each worker's end (default: the team's last idea start,
    i.e. every worker counts as active from its first idea to the end)."""
    starts = [IdeaStart(i.worker, i.hours, i.family) for i in ideas]
    last = max((s.hours for s in starts), default=0.0)
    return starts, {s.worker: (worker_end or {}).get(s.worker, last) for s in starts}


class TeamIdeas(BaseModel):
    """A team's ideas and the hour each worker's last step happened (its end, for the entropy curve)."""

    team: str
    ideas: list[Idea]
    worker_end: dict[str, float]


def team_ideas(settings: Any, team: str, classifier: FamilyClassifier | None = None) -> TeamIdeas:
    """Every idea of a team launched from this AAR_HOME: evolve workers' recipes, others' findings."""
    from aar.hub.client import HubClient
    from aar.orchestrator.supervisor import trajectory_of
    from aar.orchestrator.team import load_state, team_dir

    state = load_state(settings, team)
    trajectories = {w: trajectory_of(settings, team, w) for w in state.workers}
    t0 = min((steps[0].t for steps in trajectories.values() if steps), default=state.created_at)
    ideas: list[Idea] = []
    if state.spec.kind == "evolve":
        for w, steps in trajectories.items():
            ideas += ideas_from_evolve(w, steps, t0)
    else:
        token = (team_dir(settings, team) / "admin.token").read_text().strip()
        with HubClient(state.spec.hub_url, token) as hub:
            found: list[Finding] = []
            cursor = 0
            while page := hub.findings(since_rev=cursor, limit=500, team=team).findings:
                found += page
                cursor = max(f.rev for f in page)
        ideas += ideas_from_findings([f for f in found if f.author in state.workers], t0, classifier)
        for i in ideas:  # a finding's idea: its submissions' best released PGR and (if it names none) snapshot
            subs = _submissions(trajectories.get(i.worker, []))
            mine = [subs[x] for x in i.submission_ids if x in subs]
            i.best_released_pgr = _best_released(mine)
            i.snapshot_id = i.snapshot_id or next(
                (x.data["snapshot_id"] for x in mine if isinstance(x.data.get("snapshot_id"), str)), None)
        cited = {i.snapshot_id for i in ideas if i.snapshot_id}
        for w, steps in trajectories.items():
            ideas += ideas_from_submissions(w, steps, t0, cited)
    ends = {w: (steps[-1].t - t0).total_seconds() / 3600 for w, steps in trajectories.items() if steps}
    return TeamIdeas(team=team, ideas=sorted(ideas, key=lambda i: (i.started_at, i.id)), worker_end=ends)
