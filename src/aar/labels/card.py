"""The testbed card: counts, label balance, shortcut checks and (after baselines) measured criteria.

The card holds label statistics, so it lives on the label side (``labels/NAME/card.{json,md}``) and
is shown only to the admin. Shortcut checks are the accuracies of trivial rules that a model could
learn instead of the task: answer length, answer position / label prior, lexical overlap with the
prompt, a TF-IDF classifier that reads only the answers (trained on ``strong_train`` labels), and
any rule the builder checks against its source (e.g. "the more frequent WordNet sense is correct").
A rule's accuracy is reported as max(acc, 1 - acc): a rule that is reliably wrong is as exploitable
as one that is reliably right.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
from pydantic import BaseModel, Field

from aar.config import Settings, ensure_private_dir, get_settings
from aar.labels.store import labels_dir
from aar.w2s.testbeds.base import SPLITS, Split, Testbed, TestbedError

SHORTCUT_LIMIT = 0.56
_WORD = re.compile(r"[a-z0-9]+")


class Criterion(BaseModel):
    name: str
    value: float | None
    se: float | None = None
    target: str
    passed: bool


class TestbedCard(BaseModel):
    """Everything a user should know about a testbed before trusting numbers measured on it."""

    __test__ = False

    name: str
    format: str
    source: str
    description: str = ""
    construction: str = ""
    counts: dict[str, int]
    label_balance: dict[str, float] = Field(description="fraction of label 1 (B / True) per split")
    balance_by_difficulty: dict[str, dict[str, dict[str, float]]]
    shortcuts: dict[str, dict[str, float]] = Field(description="rule -> split -> accuracy")
    label_sources: list[str] = Field(
        default_factory=list, description="files the labels can be derived from; hidden from every sandbox"
    )
    criteria: list[Criterion] = Field(default_factory=list)
    baseline_note: str | None = None
    room: list[Criterion] = Field(
        default_factory=list, description="room above the baselines (aar.labels.room); empty until `aar baselines "
        "--reference`")
    halves: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="test split -> items in its public half (released scores) and its private "
        "half (the final score)")
    worlds: list[dict[str, int]] = Field(
        default_factory=list, description="the private worlds (aar.labels.worlds): items each trains on "
        "(strong_train) and is tested on, per test split")

    def to_markdown(self) -> str:
        lines = [
            f"# Testbed card: {self.name}",
            "",
            f"{self.description}",
            "",
            f"- format: {self.format}; source: {self.source}",
            "- label sources (hidden from research agents by the sandbox): "
            + (", ".join(f"`{p}`" for p in self.label_sources) or "none declared"),
            "",
        ]
        lines += ["## Splits", "", "| split | items | label 1 share |", "|---|---|---|"]
        lines += [f"| {s} | {n} | {self.label_balance.get(s, float('nan')):.3f} |" for s, n in self.counts.items()]
        if self.halves:
            lines += ["", "## Test halves", "", "| split | public (published; scores released) "
                      "| private (never published; the final score, by replay) |", "|---|---|---|"]
            lines += [f"| {s} | {h.get('public', 0)} | {h.get('private', 0)} |" for s, h in self.halves.items()]
        if self.worlds:
            lines += ["", "## Private worlds (final scores: no item in them was ever published)", "",
                      "Each trains on the private `test_id` items outside its fold and is tested on its fold.", "",
                      "| world | strong_train | test_id | test_ood |", "|---|---|---|---|"]
            lines += [f"| {k} | {w.get('strong_train', 0)} | {w.get('test_id', 0)} | {w.get('test_ood', 0)} |"
                      for k, w in enumerate(self.worlds, 1)]
        lines += [
            "",
            "## Label balance by difficulty",
            "",
            "| split | difficulty | items | label 1 share |",
            "|---|---|---|---|",
        ]
        for split, levels in self.balance_by_difficulty.items():
            lines += [f"| {split} | {lv} | {int(v['n'])} | {v['frac_pos']:.3f} |" for lv, v in levels.items()]
        lines += [
            "",
            f"## Shortcut checks (accuracy of trivial rules; limit {SHORTCUT_LIMIT})",
            "",
            "| rule | " + " | ".join(SPLITS) + " |",
            "|---" * (len(SPLITS) + 1) + "|",
        ]
        for rule, by_split in self.shortcuts.items():
            lines.append(f"| {rule} | " + " | ".join(f"{by_split.get(s, float('nan')):.3f}" for s in SPLITS) + " |")
        if self.criteria:
            lines += [
                "",
                "## Measured criteria",
                "",
                "| criterion | value | SE | target | met |",
                "|---|---|---|---|---|",
            ]
            lines += [_criterion_row(c) for c in self.criteria]
        if self.baseline_note:
            lines += ["", self.baseline_note]
        if self.criteria:
            lines += ["", "## Room above the baselines (a sealed label-free reference method)", ""]
            if self.room:
                failed = [c.name for c in self.room if not c.passed]
                lines += ["| criterion | value | SE | target | met |", "|---|---|---|---|---|"]
                lines += [_criterion_row(c) for c in self.room]
                lines += ["", "Room criteria all met." if not failed else "Room criteria NOT met: " + "; ".join(failed)
                          + "."]
            else:
                lines.append("Not measured: run `aar baselines --reference`.")
        if self.construction:
            lines += ["", "## Construction", "", self.construction.strip()]
        return "\n".join(lines) + "\n"


def _criterion_row(c: Criterion) -> str:
    value = "n/a" if c.value is None else f"{c.value:.0f}" if c.value >= 100 else f"{c.value:.3f}"
    se = "" if c.se is None else f"{c.se:.3f}"
    return f"| {c.name} | {value} | {se} | {c.target} | {'yes' if c.passed else '**NO**'} |"


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _overlap(prompt: str, answer: str) -> float:
    a = _words(answer)
    return len(a & _words(prompt)) / max(1, len(a))


def _rule_accuracy(pred_b: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a 0/1/0.5 rule, symmetrised to max(acc, 1 - acc); 0.5 means a tie (half credit)."""
    acc = float(np.where(pred_b == 0.5, 0.5, (pred_b == labels).astype(float)).mean())
    return max(acc, 1.0 - acc)


