"""The research directions a directed team hands out (one per worker, in order, wrapping around) and the
open brief an undirected team shares. Deliberately ambiguous: a direction names an area, not a recipe."""

from __future__ import annotations

from aar.agents.base import OPEN_BRIEF

__all__ = ["DEFAULT_DIRECTIONS", "OPEN_BRIEF", "directions_for"]

DEFAULT_DIRECTIONS: tuple[str, ...] = (
    "Model the weak labels' noise: where is the weak supervisor wrong, and can the student learn around it "
    "(label-noise modelling, robust losses, filtering the labels you distrust)?",
    "Unsupervised elicitation: what does the strong model already know without any labels, and how should "
    "that knowledge be combined with the weak supervision?",
    "Self-training and pseudo-labels: let the student relabel its own training data; when does that help "
    "and when does it only confirm its mistakes?",
    "Ensembles and committees: combine several students, views or seeds; does disagreement tell you "
    "where the weak labels are wrong?",
    "Data selection and curricula: which training items to use, in which order, with which weight "
    "(confidence, difficulty, easy-to-hard)?",
    "Model internals: the strong model's representations hold more than its head uses; find features, "
    "views or directions that separate correct from incorrect answers (co-training across views).",
    "Loss design: change the objective the student optimises on weak labels (confidence losses, "
    "regularisation, calibration) so that it generalises beyond its teacher.",
    "Consistency: predictions that must agree (swapped answers, paraphrases, related items) constrain "
    "the truth; exploit consistency to correct the weak supervision.",
    "Training dynamics: what the student learns first, early stopping and regularisation strength as "
    "ways to keep the signal and drop the teacher's errors.",
)

def directions_for(n: int, mode: str, directions: list[str] | None = None) -> list[str | None]:
    """One direction per worker: round-robin over ``directions`` (default list) when directed, else None."""
    if mode == "undirected":
        return [None] * n
    pool = list(directions or DEFAULT_DIRECTIONS)
    if not pool:
        raise ValueError("directed mode needs at least one direction")
    return [pool[k % len(pool)] for k in range(n)]
