"""Snapshots: pack / upload / download round trip, dedup, lineage; malicious tarballs rejected both ends."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import httpx
import pytest

from aar.hub.client import HubError
from aar.hub.snapshots import SnapshotError, SnapshotLimits, check_tarball, extract_tarball, pack_workspace

LIMITS = dict(max_upload_bytes=2 * 2**20, max_unpacked_bytes=4 * 2**20, max_file_bytes=2**20, max_members=200)


def make_workspace(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "method.py").write_text("def fit():\n    return 42\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o755)
    (root / "notes.md").write_text("# notes\n")
    for d in (".venv/lib", "__pycache__", "data", "findings", ".git"):
        (root / d).mkdir(parents=True)
        (root / d / "junk.txt").write_text("junk")
    (root / "weights.safetensors").write_bytes(b"\0" * 10)
    (root / "link").symlink_to("/etc/passwd")
    return root


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def zeros_bomb(n_bytes: int, n_files: int = 1) -> bytes:
    """A gzipped tar of ``n_files`` members of ``n_bytes`` zeros each (compresses ~1000x)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w") as t:
        for i in range(n_files):
            info = tarfile.TarInfo(f"zeros{i}.bin")
            info.size = n_bytes
            t.addfile(info, io.BytesIO(bytes(n_bytes)))
    return buf.getvalue()


MALICIOUS = {
    "dotdot": tar_of(member("../evil.py")),
    "nested-dotdot": tar_of(member("a/../../evil.py")),
    "absolute": tar_of(member("/etc/cron.d/evil")),
    "symlink": tar_of(member("link", kind=tarfile.SYMTYPE, link="/etc/passwd")),
    "symlink-rel": tar_of(member("up", kind=tarfile.SYMTYPE, link="../../..")),
    "hardlink": tar_of(member("a.txt"), member("h", kind=tarfile.LNKTYPE, link="/etc/shadow")),
    "chardev": tar_of(member("null", kind=tarfile.CHRTYPE)),
    "blockdev": tar_of(member("sda", kind=tarfile.BLKTYPE)),
    "fifo": tar_of(member("pipe", kind=tarfile.FIFOTYPE)),
    "huge-file": tar_of(member("big.bin", os.urandom(1_100_000))),
    "tar-bomb": zeros_bomb(64 * 2**20),
    "tar-bomb-total": zeros_bomb(1_000_000, n_files=8),
    "many-members": tar_of(*[member(f"f{i}.txt") for i in range(250)]),
    "duplicate": tar_of(member("a.txt"), member("a.txt")),
    "empty-zeros": gzip.compress(bytes(8 * 2**20)),
    "not-gzip": b"PK\x03\x04 this is a zip",
    "truncated": tar_of(member("a.txt", b"y" * 5000))[:-30],
}


