"""Host-side workspace file access: no symlink is ever followed out of the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from aar.sandbox import SandboxError
from aar.sandbox.files import disk_usage, read_beneath, write_beneath


def test_read_write_roundtrip(tmp_path: Path) -> None:
    write_beneath(tmp_path, "a/b/c.txt", b"hello", None)
    assert read_beneath(tmp_path, "a/b/c.txt") == b"hello"
    assert disk_usage(tmp_path) > 0


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x", "a/../../x", ""])
def test_rejects_paths_outside(tmp_path: Path, rel: str) -> None:
    with pytest.raises(SandboxError):
        read_beneath(tmp_path, rel)


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("LABEL")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "link").symlink_to(secret)
    (ws / "dirlink").symlink_to(tmp_path)
    with pytest.raises(SandboxError):
        read_beneath(ws, "link")
    with pytest.raises(SandboxError):
        read_beneath(ws, "dirlink/secret")
    with pytest.raises(SandboxError):
        write_beneath(ws, "link", b"overwrite", None)
    with pytest.raises(SandboxError):
        write_beneath(ws, "dirlink/new", b"x", None)
    assert secret.read_text() == "LABEL" and not (tmp_path / "new").exists()


def test_write_refuses_fifos_and_hard_links(tmp_path: Path) -> None:
    import os

    outside = tmp_path / "outside"
    outside.write_text("HOST FILE")
    ws = tmp_path / "ws"
    ws.mkdir()
    os.link(outside, ws / "hl")
    os.mkfifo(ws / "fifo")
    for name in ("hl", "fifo"):
        with pytest.raises(SandboxError):
            write_beneath(ws, name, b"x", None)
    assert outside.read_text() == "HOST FILE"
    with pytest.raises(SandboxError):
        read_beneath(ws, "fifo")


def test_linked_out_finds_only_links_leaving_the_workspace(tmp_path: Path) -> None:
    import os

    from aar.sandbox.files import chown_tree, linked_out

    outside = tmp_path / "label.jsonl"
    outside.write_text("LABEL")
    ws = tmp_path / "ws"
    ws.mkdir()
    os.link(outside, ws / "planted")
    (ws / "a").write_text("x")
    os.link(ws / "a", ws / "b")  # both links inside: fine
    assert linked_out(ws) == [ws / "planted"]
    if os.geteuid() == 0:
        chown_tree(ws, 65534, 65534)
        assert outside.stat().st_uid == 0 and (ws / "a").stat().st_uid == 65534
