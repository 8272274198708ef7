"""Content-addressed snapshot storage through fsspec: a local directory by default, ``s3://...`` for scale.

Blobs are keyed by the sha256 of their bytes (``<root>/ab/abcd....tar.gz``) and written before the
database row that points at them, so a crash leaves at worst an unreferenced blob, never a row
without its blob. Local writes go to a temporary file that is fsynced and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

import fsspec


class BlobStore:
    """Put, test and open sha256-named blobs under an fsspec URL (or a plain local path)."""

    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        fs, root = fsspec.core.url_to_fs(self.url)
        self.fs: Any = fs
        self.root = root.rstrip("/")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self.local = protocol in ("file", "local")
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def key(self, sha256: str) -> str:
        return f"{self.root}/{sha256[:2]}/{sha256}.tar.gz"

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self.key(sha256)))

    def put(self, sha256: str, src: IO[bytes]) -> None:
        """Store the bytes of ``src`` (read from its start) as blob ``sha256``; durable on return."""
        key = self.key(sha256)
        src.seek(0)
        if not self.local:
            with self.fs.open(key, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            return
        folder = Path(key).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, key)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def open(self, sha256: str) -> IO[bytes]:
        """A binary reader of blob ``sha256`` (``FileNotFoundError`` if it is missing)."""
        return self.fs.open(self.key(sha256), "rb")
