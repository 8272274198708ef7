"""The label store of one testbed (``AAR_HOME/labels/NAME/``, mode 0700): labels, unpublished items, salt.

Per split ``{split}.jsonl`` holds ``{id, label, difficulty}``; ``weak_train_items.jsonl`` holds the
items of the unpublished ``weak_train`` split; ``private_{test split}.jsonl`` the unpublished private
half of each test split (items and weak outputs, in the published layout); ``salt`` (mode 0600) is
the secret every random choice of the testbed's construction draws from, so the public build code
cannot reproduce it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aar.config import Settings, ensure_private_dir, get_settings
from aar.w2s.testbeds.base import (
    SPLITS,
    TEST_SPLITS,
    Item,
    Split,
    Testbed,
    TestbedError,
    check_name,
    load_testbed,
    public_dir,
    read_jsonl,
    read_split,
    write_jsonl,
    write_public,
    write_split,
)

SALT_FILE = "salt"
WEAK_TRAIN_ITEMS = "weak_train_items.jsonl"


def labels_dir(name: str, settings: Settings | None = None) -> Path:
    """The label-side folder of testbed ``name``."""
    return (settings or get_settings()).labels_dir / check_name(name)


def testbed_salt(name: str, settings: Settings | None = None, *, new: bool = False, value: str | None = None) -> str:
    """The testbed's secret salt: ``value`` if given, else the stored one, else (or if ``new``) a fresh one.

    A salt that is set or drawn is stored with mode 0600 on the label side.
    """
    settings = settings or get_settings()
    ensure_private_dir(settings.labels_dir)
    path = ensure_private_dir(labels_dir(name, settings)) / SALT_FILE
    if value is None and path.exists() and not new:
        return path.read_text().strip()
    salt = value or secrets.token_hex(16)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(salt)
    os.replace(path.with_suffix(".tmp"), path)
    return salt


def private_items_path(name: str, split: str, settings: Settings | None = None) -> Path:
    """The label-side file of test split ``split``'s private half (items and weak outputs, as published)."""
    return labels_dir(name, settings) / f"private_{split}.jsonl"


def write_testbed(tb: Testbed, settings: Settings | None = None) -> tuple[Path, Path]:
    """Write labelled testbed ``tb``: the label side first (labels of every split, ``weak_train`` items, the
    private half of each test split), then the published rest (``strong_train`` and the public halves).

    The division is the stored one when it still matches the test items, else made now. Returns (public
    dir, labels dir)."""
    from aar.labels.division import divide_test_items

    settings = settings or get_settings()
    tb.validate()
    ensure_private_dir(settings.labels_dir)
    lab = ensure_private_dir(labels_dir(tb.name, settings))
    for name in SPLITS:
        split = tb.splits[name]
        labels = split.require_labels()
        difficulty = split.difficulty or ["all"] * len(split)
        write_jsonl(
            lab / f"{name}.jsonl",
            (
                {"id": it.id, "label": int(y), "difficulty": d}
                for it, y, d in zip(split.items, labels, difficulty, strict=True)
            ),
        )
    write_jsonl(lab / WEAK_TRAIN_ITEMS, (it.to_public(tb.format) for it in tb["weak_train"].items))
    public_ids = divide_test_items(tb, settings)
    published = dict(tb.splits)
    for name in TEST_SPLITS:
        split = tb[name]
        in_public = [it.id in public_ids for it in split.items]
        write_split(private_items_path(tb.name, name, settings),
                    split.select(k for k, p in enumerate(in_public) if not p), tb.format)
        published[name] = split.select(k for k, p in enumerate(in_public) if p)
    # feature stores of an earlier build (by an older aar: with rows of the then-published private half) go
    shutil.rmtree(public_dir(tb.name, settings) / "features", ignore_errors=True)
    pub = write_public(Testbed(tb.name, tb.format, published, dict(tb.meta)), settings)
    return pub, lab


def load_full(name: str, settings: Settings | None = None) -> Testbed:
    """The published testbed with each test split's private half put back, in the build's item order
    (trusted side only: baselines, replay and transfer views). No labels."""
    settings = settings or get_settings()
    tb = load_testbed(name, settings)
    for split in TEST_SPLITS:
        path = private_items_path(name, split, settings)
        if not path.exists():
            raise TestbedError(f"testbed {name!r} has no private half on the label side "
                               f"(prepared by an older aar?): run `aar testbed prepare {name}` again")
        public, private = tb[split], read_split(path, tb.format)
        items = public.items + private.items
        weak = None if public.weak is None or private.weak is None else np.concatenate([public.weak, private.weak])
        order = {r["id"]: k for k, r in enumerate(read_label_rows(name, split, settings))}
        if len(order) != len(items) or any(it.id not in order for it in items):
            raise TestbedError(f"testbed {name!r} split {split!r}: label store does not match the items")
        tb.splits[split] = Split(items, weak=weak).select(sorted(range(len(items)), key=lambda k: order[items[k].id]))
    return tb


def read_label_rows(name: str, split: str, settings: Settings | None = None) -> list[dict]:
    """The label side of one split: ``[{id, label, difficulty}]``."""
    path = labels_dir(name, settings) / f"{split}.jsonl"
    if not path.exists():
        raise TestbedError(f"no labels for testbed {name!r} split {split!r} at {path}")
    return read_jsonl(path)


def load_labelled(name: str, settings: Settings | None = None) -> Testbed:
    """The whole testbed with labels and difficulty on every split, ``weak_train`` included."""
    settings = settings or get_settings()
    tb = load_full(name, settings)
    rows = read_jsonl(labels_dir(name, settings) / WEAK_TRAIN_ITEMS)
    tb.splits = {"weak_train": Split([Item.from_public(r, tb.format) for r in rows]), **tb.splits}
    for split_name, split in tb.splits.items():
        split.labels, split.difficulty = _join_labels(
            split.items, read_label_rows(name, split_name, settings), name, split_name
        )
    return tb


def _join_labels(items: Sequence[Item], rows: list[dict], name: str, split: str) -> tuple[np.ndarray, list[str]]:
    by_id = {r["id"]: r for r in rows}
    missing = [it.id for it in items if it.id not in by_id]
    if missing or len(by_id) != len(items):
        raise TestbedError(f"testbed {name!r} split {split!r}: label store does not match the public items")
    labels = np.array([int(by_id[it.id]["label"]) for it in items], dtype=np.int64)
    return labels, [str(by_id[it.id].get("difficulty", "all")) for it in items]
