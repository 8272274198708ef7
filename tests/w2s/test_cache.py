"""The content-addressed array cache: keys from content, completion marker, concurrent writers and readers."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

from aar.w2s.models.cache import MARKER, ArrayCache, content_key


def test_keys_depend_on_content_only() -> None:
    assert content_key("a", {"x": 1, "y": 2}) == content_key("a", {"y": 2, "x": 1})
    assert content_key("a", [1, 2]) != content_key("a", [2, 1])


def test_unfinished_entries_are_invisible(tmp_path: Path) -> None:
    cache = ArrayCache(tmp_path)
    key = content_key("x")
    entry = tmp_path / "ns" / key[:2] / key
    entry.mkdir(parents=True)
    np.save(entry / "array.npy", np.ones(3))  # a writer died before the marker
    assert cache.get("ns", key) is None
    assert list(cache.entries("ns")) == []
    cache.put("ns", key, np.arange(3.0), {"texts": ["a"]})  # replaces the broken leftover
    assert (entry / MARKER).exists()
    assert cache.get("ns", key).tolist() == [0.0, 1.0, 2.0]


def _writer(root: str, n: int) -> None:
    cache = ArrayCache(Path(root))
    for i in range(n):
        cache.put("ns", content_key(i), np.full(1000, float(i)))


def _reader(root: str, n: int, out: mp.Queue) -> None:
    cache = ArrayCache(Path(root))
    bad = 0
    for _ in range(20):
        for i in range(n):
            got = cache.get("ns", content_key(i))
            if got is not None and not (got.shape == (1000,) and (got == i).all()):
                bad += 1
    out.put(bad)


def test_concurrent_writers_and_readers_never_see_partial_entries(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 30)) for _ in range(3)]
    procs += [ctx.Process(target=_reader, args=(str(tmp_path), 30, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert out.get() == 0 and out.get() == 0
    cache = ArrayCache(tmp_path)
    assert all((cache.get("ns", content_key(i)) == i).all() for i in range(30))
    assert not [p for p in (tmp_path / "ns").rglob(".*") if p.is_dir()]  # no temp folders left behind
