"""Testbed data model and its public, label-free on-disk layout.

Public side (``AAR_HOME/testbeds/NAME/``): one JSONL file per published split (``strong_train``,
``test_id``, ``test_ood``) with the item text and ``weak``, the weak model's P(label 1) for the item
(its soft label on ``strong_train``, its prediction on the tests). ``weak_train`` is never published:
as in the published W2S setup, agents see the weak model's outputs, not its training labels. Of each
test split only the *public half* is published; the private half (the final score's items) is kept on
the label side, so no agent ever reads it. The label side (labels of every split, ``weak_train`` items,
the private halves, salt, card, baselines) is written and read only by the trusted package ``aar.labels``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from aar.config import Settings, get_settings

Format = Literal["pairwise", "binary"]
SPLITS: tuple[str, ...] = ("weak_train", "strong_train", "test_id", "test_ood")
TEST_SPLITS: tuple[str, ...] = ("test_id", "test_ood")
PUBLIC_SPLITS: tuple[str, ...] = ("strong_train", "test_id", "test_ood")
SCHEMA_VERSION = 3  # 3: the private half of each test split is no longer published


class TestbedError(ValueError):
    """A testbed is missing, malformed or inconsistent; the message says which and why."""

    __test__ = False


@dataclass(frozen=True)
class Item:
    """One task instance.

    ``pairwise``: ``prompt`` with two answers ``answer_a`` / ``answer_b``; label 1 means B is better.
    ``binary``: ``prompt`` is the question and ``answer_a`` the candidate (``answer_b`` is None);
    label 1 means the candidate is correct.
    """

    id: str
    prompt: str
    answer_a: str
    answer_b: str | None = None

    def to_public(self, fmt: Format) -> dict[str, str]:
        if fmt == "pairwise":
            assert self.answer_b is not None
            return {"id": self.id, "prompt": self.prompt, "answer_a": self.answer_a, "answer_b": self.answer_b}
        return {"id": self.id, "question": self.prompt, "candidate": self.answer_a}

    @staticmethod
    def from_public(row: dict, fmt: Format) -> Item:
        try:
            if fmt == "pairwise":
                return Item(str(row["id"]), str(row["prompt"]), str(row["answer_a"]), str(row["answer_b"]))
            return Item(str(row["id"]), str(row["question"]), str(row["candidate"]))
        except KeyError as exc:
            raise TestbedError(f"{fmt} item {row.get('id', '?')!r} lacks field {exc.args[0]!r}") from None


@dataclass
class Split:
    """Items of one split, with labels and difficulty levels when the caller may see them.

    ``weak`` is the weak model's P(label 1) per item, where it has been published.
    """

    items: list[Item]
    labels: np.ndarray | None = None
    difficulty: list[str] | None = None
    weak: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if len(self.labels) != len(self.items):
                raise TestbedError("labels and items differ in length")
        if self.weak is not None:
            self.weak = np.asarray(self.weak, dtype=np.float64)
            if len(self.weak) != len(self.items):
                raise TestbedError("weak predictions and items differ in length")
        if self.difficulty is not None and len(self.difficulty) != len(self.items):
            raise TestbedError("difficulty and items differ in length")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        return [it.id for it in self.items]

    def require_labels(self) -> np.ndarray:
        if self.labels is None:
            raise TestbedError("this split's labels are hidden here")
        return self.labels

    def require_weak(self) -> np.ndarray:
        if self.weak is None:
            raise TestbedError("the weak model's predictions for this split are not published")
        return self.weak

    def without_labels(self) -> Split:
        return Split(list(self.items), weak=self.weak)

    def select(self, keep: Iterable[int]) -> Split:
        """The items at positions ``keep``, in that order, with what is known about them."""
        idx = np.fromiter(keep, dtype=np.int64)
        return Split([self.items[k] for k in idx], None if self.labels is None else self.labels[idx],
                     None if self.difficulty is None else [self.difficulty[k] for k in idx],
                     None if self.weak is None else self.weak[idx])


@dataclass
class Testbed:
    """A W2S task: four splits in one format. Labels are present only on the trusted side."""

    __test__ = False

    name: str
    format: Format
    splits: dict[str, Split]
    meta: dict = field(default_factory=dict)
    checks: dict[str, dict[str, float]] = field(default_factory=dict)  # builder's shortcut checks; never published

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    def public_view(self) -> Testbed:
        """What agents see: the published splits without labels or difficulty, ``weak_train`` dropped."""
        splits = {name: self.splits[name].without_labels() for name in PUBLIC_SPLITS if name in self.splits}
        return Testbed(self.name, self.format, splits, dict(self.meta))

    def validate(self, splits: tuple[str, ...] = SPLITS) -> None:
        """Check ids are unique across splits and every split is non-empty."""
        seen: set[str] = set()
        for name in splits:
            if name not in self.splits or not len(self.splits[name]):
                raise TestbedError(f"testbed {self.name!r}: split {name!r} is empty or missing")
            for item in self.splits[name].items:
                if item.id in seen:
                    raise TestbedError(f"testbed {self.name!r}: duplicate item id {item.id!r}")
                seen.add(item.id)
                if (item.answer_b is None) != (self.format == "binary"):
                    raise TestbedError(f"item {item.id!r} does not match format {self.format!r}")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write rows atomically (a temporary file renamed into place)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file; a malformed line raises ``TestbedError`` naming the file and line."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TestbedError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def salted_seed(salt: str) -> int:
    """An integer seed drawn from a secret salt (every random choice of a prepared testbed uses one)."""
    return int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "big")


def check_name(name: str) -> str:
    """A testbed name is a plain folder name (no paths); anything else raises ``TestbedError``."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise TestbedError(f"invalid testbed name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def public_dir(name: str, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).testbeds_dir / check_name(name)


