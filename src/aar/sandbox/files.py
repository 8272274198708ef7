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

import os
import stat
from pathlib import Path, PurePosixPath

from aar.sandbox.base import SandboxError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parts(rel: str | Path) -> list[str]:
    p = PurePosixPath(rel)
    if p.is_absolute():
        raise SandboxError(f"{rel}: workspace paths are relative")
    parts = [x for x in p.parts if x not in ("", ".")]
    if not parts or ".." in parts:
        raise SandboxError(f"{rel}: not a path inside the workspace")
    return parts


def _open_parent(root: Path, parts: list[str], create: bool, owner: tuple[int, int] | None) -> int:
    fd = os.open(root, _DIR_FLAGS)
    try:
        for name in parts[:-1]:
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
    except OSError as exc:
        os.close(fd)
        raise SandboxError(f"{'/'.join(parts)}: {exc.strerror} (links are not followed)") from None


def read_beneath(root: Path, rel: str | Path) -> bytes:
    """Read ``root/rel`` without following any symlink; only regular files."""
    parts = _parts(rel)
    dfd = _open_parent(root, parts, create=False, owner=None)
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError as exc:
        raise SandboxError(f"{rel}: {exc.strerror} (links are not followed)") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SandboxError(f"{rel}: not a regular file")
        return f.read()


def write_beneath(root: Path, rel: str | Path, data: bytes, owner: tuple[int, int] | None) -> None:
    """Write ``root/rel`` (parents created) without following symlinks; chown to ``owner``."""
    parts = _parts(rel)
    dfd = _open_parent(root, parts, create=True, owner=owner)
    try:  # no O_TRUNC yet: a planted FIFO must not block us, a hard link must not be truncated
        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     0o644, dir_fd=dfd)
    except OSError as exc:
        raise SandboxError(f"{rel}: {exc.strerror} (links are not followed)") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "wb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise SandboxError(f"{rel}: not a regular file with a single link; not written")
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        if owner:
            os.fchown(fd, *owner)
        f.write(data)


def disk_usage(root: Path) -> int:
    """Bytes of disk used under ``root`` (allocated blocks; hard links counted once; links not followed)."""
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
                total += st.st_blocks * 512
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