def test_pack_is_deterministic_and_excludes(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    p1, p2 = pack_workspace(ws), pack_workspace(ws)
    assert p1.data == p2.data and p1.n_files == 3
    names = check_tarball(io.BytesIO(p1.data)).names
    assert sorted(names) == ["notes.md", "run.sh", "src/method.py"]
    assert "link" in p1.skipped and ".venv/" in p1.skipped and "weights.safetensors" in p1.skipped


def test_upload_download_roundtrip_dedup_lineage(make_hub, tmp_path: Path) -> None:
    hub = make_hub(**LIMITS)
    a = hub.client("w1")
    packed = pack_workspace(make_workspace(tmp_path / "ws"))
    s1 = a.upload_snapshot(packed.data, note="first")
    assert s1.created and s1.id == hashlib.sha256(packed.data).hexdigest() and s1.n_files == 3
    again = a.upload_snapshot(packed.data, note="same bytes")
    assert not again.created and again.id == s1.id and again.note == "first"
    f = a.post_finding({"title": "code", "kind": "insight", "snapshot_id": s1.id})
    (tmp_path / "ws" / "notes.md").write_text("changed")
    s2 = a.upload_snapshot(pack_workspace(tmp_path / "ws").data, parent_id=s1.id, finding_id=f.id)
    assert s2.parent_id == s1.id and s2.finding_id == f.id
    with pytest.raises(HubError, match="parent snapshot"):
        a.upload_snapshot(tar_of(member("other.py")), parent_id="0" * 64)
    # another worker of the team restores it; another team cannot see it
    b = hub.client("w2")
    data = b.download_snapshot(s2.id)
    target = tmp_path / "other"
    target.mkdir()
    written = extract_tarball(data, Path("restored"), target)
    assert sorted(written) == ["notes.md", "run.sh", "src/method.py"]
    assert (target / "restored" / "notes.md").read_text() == "changed"
    assert os.access(target / "restored" / "run.sh", os.X_OK)
    with pytest.raises(HubError) as e:
        hub.client("x", "t2").download_snapshot(s2.id)
    assert e.value.status == 404
    assert [s.id for s in b.snapshots()] == [s2.id, s1.id]
    assert (hub.home / "snapshots" / s1.id[:2] / f"{s1.id}.tar.gz").exists()


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_upload_rejected(make_hub, name: str, tmp_path: Path) -> None:
    hub = make_hub(**LIMITS)
    with pytest.raises(HubError) as e:
        hub.client("w1").upload_snapshot(MALICIOUS[name])
    assert e.value.status == 400 and "snapshot rejected" in str(e.value), str(e.value)
    assert not list((hub.home / "snapshots").rglob("*.tar.gz"))


def test_upload_over_cap_is_413(make_hub) -> None:
    hub = make_hub(**LIMITS)
    token = hub.tokens.create("w1", "t1")
    r = httpx.post(hub.url + "/v1/snapshots", content=os.urandom(3 * 2**20),
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_extract_rejected(name: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    with pytest.raises(SnapshotError):
        extract_tarball(MALICIOUS[name], Path("."), ws, SnapshotLimits(**LIMITS))
    assert list(ws.iterdir()) == [] and not (tmp_path / "evil.py").exists()


def test_extract_never_leaves_workspace(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    data = tar_of(member("code/x.py", b"print(1)"))
    for target in ("..", "../outside", str(outside), "/tmp"):
        with pytest.raises(SnapshotError, match="outside the workspace"):
            extract_tarball(data, Path(target), ws)
    (ws / "code").symlink_to(outside)  # a planted symlink is replaced, never followed
    extract_tarball(data, Path("."), ws)
    assert not (ws / "code").is_symlink() and (ws / "code" / "x.py").read_bytes() == b"print(1)"
    (ws / "code" / "x.py").unlink()
    (ws / "code" / "x.py").symlink_to(outside / "target.py")
    extract_tarball(data, Path("."), ws)
    assert not (ws / "code" / "x.py").is_symlink()
    (ws / "deep").symlink_to(outside)  # a symlink on the way to the target is refused
    with pytest.raises(SnapshotError, match="outside|symlink"):
        extract_tarball(data, Path("deep/restore"), ws)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in ws.iterdir()) == ["code", "deep"]  # no restore leftovers


def test_restore_never_writes_through_a_hardlink(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "code").mkdir(parents=True)
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_bytes(b"keep me")
    os.link(precious, ws / "code" / "x.py")  # planted by the agent before asking for a restore
    extract_tarball(tar_of(member("code/x.py", b"print(1)")), Path("."), ws)
    assert precious.read_bytes() == b"keep me"  # the old code opened the link with O_TRUNC and wrote
    assert (ws / "code" / "x.py").read_bytes() == b"print(1)"


def test_restore_is_all_or_nothing(tmp_path: Path) -> None:
    """A snapshot that uploads but cannot be restored leaves nothing behind."""
    ws = tmp_path / "ws"
    (ws / "keep").mkdir(parents=True)
    (ws / "keep" / "old.txt").write_bytes(b"old")
    data = tar_of(member("keep/new.txt", b"new"), member("keep/new.txt/inner", b"x"))  # a file, then a dir
    with pytest.raises(SnapshotError):
        extract_tarball(data, Path("."), ws)
    assert sorted(p.name for p in ws.rglob("*")) == ["keep", "old.txt"]
    assert (ws / "keep" / "old.txt").read_bytes() == b"old"


def test_multi_member_gzip_is_refused(make_hub, tmp_path: Path) -> None:
    """A second gzip member hid a symlink and a ``../`` entry from the check (tar and Python unpack it)."""
    hub = make_hub(**LIMITS)
    good = tar_of(member("a.py", b"ok"))
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        for m, payload in (member("link", kind=tarfile.SYMTYPE, link="/etc/passwd"), member("../evil.py")):
            tar.addfile(m, io.BytesIO(payload) if payload is not None else None)
    stacked = good + gzip.compress(evil.getvalue())
    # control: gunzip reads every member, and tar -i (ignore_zeros) then sees the hidden entries
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(stacked)), ignore_zeros=True) as t:
        assert {"link", "../evil.py"} <= set(t.getnames())
    with pytest.raises(SnapshotError, match="gzip member"):
        check_tarball(io.BytesIO(stacked))
    with pytest.raises(HubError) as err:
        hub.client("w1").upload_snapshot(stacked)
    assert err.value.status == 400  # the hub's status for every refused snapshot


def test_pack_does_not_follow_a_file_swapped_for_a_symlink(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Swap a checked file for a symlink to a label file mid-pack: the old code read the label file."""
    import aar.hub.snapshots as snaps

    ws, secret = tmp_path / "ws", tmp_path / "labels.jsonl"
    ws.mkdir()
    secret.write_bytes(b'{"id": 1, "label": 1}\n')
    (ws / "a.py").write_bytes(b"x = 1\n")
    real_open = os.open

    def swapping_open(path, flags, *args, **kw):  # type: ignore[no-untyped-def]
        if path == "a.py" and not getattr(swapping_open, "done", False):
            swapping_open.done = True  # type: ignore[attr-defined]
            (ws / "a.py").unlink()
            (ws / "a.py").symlink_to(secret)  # the race, made deterministic
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(snaps.os, "open", swapping_open)
    packed = pack_workspace(ws)
    assert b"label" not in gzip.decompress(packed.data) and "a.py" in packed.skipped


def test_decompression_is_counted_not_trusted() -> None:
    from aar.hub.snapshots import _CappedGunzip

    stream = _CappedGunzip(io.BytesIO(gzip.compress(bytes(3 * 2**20))), cap=2**20)
    with pytest.raises(SnapshotError, match="more than 1048576 bytes"):
        while stream.read(65536):
            pass


def test_large_valid_snapshot_accepted(hub, tmp_path: Path) -> None:
    """The upload route's own cap (64 MiB default) applies, not the 2 MiB JSON cap of other routes."""
    ws = tmp_path / "big"
    ws.mkdir()
    (ws / "model.py").write_bytes(os.urandom(3 * 2**20))
    meta = hub.client("w1").upload_snapshot(pack_workspace(ws).data)
    assert meta.created and meta.size > 3 * 2**20


def test_reupload_keeps_and_checks_links(make_hub) -> None:
    """Identical content uploaded again with links: they are checked and recorded, not silently dropped."""
    hub = make_hub(**LIMITS)
    a = hub.client("w1")
    base = a.upload_snapshot(tar_of(member("base.py")))
    data = tar_of(member("x.py", b"v2"))
    first = a.upload_snapshot(data)  # no links yet
    f = a.post_finding({"title": "the code", "kind": "insight"})
    again = a.upload_snapshot(data, parent_id=base.id, finding_id=f.id)
    assert not again.created and again.parent_id == base.id and again.finding_id == f.id
    assert a.snapshot(first.id).parent_id == base.id
    for bad in ({"parent_id": "0" * 64}, {"finding_id": 999_999}):  # invalid links: refused, as on creation
        with pytest.raises(HubError, match="does not exist"):
            a.upload_snapshot(data, **bad)
    other = a.upload_snapshot(tar_of(member("other.py")))
    with pytest.raises(HubError, match="already records parent_id"):
        a.upload_snapshot(data, parent_id=other.id)


def test_another_workers_reupload_cannot_relink_a_record(make_hub) -> None:
    """Before: w2 downloaded w1's snapshot, uploaded the same bytes with its own finding and parent, and
    w1's record then pointed at w2's finding (a teammate's code claimed as the lineage of a result)."""
    hub = make_hub(**LIMITS)
    a, b = hub.client("w1"), hub.client("w2")
    data = tar_of(member("idea.py", b"w1's idea"))
    mine = a.upload_snapshot(data)
    theirs = b.post_finding({"title": "my result", "kind": "insight"})
    base = b.upload_snapshot(tar_of(member("b.py")))
    for links in ({"finding_id": theirs.id}, {"parent_id": base.id}):
        with pytest.raises(HubError, match="only its owner links it"):
            b.upload_snapshot(data, **links)
    plain = b.upload_snapshot(data)  # the same bytes without links: the existing record, unchanged
    assert plain.id == mine.id and not plain.created and plain.worker_id == "w1"
    assert a.snapshot(mine.id).finding_id is None and a.snapshot(mine.id).parent_id is None