def write_split(path: Path, split: Split, fmt: Format) -> None:
    """Write a split's items in the published layout, each with ``weak`` (null where not published)."""
    weak = [None] * len(split) if split.weak is None else [round(float(p), 6) for p in split.weak]
    write_jsonl(path, ({**it.to_public(fmt), "weak": p} for it, p in zip(split.items, weak, strict=True)))


def read_split(path: Path, fmt: Format) -> Split:
    """Read a split written by :func:`write_split` (no labels)."""
    rows = read_jsonl(path)
    weak = [r.get("weak") for r in rows]
    return Split([Item.from_public(r, fmt) for r in rows],
                 weak=None if None in weak else np.array(weak, dtype=np.float64))


def write_public(tb: Testbed, settings: Settings | None = None) -> Path:
    """Write the published splits (items + weak predictions where known, no labels) and ``testbed.json``."""
    pub = public_dir(tb.name, settings)
    pub.mkdir(parents=True, exist_ok=True)
    for name in PUBLIC_SPLITS:
        write_split(pub / f"{name}.jsonl", tb.splits[name], tb.format)
    meta = {"schema_version": SCHEMA_VERSION, "name": tb.name, "format": tb.format, **tb.meta}
    (pub / "testbed.json").write_text(json.dumps(meta, indent=2))
    return pub


def load_testbed(name: str, settings: Settings | None = None) -> Testbed:
    """Load a prepared testbed's public view: published splits with the weak model's predictions."""
    pub = public_dir(name, settings)
    meta_path = pub / "testbed.json"
    if not meta_path.exists():
        raise TestbedError(f"testbed {name!r} is not prepared under {pub} (run `aar testbed prepare {name}`)")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise TestbedError(f"testbed {name!r} was prepared by an older aar; run `aar testbed prepare {name}` again")
    fmt: Format = meta["format"]
    splits: dict[str, Split] = {}
    for split in PUBLIC_SPLITS:
        splits[split] = read_split(pub / f"{split}.jsonl", fmt)
    extra = {k: v for k, v in meta.items() if k not in ("schema_version", "name", "format")}
    return Testbed(name, fmt, splits, extra)
