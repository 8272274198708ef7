"""Per-worker hub quotas: one worker cannot flood the team's findings, comments or snapshot store; racing
uploads cannot pass the byte quota, and a refused upload stores no blob."""

from __future__ import annotations

import concurrent.futures as cf
import io
import tarfile
from pathlib import Path

import pytest

from aar.hub.client import HubError


def tarball(i: int, size: int = 4000) -> bytes:
    import gzip
    import os

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(size)  # incompressible: the compressed size is about ``size``
        info = tarfile.TarInfo(f"f{i}.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def test_findings_and_comments_are_capped_per_worker(make_hub) -> None:
    hub = make_hub(max_findings_per_worker=3, max_comments_per_worker=2)
    a, b = hub.client("w1"), hub.client("w2")
    ids = [a.post_finding({"title": f"idea {i}", "kind": "insight"}).id for i in range(3)]
    with pytest.raises(HubError, match="quota") as err:
        a.post_finding({"title": "one more", "kind": "insight"})
    assert "429" in str(err.value) or "quota" in str(err.value)
    assert b.post_finding({"title": "w2 is not blocked", "kind": "insight"}).id  # per worker, not per team
    a.comment(ids[0], "first")
    a.comment(ids[1], "second")
    with pytest.raises(HubError, match="quota"):
        a.comment(ids[2], "third")
    assert len(a.findings().findings) == 4


def test_snapshot_bytes_are_capped_even_when_uploads_race(make_hub) -> None:
    hub = make_hub(max_snapshot_bytes_per_worker=20_000)
    a = hub.client("w1")
    blobs = Path(hub.home) / "snapshots"
    with cf.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: _try_upload(a, tarball(i)), range(16)))
    stored = sum(s for s in outcomes if s)
    assert 0 < stored <= 20_000 and outcomes.count(0) >= 10  # about four fit; the rest are refused
    kept = [p for p in blobs.rglob("*") if p.is_file()]
    assert len(kept) == sum(1 for s in outcomes if s)  # refused uploads left no blob behind (no race lost here)
    assert hub.client("w2").upload_snapshot(tarball(99)).created  # another worker's quota is its own


def _try_upload(client, data: bytes) -> int:  # type: ignore[no-untyped-def]
    try:
        return client.upload_snapshot(data).size
    except HubError as exc:
        assert "quota" in str(exc)
        return 0
