"""Real testbeds from Hugging Face datasets (need network the first time; cached by the hub client).

- ``chat-preference`` (pairwise): HelpSteer2 + HelpSteer3 preference pairs (train + ID test),
  RM-Bench and RewardBench 2 chosen/rejected pairs (OOD).
- ``math-verification`` (binary): DAPO-Math-17K problems (ID), AIME 2024 / 2025 (OOD).
- ``code-verification`` (binary): TACO train split, EASY/MEDIUM (ID) and MEDIUM_HARD/HARD/VERY_HARD
  (OOD), read from its parquet files (the repo's loading script is refused by ``datasets`` >= 4).

Binary items are verification: a problem with a candidate that is its own reference (answer or
solution, True) or the reference of another problem of the same source and difficulty (False).
Wrong candidates are a random derangement of the False half's own references, so True and False
candidates are draws from the same distribution and no format rule (length, leading zero, last
digit, code style) tells them apart. Answers are normalised first (AIME 2024 pads "025").
Each problem yields one record, deduplicated by its text (the hub's DAPO-Math-17k repeats each of
its ~17.4k prompts ~100 times), so no problem lands in two splits; an ID problem that is also an
OOD problem is dropped from ID.

Where rows come from (the hub, or ``AAR_HF_LOCAL_DIR``) is in :mod:`aar.w2s.testbeds.hf_rows`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from aar.w2s.testbeds.assemble import Record, assemble, stable_id
from aar.w2s.testbeds.base import Item, Testbed
from aar.w2s.testbeds.hf_rows import HFSource, load_rows

__all__ = ["HF_TESTBEDS", "HFSource", "load_hf_testbed", "load_rows", "normalise_answer"]


def _key(text: str) -> str:
    """A problem's identity for deduplication: its text with whitespace collapsed."""
    return " ".join(text.split())


def _messages_text(value: object) -> str:
    if isinstance(value, list):
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in value if isinstance(m, dict))
    return str(value)


def _pref(prompt: str, a: str, b: str, b_better: bool, difficulty: str, group: str, tag: str) -> Record:
    return Record(Item(stable_id(tag, prompt, a, b), prompt, a, b), int(b_better), difficulty, group)


def helpsteer2(rows: Iterable[dict], rng: np.random.Generator, group: str = "id") -> Iterator[Record]:
    """HelpSteer2 preference subset: preference_strength < 0 means response_1 is better."""
    for r in rows:
        s = int(r["preference_strength"])
        if s != 0:
            yield _pref(r["prompt"], r["response_1"], r["response_2"], s > 0, f"strength {abs(s)}", group, "hs2")


def helpsteer3(rows: Iterable[dict], rng: np.random.Generator, group: str = "id") -> Iterator[Record]:
    """HelpSteer3 preference: overall_preference < 0 means response1 is better."""
    for r in rows:
        s = int(r["overall_preference"])
        if s != 0:
            yield _pref(
                _messages_text(r["context"]), r["response1"], r["response2"], s > 0, f"strength {abs(s)}", group, "hs3"
            )


def chosen_rejected(tag: str, difficulty_field: str) -> Callable[..., Iterator[Record]]:
    """RM-Bench / RewardBench 2 rows: chosen and rejected (strings or lists); first of each is used."""

    def convert(rows: Iterable[dict], rng: np.random.Generator, group: str = "ood") -> Iterator[Record]:
        for r in rows:
            chosen = r["chosen"][0] if isinstance(r["chosen"], list) else r["chosen"]
            rejected = r["rejected"][0] if isinstance(r["rejected"], list) else r["rejected"]
            b_better = bool(rng.integers(2))
            a, b = (rejected, chosen) if b_better else (chosen, rejected)
            yield _pref(_messages_text(r["prompt"]), a, b, b_better, str(r.get(difficulty_field, "all")), group, tag)

    return convert


def normalise_answer(value: object) -> str:
    """One spelling per answer: trimmed, ``$``-stripped, integers without padding or sign ("025" -> "25")."""
    s = str(value).strip().strip("$").strip()
    if re.fullmatch(r"[+-]?\d+(\.0*)?", s):
        return str(int(float(s))) if "." in s else str(int(s))
    return " ".join(s.split())


def _derangement(values: list[str], rng: np.random.Generator) -> list[int | None]:
    """A random permutation ``p`` with ``values[p[i]] != values[i]``; ``None`` where none can be found."""
    n = len(values)
    if n < 2:
        return [None] * n
    order = rng.permutation(n)
    p = [0] * n
    for k in range(n):
        p[order[k]] = int(order[(k + 1) % n])
    for i in range(n):
        if values[p[i]] == values[i]:
            for j in rng.permutation(n):
                if values[p[j]] != values[i] and values[p[i]] != values[j]:
                    p[i], p[j] = p[j], p[i]
                    break
    return [p[i] if values[p[i]] != values[i] else None for i in range(n)]


