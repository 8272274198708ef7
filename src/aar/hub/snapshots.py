"""Code snapshots: pack a workspace, check an uploaded tarball, store it by sha256, restore it safely.

A snapshot is a gzipped tar of regular files and directories only. Protects against: ``..`` and
absolute member names, symlinks, hard links, device files and FIFOs, oversized files, too many
members, and gzip / tar bombs (decompression is counted and stopped at a cap, never trusted from
headers). Restoring never writes outside its target, never follows a symlink found in the target
tree, and drops set-uid bits. Does not protect against the *content* of the code (it is code the
agents wrote; it runs only inside sandboxes).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

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


def _excluded(rel: str, name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def pack_workspace(root: Path, excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
                   limits: SnapshotLimits = SnapshotLimits()) -> PackResult:
    """Tar and gzip the regular files under ``root`` deterministically (same content, same sha256).

    Symlinks, special files, excluded names and files over the per-file cap are skipped and listed.
    Raises ``SnapshotError`` when the total goes over the caps.
    """
    root = Path(root)
    if not root.is_dir():
        raise SnapshotError(f"{root} is not a directory")
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        keep = []
        for d in sorted(dirnames):
            rel = d if rel_dir == "." else f"{rel_dir}/{d}"
            if os.path.islink(os.path.join(dirpath, d)) or _excluded(rel, d, excludes):
                skipped.append(rel + "/")
            else:
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            rel = f if rel_dir == "." else f"{rel_dir}/{f}"
            full = Path(dirpath) / f
            st = full.lstat()
            if not stat.S_ISREG(st.st_mode) or _excluded(rel, f, excludes):
                skipped.append(rel)
                continue
            if st.st_size > limits.max_file_bytes:
                skipped.append(f"{rel} (over {limits.max_file_bytes} bytes)")
                continue
            total += st.st_size
            if total > limits.max_unpacked_bytes or len(files) >= limits.max_members:
                raise SnapshotError(f"workspace is over the snapshot caps ({limits.max_unpacked_bytes} "
                                    f"bytes, {limits.max_members} files); exclude data or outputs")
            files.append((rel, full))
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, full in sorted(files):
            data = full.read_bytes()
            info = tarfile.TarInfo(rel)
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if os.access(full, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = buf.getvalue()
    if len(out) > limits.max_upload_bytes:
        raise SnapshotError(f"snapshot is {len(out)} bytes compressed; the cap is {limits.max_upload_bytes}")
    return PackResult(out, len(files), total, skipped)


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


def extract_tarball(data: bytes, target: Path, workspace: Path,
                    limits: SnapshotLimits = SnapshotLimits()) -> list[str]:
    """Restore a snapshot into ``target``, which must lie inside ``workspace``; returns the files written.

    The whole archive is checked before anything is written. Existing files are overwritten; a
    symlink in the way is refused (it could point outside the workspace): directories are walked
    with ``O_NOFOLLOW`` descriptors, so a symlink swapped in during the restore is refused too.
    """
    ws = Path(workspace).resolve()
    dest_root = resolve_inside(ws, target)
    check_tarball(io.BytesIO(data), limits)
    dest_root.mkdir(parents=True, exist_ok=True)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    dir_flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow
    written: list[str] = []
    root_fd = os.open(dest_root, dir_flags)
    try:
        for m, name, src in iter_members(io.BytesIO(data), limits):
            parts = name.split("/")
            dirs, leaf = (parts[:-1], parts[-1]) if src is not None else (parts, None)
            fds = [root_fd]
            try:
                for part in dirs:  # walk with dir fds and O_NOFOLLOW: no symlink is ever followed
                    try:
                        os.mkdir(part, 0o755, dir_fd=fds[-1])
                    except FileExistsError:
                        pass
                    fds.append(os.open(part, dir_flags, dir_fd=fds[-1]))
                if leaf is None or src is None:
                    continue
                fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | nofollow,
                             0o755 if m.mode & 0o111 else 0o644, dir_fd=fds[-1])
                with os.fdopen(fd, "wb") as fh:
                    while chunk := src.read(1 << 20):
                        fh.write(chunk)
                written.append(name)
            except OSError as exc:
                raise SnapshotError(f"cannot restore {name!r} (a symlink or a file of another type is in "
                                    f"the way?): {exc.strerror}") from None
            finally:
                for fd_ in fds[1:]:
                    os.close(fd_)
    finally:
        os.close(root_fd)
    return written


def resolve_inside(workspace: Path, target: Path | str) -> Path:
    """``target`` (relative to ``workspace`` unless absolute) resolved; ``SnapshotError`` if it leaves it."""
    ws = Path(workspace).resolve()
    t = Path(target)
    full = (t if t.is_absolute() else ws / t).resolve()
    if full != ws and ws not in full.parents:
        raise SnapshotError(f"target {str(target)!r} is outside the workspace")
    return full
