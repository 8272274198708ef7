"""Content-addressed cache for model features and other arrays.

Entries are keyed by a SHA-256 of their config and inputs, never by a folder name. A writer fills a
private temporary folder, writes the ``COMPLETE`` marker last and renames the folder into place, so
a concurrent reader sees either nothing or a complete entry; two writers racing on one key both
produce the same content and the loser's copy is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "COMPLETE"


def content_key(*parts: Any) -> str:
    """SHA-256 over a JSON encoding of ``parts`` (strings, numbers, lists, dicts)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def move_into_place(src: Path, dest: Path) -> None:
    """Rename the finished folder ``src`` (its ``COMPLETE`` marker written last) to ``dest``.

    A finished twin already at ``dest`` wins (the same content, written by a racing process); a broken
    leftover there (no marker) is replaced.
    """
    try:
        os.rename(src, dest)
    except OSError:
        if not (dest / MARKER).exists():
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(src, dest)


class ArrayCache:
    """Arrays stored under ``root/<namespace>/<key[:2]>/<key>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _entry(self, namespace: str, key: str) -> Path:
        return self.root / namespace / key[:2] / key

    def get(self, namespace: str, key: str) -> np.ndarray | None:
        entry = self._entry(namespace, key)
        if not (entry / MARKER).exists():
            return None
        return np.load(entry / "array.npy", allow_pickle=False)

    def put(self, namespace: str, key: str, array: np.ndarray, meta: dict | None = None) -> None:
        entry = self._entry(namespace, key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{key[:8]}-"))
        try:
            np.save(tmp / "array.npy", np.ascontiguousarray(array), allow_pickle=False)
            (tmp / "meta.json").write_text(json.dumps(meta or {}, default=str))
            (tmp / MARKER).write_text("")
            move_into_place(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def entries(self, namespace: str) -> Iterator[tuple[np.ndarray, dict]]:
        """Every complete entry of a namespace as (array, meta); unfinished entries are skipped."""
        base = self.root / namespace
        if not base.exists():
            return
        for marker in sorted(base.glob(f"*/*/{MARKER}")):
            entry = marker.parent
            yield np.load(entry / "array.npy", allow_pickle=False), json.loads((entry / "meta.json").read_text())

    def get_or_compute(
        self, namespace: str, key: str, compute: Callable[[], np.ndarray], meta: dict | None = None
    ) -> np.ndarray:
        """Return the cached array or compute, store and return it."""
        found = self.get(namespace, key)
        if found is not None:
            return found
        array = compute()
        self.put(namespace, key, array, meta)
        return array
