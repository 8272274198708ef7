"""Testbed data model and its on-disk layout (public splits vs. admin-only labels).

Public side (``AAR_HOME/testbeds/NAME/``): one JSONL file per split with the item text only;
``weak_train`` also carries its labels (they train the weak model and are public by design).
Label side (``AAR_HOME/labels/NAME/``, mode 0700): ``{id, label, difficulty}`` per item for every
split, the testbed card and the stored baselines. Only the trusted admin path and the eval server
read the label side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from aar.config import Settings, ensure_private_dir, get_settings

Format = Literal["pairwise", "binary"]
SPLITS: tuple[str, ...] = ("weak_train", "strong_train", "test_id", "test_ood")
TEST_SPLITS: tuple[str, ...] = ("test_id", "test_ood")
HIDDEN_SPLITS: tuple[str, ...] = ("strong_train", "test_id", "test_ood")
SCHEMA_VERSION = 1


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
    """Items of one split, with labels and difficulty levels when the caller may see them."""

    items: list[Item]
    labels: np.ndarray | None = None
    difficulty: list[str] | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if len(self.labels) != len(self.items):
                raise TestbedError("labels and items differ in length")
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

    def without_labels(self) -> Split:
        return Split(list(self.items))


@dataclass
class Testbed:
    """A W2S task: four splits in one format. Labels are present only on the trusted side."""

    __test__ = False

    name: str
    format: Format
    splits: dict[str, Split]
    meta: dict = field(default_factory=dict)

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    def public_view(self) -> Testbed:
        """The same testbed with every hidden split's labels and all difficulty levels removed."""
        splits = {}
        for name, split in self.splits.items():
            labels = split.labels if name == "weak_train" else None
            splits[name] = Split(list(split.items), labels)
        return Testbed(self.name, self.format, splits, dict(self.meta))

    def validate(self) -> None:
        """Check ids are unique across splits and every split is non-empty."""
        seen: set[str] = set()
        for name in SPLITS:
            if name not in self.splits or not len(self.splits[name]):
                raise TestbedError(f"testbed {self.name!r}: split {name!r} is empty or missing")
            for item in self.splits[name].items:
                if item.id in seen:
                    raise TestbedError(f"testbed {self.name!r}: duplicate item id {item.id!r}")
                seen.add(item.id)
                if (item.answer_b is None) != (self.format == "binary"):
                    raise TestbedError(f"item {item.id!r} does not match format {self.format!r}")


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
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


def check_name(name: str) -> str:
    """A testbed name is a plain folder name (no paths); anything else raises ``TestbedError``."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise TestbedError(f"invalid testbed name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def public_dir(name: str, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).testbeds_dir / check_name(name)


def labels_dir(name: str, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).labels_dir / check_name(name)


def write_testbed(tb: Testbed, settings: Settings | None = None) -> tuple[Path, Path]:
    """Write public splits and the label side. Returns (public dir, labels dir)."""
    settings = settings or get_settings()
    tb.validate()
    pub = public_dir(tb.name, settings)
    pub.mkdir(parents=True, exist_ok=True)
    ensure_private_dir(settings.labels_dir)
    lab = ensure_private_dir(labels_dir(tb.name, settings))
    for name in SPLITS:
        split = tb.splits[name]
        labels = split.require_labels()
        difficulty = split.difficulty or ["all"] * len(split)
        rows = []
        for item, y in zip(split.items, labels, strict=True):
            row: dict[str, object] = dict(item.to_public(tb.format))
            if name == "weak_train":
                row["label"] = int(y)
            rows.append(row)
        _write_jsonl(pub / f"{name}.jsonl", rows)
        _write_jsonl(
            lab / f"{name}.jsonl",
            (
                {"id": it.id, "label": int(y), "difficulty": d}
                for it, y, d in zip(split.items, labels, difficulty, strict=True)
            ),
        )
    meta = {"schema_version": SCHEMA_VERSION, "name": tb.name, "format": tb.format, **tb.meta}
    (pub / "testbed.json").write_text(json.dumps(meta, indent=2))
    return pub, lab


def load_testbed(name: str, *, with_labels: bool = False, settings: Settings | None = None) -> Testbed:
    """Load a prepared testbed. ``with_labels`` (trusted side only) joins the label store."""
    settings = settings or get_settings()
    pub = public_dir(name, settings)
    meta_path = pub / "testbed.json"
    if not meta_path.exists():
        raise TestbedError(f"testbed {name!r} is not prepared under {pub} (run `aar testbed prepare {name}`)")
    meta = json.loads(meta_path.read_text())
    fmt: Format = meta["format"]
    splits: dict[str, Split] = {}
    for split in SPLITS:
        rows = read_jsonl(pub / f"{split}.jsonl")
        items = [Item.from_public(r, fmt) for r in rows]
        labels = np.array([r["label"] for r in rows]) if split == "weak_train" else None
        difficulty = None
        if with_labels:
            labels, difficulty = _join_labels(items, read_label_rows(name, split, settings), name, split)
        splits[split] = Split(items, labels, difficulty)
    extra = {k: v for k, v in meta.items() if k not in ("schema_version", "name", "format")}
    return Testbed(name, fmt, splits, extra)


def read_label_rows(name: str, split: str, settings: Settings | None = None) -> list[dict]:
    """The label side of one split: ``[{id, label, difficulty}]`` (trusted callers only)."""
    path = labels_dir(name, settings) / f"{split}.jsonl"
    if not path.exists():
        raise TestbedError(f"no labels for testbed {name!r} split {split!r} at {path}")
    return read_jsonl(path)


def _join_labels(items: Sequence[Item], rows: list[dict], name: str, split: str) -> tuple[np.ndarray, list[str]]:
    by_id = {r["id"]: r for r in rows}
    missing = [it.id for it in items if it.id not in by_id]
    if missing or len(by_id) != len(items):
        raise TestbedError(f"testbed {name!r} split {split!r}: label store does not match the public items")
    labels = np.array([int(by_id[it.id]["label"]) for it in items])
    return labels, [str(by_id[it.id].get("difficulty", "all")) for it in items]