def shortcut_checks(fmt: str, split: Split) -> dict[str, float]:
    """Accuracy of the length, position/prior and lexical-overlap rules on one labelled split."""
    y = split.require_labels()
    items = split.items
    if fmt == "pairwise":

        def prefer_b(score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
            return np.where(score_b > score_a, 1.0, np.where(score_b < score_a, 0.0, 0.5))

        la = np.array([len(it.answer_a) for it in items])
        lb = np.array([len(it.answer_b or "") for it in items])
        oa = np.array([_overlap(it.prompt, it.answer_a) for it in items])
        ob = np.array([_overlap(it.prompt, it.answer_b or "") for it in items])
        return {
            "answer length": _rule_accuracy(prefer_b(la, lb), y),
            "position (always B)": _rule_accuracy(np.ones(len(y)), y),
            "lexical overlap": _rule_accuracy(prefer_b(oa, ob), y),
        }

    def above_median(score: np.ndarray) -> np.ndarray:
        return np.where(score > np.median(score), 1.0, np.where(score < np.median(score), 0.0, 0.5))

    length = np.array([len(it.answer_a) for it in items], dtype=float)
    overlap = np.array([_overlap(it.prompt, it.answer_a) for it in items])
    return {
        "answer length": _rule_accuracy(above_median(length), y),
        "label prior (always True)": _rule_accuracy(np.ones(len(y)), y),
        "lexical overlap": _rule_accuracy(above_median(overlap), y),
    }


def answer_only_rule(fmt: str, train: Split, split: Split) -> float:
    """Accuracy of a TF-IDF logistic regression that reads only the answers, trained on ``train`` labels."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(min_df=2, sublinear_tf=True).fit([it.answer_a for it in train.items])

    def features(s: Split):  # type: ignore[no-untyped-def]
        fa = vec.transform([it.answer_a for it in s.items])
        return fa if fmt == "binary" else vec.transform([it.answer_b or "" for it in s.items]) - fa

    model = LogisticRegression(C=1.0, max_iter=1000).fit(features(train), train.require_labels())
    acc = float((model.predict(features(split)) == split.require_labels()).mean())
    return max(acc, 1.0 - acc)


def build_card(tb: Testbed, label_sources: list[str] | None = None) -> TestbedCard:
    """Compute the card of a testbed that carries labels for every split."""
    counts, balance, by_level = {}, {}, {}
    shortcuts: dict[str, dict[str, float]] = defaultdict(dict)
    for name in SPLITS:
        split = tb[name]
        y = split.require_labels()
        counts[name] = len(split)
        balance[name] = float(y.mean())
        levels: dict[str, list[int]] = defaultdict(list)
        for lv, label in zip(split.difficulty or ["all"] * len(y), y, strict=True):
            levels[lv].append(int(label))
        by_level[name] = {lv: {"n": float(len(v)), "frac_pos": float(np.mean(v))} for lv, v in sorted(levels.items())}
        for rule, acc in shortcut_checks(tb.format, split).items():
            shortcuts[rule][name] = acc
        if name != "strong_train":
            shortcuts["answers only (TF-IDF, trained on strong_train)"][name] = answer_only_rule(
                tb.format, tb["strong_train"], split
            )
    for rule, by_split in tb.checks.items():
        shortcuts[rule].update(by_split)
    return TestbedCard(
        name=tb.name,
        format=tb.format,
        source=str(tb.meta.get("source", "builtin")),
        description=str(tb.meta.get("description", "")),
        construction=str(tb.meta.get("construction", "")),
        counts=counts,
        label_balance=balance,
        balance_by_difficulty=by_level,
        shortcuts=dict(shortcuts),
        label_sources=list(label_sources or []),
    )


def save_card(card: TestbedCard, settings: Settings | None = None) -> None:
    lab = ensure_private_dir(labels_dir(card.name, settings))
    (lab / "card.json").write_text(card.model_dump_json(indent=2))
    (lab / "card.md").write_text(card.to_markdown())


def load_card(name: str, settings: Settings | None = None) -> TestbedCard:
    path = labels_dir(name, settings or get_settings()) / "card.json"
    if not path.exists():
        raise TestbedError(f"testbed {name!r} has no card (run `aar testbed prepare {name}`)")
    return TestbedCard.model_validate_json(path.read_text())
