"""Real testbeds from Hugging Face datasets (need network the first time; cached by ``datasets``).

- ``chat-preference`` (pairwise): HelpSteer2 + HelpSteer3 preference pairs (train + ID test),
  RM-Bench and RewardBench 2 chosen/rejected pairs (OOD).
- ``math-verification`` (binary): DAPO-Math-17K problems (ID), AIME 2024 / 2025 (OOD); the
  candidate is the reference answer (True) or a perturbed answer (False).
- ``code-verification`` (binary): TACO easy–medium (ID), medium-hard–very-hard (OOD); the
  candidate is a solution of the problem (True) or of another problem of the same difficulty (False),
  balanced True/False within every difficulty level.

Set ``AAR_HF_LOCAL_DIR`` to read ``<dir>/<owner>__<name>/<split>.jsonl`` files in the datasets' own
schemas instead of the hub (how the tests run offline, and how to use a pre-downloaded mirror).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aar.w2s.testbeds.assemble import Record, assemble, stable_id
from aar.w2s.testbeds.base import Item, Testbed, TestbedError


@dataclass(frozen=True)
class HFSource:
    path: str
    split: str
    convert: Callable[..., Iterator[Record]]
    group: str
    config: str | None = None
    data_dir: str | None = None


def load_rows(src: HFSource) -> Iterable[dict]:
    """Rows of one dataset split, from ``AAR_HF_LOCAL_DIR`` when set, else from the hub."""
    try:
        import datasets
    except ImportError:
        raise TestbedError("Hugging Face testbeds need the hf extra: pip install 'aar[hf]'") from None
    local = os.environ.get("AAR_HF_LOCAL_DIR")
    if local:
        path = Path(local) / src.path.replace("/", "__") / f"{src.split}.jsonl"
        if not path.exists():
            raise TestbedError(f"AAR_HF_LOCAL_DIR is set but {path} is missing")
        return datasets.load_dataset("json", data_files=str(path), split="train")
    try:
        return datasets.load_dataset(src.path, src.config, split=src.split, data_dir=src.data_dir)
    except Exception as exc:  # network, auth, schema: say which dataset failed
        raise TestbedError(f"could not load {src.path} ({src.split}) from Hugging Face: {exc}") from None


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


def _wrong_answer(answer: str, rng: np.random.Generator) -> str:
    try:
        value = int(str(answer).strip())
    except ValueError:
        return str(answer) + " + 1"
    delta = int(rng.choice([-1, 1]) * rng.integers(1, 1 + max(2, abs(value) // 5)))
    return str(value + delta)


def math_answers(
    question_field: str, answer_getter: Callable[[dict], str], tag: str
) -> Callable[..., Iterator[Record]]:
    """Math problems with a reference answer; each problem yields a true or a perturbed candidate."""

    def convert(rows: Iterable[dict], rng: np.random.Generator, group: str = "id") -> Iterator[Record]:
        for r in rows:
            question = _messages_text(r[question_field])
            answer = str(answer_getter(r))
            correct = bool(rng.integers(2))
            candidate = answer if correct else _wrong_answer(answer, rng)
            yield Record(
                Item(stable_id(tag, question, candidate), question, candidate),
                int(correct),
                str(r.get("level", "all")),
                group,
            )

    return convert


def taco(rows: Iterable[dict], rng: np.random.Generator, group: str = "id") -> Iterator[Record]:
    """TACO: a problem's own solution (True) or a same-difficulty other problem's solution (False)."""
    by_level: dict[str, list[tuple[str, list[str]]]] = {}
    for r in rows:
        sols = json.loads(r["solutions"]) if isinstance(r["solutions"], str) else r["solutions"]
        if sols:
            by_level.setdefault(str(r["difficulty"]), []).append((r["question"], sols))
    for level, problems in by_level.items():
        if len(problems) < 2:
            continue
        for i, (question, sols) in enumerate(problems):
            correct = i % 2 == 0
            if correct:
                candidate = sols[int(rng.integers(len(sols)))]
            else:
                other = problems[(i + 1 + int(rng.integers(len(problems) - 1))) % len(problems)]
                candidate = other[1][0]
            yield Record(Item(stable_id("taco", question, candidate), question, candidate), int(correct), level, group)


TACO_ID = {"EASY", "MEDIUM"}


def _taco_filter(levels: set[str], group: str) -> Callable[..., Iterator[Record]]:
    def convert(rows: Iterable[dict], rng: np.random.Generator, group_: str = group) -> Iterator[Record]:
        yield from taco((r for r in rows if str(r["difficulty"]) in levels), rng, group)

    return convert


def _dapo_answer(r: dict) -> str:
    return str(r["reward_model"]["ground_truth"])


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
            HFSource("BAAI/TACO", "train", _taco_filter(TACO_ID, "id"), "id"),
            HFSource("BAAI/TACO", "train", _taco_filter({"MEDIUM_HARD", "HARD", "VERY_HARD"}, "ood"), "ood"),
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
    unique = {r.item.id: r for r in records}
    meta = {"source": "hf", "description": f"{name} from " + ", ".join(s.path for s in sources)}
    return assemble(name, fmt, list(unique.values()), seed=seed, meta=meta, max_items=max_items)  # type: ignore[arg-type]
