"""Host-side workspace file access that a sandboxed program cannot turn against the host.

The host process usually runs with more rights than the sandbox (often root). A program inside can
plant symlinks in its workspace, so every host-side open here walks the path one component at a time
with ``O_NOFOLLOW`` from a directory fd of the workspace: a symlink anywhere in the path fails the
call instead of being followed, and a component swapped for a link mid-walk fails too. Writes refuse
FIFOs and files with more than one hard link (which could be a host file linked in where
``fs.protected_hardlinks`` is off). :func:`linked_out` finds files hard-linked from outside the
workspace (a host-side mistake: the inode is readable whatever the path); ``bwrap`` masks them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path, PurePosixPath

from aar.sandbox.base import SandboxError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_CAP = 64 << 20  # the most bytes a host-side read of an agent's file takes, unless the caller says less


class UnsafePathError(SandboxError, ValueError):
    """A workspace path that leaves the workspace, meets a link, or names something not allowed."""


def relative_parts(rel: str | Path, *, allow_root: bool = False) -> list[str]:
    """The components of a workspace-relative path, checked lexically (nothing on disk is looked at).

    Raises ``UnsafePathError`` for an absolute path or a ``..`` component ("outside the workspace"),
    and for the workspace itself unless ``allow_root``.
    """
    p = PurePosixPath(str(rel))
    parts = [x for x in p.parts if x not in ("", ".")]
    if p.is_absolute() or ".." in parts:
        raise UnsafePathError(f"{str(rel)!r} is outside the workspace (give a path relative to it)")
    if not parts and not allow_root:
        raise UnsafePathError(f"{str(rel)!r}: not a file inside the workspace")
    return parts


def walk_dirs(dir_fd: int, parts: list[str], *, create: bool = False,
              owner: tuple[int, int] | None = None) -> int:
    """A new descriptor of ``dir_fd/parts...``: each component opened with ``O_NOFOLLOW`` from its parent.

    A symlink anywhere on the way, or one swapped in while walking, fails the call (``OSError``);
    nothing is resolved by name. With ``create``, missing folders are made (owned by ``owner``).
    """
    fd = os.dup(dir_fd)
    try:
        for name in parts:
            if create:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    if owner:
                        os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_dir_beneath(root: Path, rel: str | Path = ".", *, create: bool = False,
                     owner: tuple[int, int] | None = None) -> int:
    """A descriptor of the folder ``root/rel`` (``root`` itself for ``"."``), never through a link."""
    parts = relative_parts(rel, allow_root=True)
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        return walk_dirs(root_fd, parts, create=create, owner=owner)
    except OSError as exc:
        raise UnsafePathError(f"{str(rel)!r}: {exc.strerror} (a link or a file is in the way? links are "
                              "not followed)") from None
    finally:
        os.close(root_fd)


def _open_parent(root: Path, parts: list[str], create: bool, owner: tuple[int, int] | None) -> int:
    return open_dir_beneath(root, "/".join(parts[:-1]) or ".", create=create, owner=owner)


def read_beneath(root: Path, rel: str | Path, max_bytes: int = READ_CAP) -> bytes:
    """Read ``root/rel`` without following any symlink; only regular files of at most ``max_bytes``.

    FIFOs and devices are refused without blocking (opened ``O_NONBLOCK``, checked with ``fstat``),
    and a file that grows past the cap while being read is refused too.
    """
    parts = relative_parts(rel)
    dfd = _open_parent(root, parts, create=False, owner=None)
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY,
                     dir_fd=dfd)
    except OSError as exc:
        raise UnsafePathError(f"{rel}: {exc.strerror} (links are not followed)") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{rel}: not a regular file")
        if st.st_size > max_bytes:
            raise UnsafePathError(f"{rel}: {st.st_size} bytes; the cap is {max_bytes}")
        data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafePathError(f"{rel}: over the cap of {max_bytes} bytes")
        return data


def write_beneath(root: Path, rel: str | Path, data: bytes, owner: tuple[int, int] | None) -> None:
    """Write ``root/rel`` (parents created) without following symlinks; chown to ``owner``."""
    parts = relative_parts(rel)
    dfd = _open_parent(root, parts, create=True, owner=owner)
    try:  # no O_TRUNC yet: a planted FIFO must not block us, a hard link must not be truncated
        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     0o644, dir_fd=dfd)
    except OSError as exc:
        raise UnsafePathError(f"{rel}: {exc.strerror} (links are not followed)") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "wb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise UnsafePathError(f"{rel}: not a regular file with a single link; not written")
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        if owner:
            os.fchown(fd, *owner)
        f.write(data)


def replace_at(dir_fd: int, name: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``name`` in the directory ``dir_fd`` atomically, never following a symlink.

    A new file (``O_EXCL | O_NOFOLLOW``, random name) is written, then renamed over ``name``: a
    symlink, FIFO or hard link planted at ``name`` is itself replaced, never written through.
    """
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    tmp = f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def disk_usage(root: Path) -> int:
    """Bytes used under ``root`` for the quota: per file the larger of its allocated blocks and its
    apparent size (a sparse 60 GB file counts 60 GB: host code may read it whole); hard links counted
    once; links not followed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(e.path)
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += max(st.st_blocks * 512, st.st_size)
    return total


def linked_out(root: Path) -> list[Path]:
    """Regular files under ``root`` with a hard link outside it (more links than found inside)."""
    seen: dict[tuple[int, int], list[Path]] = {}
    nlink: dict[tuple[int, int], int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            try:
                st = p.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                seen.setdefault(key, []).append(p)
                nlink[key] = st.st_nlink
    return sorted(p for key, paths in seen.items() if len(paths) < nlink[key] for p in paths)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Hand ``root`` and everything under it to ``uid:gid``: symlinks themselves, never their targets,
    and never a file hard-linked from outside ``root`` (that would change a host file's owner)."""
    skip = set(linked_out(root))
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p not in skip:
                os.lchown(p, uid, gid)
