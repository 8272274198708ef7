"""Your own data as a testbed: one JSONL file in the standard schema.

Pairwise rows: ``{"prompt", "answer_a", "answer_b", "label": "A" | "B"}``; binary rows:
``{"question", "candidate", "label": true | false}``. Optional on every row: ``id`` (else derived
from the content), ``difficulty`` (labels are balanced within each level), and either ``split``
(one of weak_train, strong_train, test_id, test_ood — then every row needs it) or ``group``
(``id`` | ``ood``; default ``id``) to let aar assign the splits. A malformed row stops preparation
with an error naming the line; nothing is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from aar.w2s.testbeds.assemble import Record, assemble, stable_id
from aar.w2s.testbeds.base import SPLITS, Format, Item, Split, Testbed, TestbedError, read_jsonl

_LABELS = {"A": 0, "B": 1, "a": 0, "b": 1, True: 1, False: 0, "true": 1, "false": 0, "True": 1, "False": 0}


def _label(row: dict, fmt: Format, where: str) -> int:
    raw = row.get("label")
    if fmt == "pairwise" and raw in (0, 1) and not isinstance(raw, bool):
        return int(raw)
    if raw not in _LABELS or (fmt == "pairwise") != (str(raw).upper() in ("A", "B")):
        want = '"A" or "B"' if fmt == "pairwise" else "true or false"
        raise TestbedError(f"{where}: label must be {want}, got {raw!r}")
    return _LABELS[raw]


def parse_row(row: dict, fmt: Format, where: str) -> tuple[Record, str | None]:
    """Validate one row; returns the record and its explicit split (or None)."""
    if not isinstance(row, dict):
        raise TestbedError(f"{where}: each line must be a JSON object")
    fields = ("prompt", "answer_a", "answer_b") if fmt == "pairwise" else ("question", "candidate")
    for f in fields:
        if not isinstance(row.get(f), str) or not row[f].strip():
            raise TestbedError(f"{where}: field {f!r} must be a non-empty string")
    texts = [row[f] for f in fields]
    item_id = str(row.get("id") or stable_id("u", *texts))
    item = Item(item_id, texts[0], texts[1], texts[2] if fmt == "pairwise" else None)
    split = row.get("split")
    if split is not None and split not in SPLITS:
        raise TestbedError(f"{where}: split must be one of {', '.join(SPLITS)}")
    group = row.get("group", "id")
    if group not in ("id", "ood"):
        raise TestbedError(f"{where}: group must be 'id' or 'ood'")
    return Record(item, _label(row, fmt, where), str(row.get("difficulty", "all")), group), split


def detect_format(row: dict) -> Format:
    if "answer_a" in row or "answer_b" in row:
        return "pairwise"
    if "candidate" in row:
        return "binary"
    raise TestbedError("cannot tell the format: rows need answer_a/answer_b (pairwise) or candidate (binary)")


def jsonl_name(path: Path) -> str:
    """The testbed name for a JSONL file: its stem with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip(".-") or "jsonl"


def load_jsonl_testbed(path: Path, name: str | None = None, seed: int = 0, max_items: int | None = None) -> Testbed:
    """Build a testbed from a user's JSONL file."""
    path = Path(path)
    if not path.exists():
        raise TestbedError(f"no such file: {path}")
    rows = read_jsonl(path)
    if not rows:
        raise TestbedError(f"{path} has no rows")
    fmt = detect_format(rows[0])
    parsed = [parse_row(r, fmt, f"{path}:{i}") for i, r in enumerate(rows, 1)]
    name = name or jsonl_name(path)
    meta = {"source": "jsonl", "description": f"user data from {path.name}", "path": str(path.resolve())}
    explicit = [s for _, s in parsed]
    if any(s is not None for s in explicit):
        if any(s is None for s in explicit):
            raise TestbedError(f"{path}: either every row has 'split' or none does")
        splits = {}
        for split in SPLITS:
            recs = [r for r, s in parsed if s == split]
            splits[split] = Split(
                [r.item for r in recs], np.array([r.label for r in recs], dtype=np.int64), [r.difficulty for r in recs]
            )
        tb = Testbed(name, fmt, splits, meta)
        tb.validate()
        return tb
    return assemble(name, fmt, [r for r, _ in parsed], seed=seed, meta=meta, max_items=max_items)