def verification_records(
    tag: str, problems: Iterable[tuple[str, str, str]], rng: np.random.Generator, group: str
) -> Iterator[Record]:
    """Binary records: within each difficulty, half the problems keep their reference (True).

    The other half take each other's references through a random derangement (False), so every
    reference is offered once and True and False candidates come from the same distribution.

    Args:
        tag: Prefix of the item ids.
        problems: ``(question, reference, difficulty)`` triples, one per distinct question.
        rng: Decides which half is True and who swaps with whom.
        group: ``"id"`` or ``"ood"``.
    """
    by_level: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for question, reference, level in problems:
        by_level[level].append((question, reference))
    for level in sorted(by_level):
        rows = by_level[level]
        order = rng.permutation(len(rows))
        false_half = [rows[i] for i in order[: len(rows) // 2]]
        for i in order[len(rows) // 2 :]:
            question, reference = rows[i]
            yield Record(Item(stable_id(tag, question, reference), question, reference), 1, level, group)
        donors = _derangement([ref for _, ref in false_half], rng)
        for (question, _), d in zip(false_half, donors, strict=True):
            if d is not None:
                candidate = false_half[d][1]
                yield Record(Item(stable_id(tag, question, candidate), question, candidate), 0, level, group)


def math_answers(
    question_field: str, answer_getter: Callable[[dict], object], tag: str
) -> Callable[..., Iterator[Record]]:
    """Math problems with a reference answer, one record per distinct problem."""

    def convert(rows: Iterable[dict], rng: np.random.Generator, group: str = "id") -> Iterator[Record]:
        problems: dict[str, tuple[str, str, str]] = {}
        for r in rows:
            question, answer = _messages_text(r[question_field]), normalise_answer(answer_getter(r))
            if question.strip() and answer and _key(question) not in problems:
                problems[_key(question)] = (question, answer, str(r.get("level") or "all"))
        yield from verification_records(tag, problems.values(), rng, group)

    return convert


TACO_ID = {"EASY", "MEDIUM"}
TACO_OOD = {"MEDIUM_HARD", "HARD", "VERY_HARD"}  # UNKNOWN_DIFFICULTY is left out
TACO_COLUMNS = ("question", "solutions", "difficulty")


def taco(rows: Iterable[dict], rng: np.random.Generator, group: str = "id") -> Iterator[Record]:
    """TACO: EASY/MEDIUM problems are ID, harder ones OOD; one solution per problem is kept in memory."""
    problems: dict[str, tuple[str, str, str]] = {}
    for r in rows:
        if str(r["difficulty"]) not in TACO_ID | TACO_OOD:
            continue
        sols = json.loads(r["solutions"] or "[]") if isinstance(r["solutions"], str) else r["solutions"]
        question = str(r["question"] or "")
        if sols and question.strip() and _key(question) not in problems:
            problems[_key(question)] = (question, str(sols[int(rng.integers(len(sols)))]), str(r["difficulty"]))
    for g in ("id", "ood"):
        chosen = [p for p in problems.values() if (p[2] in TACO_ID) == (g == "id")]
        yield from verification_records("taco", chosen, rng, g)


def _dapo_answer(r: dict) -> object:
    return r["reward_model"]["ground_truth"]


HF_TESTBEDS: dict[str, tuple[str, list[HFSource]]] = {
    "chat-preference": (
        "pairwise",
        [
            HFSource("nvidia/HelpSteer2", "train", helpsteer2, "id", data_dir="preference"),
            HFSource("nvidia/HelpSteer3", "train", helpsteer3, "id", config="preference"),
            HFSource("THU-KEG/RM-Bench", "train", chosen_rejected("rmb", "domain"), "ood"),
            HFSource("allenai/reward-bench-2", "test", chosen_rejected("rb2", "subset"), "ood"),
        ],
    ),
    "math-verification": (
        "binary",
        [
            HFSource("BytedTsinghua-SIA/DAPO-Math-17k", "train", math_answers("prompt", _dapo_answer, "dapo"), "id"),
            HFSource(
                "HuggingFaceH4/aime_2024", "train", math_answers("problem", lambda r: r["answer"], "aime24"), "ood"
            ),
            HFSource("yentinglin/aime_2025", "train", math_answers("problem", lambda r: r["answer"], "aime25"), "ood"),
        ],
    ),
    "code-verification": (
        "binary",
        [
            HFSource("BAAI/TACO", "train", taco, "id", parquet="ALL/{split}-*.parquet", columns=TACO_COLUMNS),
        ],
    ),
}


def load_hf_testbed(name: str, seed: int = 0, max_items: int | None = None) -> Testbed:
    """Download (or read the local mirror of) a real testbed's sources and assemble it."""
    fmt, sources = HF_TESTBEDS[name]
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    for src in sources:
        records += list(src.convert(load_rows(src), rng, src.group))
    unique = _one_per_problem(records, fmt == "binary")
    meta = {"source": "hf", "description": f"{name} from " + ", ".join(s.path for s in sources)}
    return assemble(name, fmt, list(unique.values()), seed=seed, meta=meta, max_items=max_items)  # type: ignore[arg-type]


def _one_per_problem(records: list[Record], binary: bool) -> dict[str, Record]:
    """Records by id, without ID records whose prompt is an OOD prompt, and (binary) one per prompt."""
    ood = {_key(r.item.prompt) for r in records if r.group == "ood"}
    seen: set[tuple[str, str]] = set()
    unique: dict[str, Record] = {}
    for r in records:
        key = _key(r.item.prompt)
        if (r.group == "id" and key in ood) or (binary and (r.group, key) in seen):
            continue
        seen.add((r.group, key))
        unique[r.item.id] = r
    return unique
