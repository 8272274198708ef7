"""Code snapshots: pack a workspace, check an uploaded tarball, store it by sha256, restore it safely.

A snapshot is a gzipped tar of regular files and directories only. Protects against: ``..`` and
absolute member names, symlinks, hard links, device files and FIFOs, oversized files, too many
members, and gzip / tar bombs (decompression is counted and stopped at a cap, never trusted from
headers). Restoring never writes outside its target, never follows a symlink found in the target
tree, and drops set-uid bits. Does not protect against the *content* of the code (it is code the
agents wrote; it runs only inside sandboxes). Packing opens every file once, relative to a directory
descriptor with ``O_NOFOLLOW``; a restore is all or nothing (fresh directory, then swapped in); an
upload must be a single gzip member, all of whose bytes are checked.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import hashlib
import io
import os
import secrets
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from aar.sandbox.files import UnsafePathError, relative_parts, walk_dirs

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "env", "node_modules", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".cache", "cache", "data", "datasets",
    "checkpoints", "wandb", "findings", "snapshots", "*.pyc", "*.pt", "*.pth", "*.bin", "*.ckpt",
    "*.safetensors", "*.npy", "*.npz", "*.parquet", "*.arrow", "*.h5", "*.onnx", "*.tmp",
)


class SnapshotError(ValueError):
    """A snapshot was refused; the message names the entry and the rule it broke."""


@dataclass(frozen=True)
class SnapshotLimits:
    """Caps on one snapshot (compressed upload, total unpacked bytes, one file, member count)."""

    max_upload_bytes: int = 64 * 2**20
    max_unpacked_bytes: int = 256 * 2**20
    max_file_bytes: int = 32 * 2**20
    max_members: int = 20_000


@dataclass
class TarballInfo:
    """What a checked tarball holds."""

    sha256: str
    size: int
    unpacked_size: int
    n_files: int
    names: list[str] = field(default_factory=list)


@dataclass
class PackResult:
    data: bytes
    n_files: int
    unpacked_size: int
    skipped: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the files packed, sorted


def _excluded(rel: str, name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW


def _read_fd(fd: int, size: int) -> bytes:
    chunks, left = [], size + 1  # one byte more: a file that grew is noticed
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def pack_workspace(root: Path | int, excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
                   limits: SnapshotLimits = SnapshotLimits()) -> PackResult:
    """Tar and gzip the regular files under ``root`` deterministically (same content, same sha256).

    ``root`` is a folder the caller trusts, or a directory descriptor (not closed here): host code
    packing an agent's folder opens it with :func:`aar.sandbox.files.open_dir_beneath` and passes the
    descriptor, so no path is resolved by name after the walk.

    Symlinks, special files, excluded names and files over the per-file cap are skipped and listed.
    Every directory and file is opened once, relative to its parent's descriptor, with ``O_NOFOLLOW``,
    and what was opened is checked with ``fstat`` and read through that descriptor: a file swapped for
    a symlink while packing is skipped, never followed. Raises ``SnapshotError`` over the caps.
    """
    try:
        root_fd = os.dup(root) if isinstance(root, int) else os.open(root, DIR_FLAGS)
    except OSError:
        raise SnapshotError(f"{root} is not a directory") from None
    files: dict[str, tuple[bytes, int]] = {}
    skipped: list[str] = []
    total = 0

    def walk(dfd: int, rel_dir: str) -> None:
        nonlocal total
        with os.scandir(dfd) as it:
            entries = sorted(e.name for e in it)
        for name in entries:
            rel = name if not rel_dir else f"{rel_dir}/{name}"
            if _excluded(rel, name, excludes):
                skipped.append(rel + ("/" if _is_dir_entry(dfd, name) else ""))
                continue
            try:
                fd = os.open(name, os.O_RDONLY | NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0),
                             dir_fd=dfd)
            except OSError:  # a symlink (ELOOP), vanished, or unreadable
                skipped.append(rel)
                continue
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    walk(fd, rel)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    skipped.append(rel)
                    continue
                if st.st_size > limits.max_file_bytes:
                    skipped.append(f"{rel} (over {limits.max_file_bytes} bytes)")
                    continue
                data = _read_fd(fd, st.st_size)
                if len(data) > limits.max_file_bytes:
                    skipped.append(f"{rel} (over {limits.max_file_bytes} bytes)")
                    continue
                total += len(data)
                if total > limits.max_unpacked_bytes or len(files) >= limits.max_members:
                    raise SnapshotError(f"workspace is over the snapshot caps ({limits.max_unpacked_bytes} "
                                        f"bytes, {limits.max_members} files); exclude data or outputs")
                files[rel] = (data, 0o755 if st.st_mode & 0o100 else 0o644)
            finally:
                os.close(fd)

    try:
        walk(root_fd, "")
    finally:
        os.close(root_fd)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(files):
            data, mode = files[rel]
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode = len(data), 0, mode
            tar.addfile(info, io.BytesIO(data))
    out = buf.getvalue()
    if len(out) > limits.max_upload_bytes:
        raise SnapshotError(f"snapshot is {len(out)} bytes compressed; the cap is {limits.max_upload_bytes}")
    return PackResult(out, len(files), total, skipped, sorted(files))


def _is_dir_entry(dfd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class _CappedGunzip(io.RawIOBase):
    """A readable stream of the gunzipped bytes of ``src`` that fails once it passes ``cap`` bytes."""

    def __init__(self, src: IO[bytes], cap: int) -> None:
        self.src, self.cap, self.total = src, cap, 0
        self._z = zlib.decompressobj(wbits=31)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            if self._z.eof:
                if self._z.unused_data or self.src.read(1):
                    raise SnapshotError("snapshot has data after its gzip stream (a second gzip member?); "
                                        "send one gzip member")
                return 0
            chunk = self._z.unconsumed_tail or self.src.read(65536)
            if not chunk:
                raise SnapshotError("snapshot is not a complete gzip stream")
            try:
                self._buf = self._z.decompress(chunk, 1 << 20)
            except zlib.error as exc:
                raise SnapshotError(f"snapshot is not valid gzip: {exc}") from None
            self.total += len(self._buf)
            if self.total > self.cap:
                raise SnapshotError(f"snapshot unpacks to more than {self.cap} bytes (tar bomb?)")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def check_member_name(name: str) -> str:
    """The normalised relative path of a tar member, or ``SnapshotError`` if it could escape."""
    if not name or "\x00" in name or "\\" in name or len(name) > 1024:
        raise SnapshotError(f"bad entry name {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise SnapshotError(f"absolute path in snapshot: {name!r}")
    parts = [p for p in PurePosixPath(name).parts if p not in (".", "")]
    if any(p == ".." for p in parts):
        raise SnapshotError(f"path traversal in snapshot: {name!r}")
    if not parts:
        raise SnapshotError(f"bad entry name {name!r}")
    return "/".join(parts)


Member = tuple[tarfile.TarInfo, str, IO[bytes] | None]


def iter_members(fileobj: IO[bytes], limits: SnapshotLimits) -> Iterator[Member]:
    """Stream the checked members of a gzipped tar: ``(info, safe_name, data or None for dirs)``."""
    raw = _CappedGunzip(fileobj, limits.max_unpacked_bytes)
    stream = io.BufferedReader(raw, 1 << 16)
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for i, m in enumerate(tar):
                if i >= limits.max_members:
                    raise SnapshotError(f"snapshot has more than {limits.max_members} entries")
                name = check_member_name(m.name)
                if m.issym() or m.islnk():
                    raise SnapshotError(f"link in snapshot: {m.name!r} -> {m.linkname!r}")
                if m.issparse() or not (m.isreg() or m.isdir()):
                    raise SnapshotError(f"special file (device, fifo, ...) in snapshot: {m.name!r}")
                if name in seen:
                    raise SnapshotError(f"duplicate entry in snapshot: {m.name!r}")
                seen.add(name)
                if m.size > limits.max_file_bytes:
                    raise SnapshotError(f"file {m.name!r} is {m.size} bytes; "
                                        f"the cap is {limits.max_file_bytes}")
                total += m.size
                if total > limits.max_unpacked_bytes:
                    raise SnapshotError(f"snapshot unpacks to more than {limits.max_unpacked_bytes} bytes")
                yield m, name, (tar.extractfile(m) if m.isreg() else None)
        while stream.read(1 << 16):  # to the end of the gzip stream: every stored byte is checked
            pass
    except tarfile.TarError as exc:
        raise SnapshotError(f"snapshot is not a valid tar archive: {exc}") from None
    except EOFError:
        raise SnapshotError("snapshot is truncated") from None


def check_tarball(fileobj: IO[bytes], limits: SnapshotLimits = SnapshotLimits()) -> TarballInfo:
    """Read a whole uploaded tarball once: check every member, hash the compressed bytes."""
    h = hashlib.sha256()
    size = 0

    class _Hashing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            nonlocal size
            data = fileobj.read(len(b))
            h.update(data)
            size += len(data)
            b[: len(data)] = data
            return len(data)

    hashing = io.BufferedReader(_Hashing(), 1 << 16)
    info = TarballInfo(sha256="", size=0, unpacked_size=0, n_files=0)
    for m, name, data in iter_members(hashing, limits):
        if data is not None:
            info.n_files += 1
            info.unpacked_size += m.size
            info.names.append(name)
    if info.n_files == 0:
        raise SnapshotError("snapshot holds no files")
    while hashing.read(65536):  # trailing bytes count toward the hash too
        pass
    info.sha256, info.size = h.hexdigest(), size
    return info


def _write_tree(data: bytes, into_fd: int, limits: SnapshotLimits) -> list[str]:
    """Write every member into a fresh directory (files created with ``O_EXCL``: nothing pre-exists)."""
    written: list[str] = []
    for m, name, src in iter_members(io.BytesIO(data), limits):
        parts = name.split("/")
        dirs, leaf = (parts[:-1], parts[-1]) if src is not None else (parts, None)
        dfd = walk_dirs(into_fd, dirs, create=True)
        try:
            if leaf is None or src is None:
                continue
            fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW,
                         0o755 if m.mode & 0o111 else 0o644, dir_fd=dfd)
            with os.fdopen(fd, "wb") as fh:
                while chunk := src.read(1 << 20):
                    fh.write(chunk)
            written.append(name)
        finally:
            os.close(dfd)
    return written


def extract_tarball(data: bytes, target: Path, workspace: Path,
                    limits: SnapshotLimits = SnapshotLimits()) -> list[str]:
    """Restore a snapshot into ``target`` (relative to ``workspace``); returns the files written.

    All or nothing: the whole archive is checked, then written into a fresh hidden directory inside
    ``target``; only when every file is written are its top-level entries swapped into ``target`` by
    ``rename`` (an existing entry of the same name, file, directory or symlink, is moved aside and
    deleted, never written through: no hard link or symlink in the target can redirect a write).
    Every directory is opened with ``O_NOFOLLOW`` relative to its parent, starting at the workspace;
    ``target`` is checked lexically (no ``..``, not absolute), never resolved by name.
    """
    try:
        rel_parts = relative_parts(target, allow_root=True)
    except UnsafePathError as exc:
        raise SnapshotError(str(exc)) from None
    check_tarball(io.BytesIO(data), limits)
    ws_fd = os.open(workspace, DIR_FLAGS)
    try:
        try:
            dest_fd = walk_dirs(ws_fd, rel_parts, create=True)
        except OSError as exc:
            raise SnapshotError(f"cannot restore into {str(target)!r} (a symlink or a file is in the way?): "
                                f"{exc.strerror}") from None
    finally:
        os.close(ws_fd)
    tag = secrets.token_hex(6)
    fresh, aside = f".aar-restore-{tag}", f".aar-replaced-{tag}"
    try:
        os.mkdir(fresh, 0o700, dir_fd=dest_fd)
        fresh_fd = os.open(fresh, DIR_FLAGS, dir_fd=dest_fd)
        try:
            try:
                written = _write_tree(data, fresh_fd, limits)
            except OSError as exc:
                raise SnapshotError(f"cannot restore: {exc.strerror}") from None
            os.mkdir(aside, 0o700, dir_fd=dest_fd)
            aside_fd = os.open(aside, DIR_FLAGS, dir_fd=dest_fd)
            try:
                for name in sorted(os.listdir(fresh_fd)):
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(name, name, src_dir_fd=dest_fd, dst_dir_fd=aside_fd)
                    os.rename(name, name, src_dir_fd=fresh_fd, dst_dir_fd=dest_fd)
            finally:
                os.close(aside_fd)
        finally:
            os.close(fresh_fd)
    finally:
        for leftover in (fresh, aside):
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(leftover, dir_fd=dest_fd)
        os.close(dest_fd)
    return written

