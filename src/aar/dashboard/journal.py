"""Reading trajectory journals by byte offset, so a page never parses a whole file per request.

A trajectory (``runs/<team>/workers/<id>/trajectory.jsonl``) only grows: the host appends one
validated :class:`~aar.agents.base.Step` per line. A line's byte offset is therefore a stable cursor:

* :func:`tail` reads the last ``limit`` complete lines before an offset, block by block from the end
  (a 50,000-line file costs what its last page costs);
* :func:`after` reads the complete lines from an offset on (what a live page appends);
* :func:`line_at` reads one line (a step shown in full after being truncated on screen);
* :func:`search` streams every line once looking for a phrase (no parsing of lines that do not match);
* :class:`StepCache` keeps each file's parsed steps and parses only the bytes appended since the last
  call (the team views need every step: usage, cost, best PGR).

A torn last line (its writer still writing, or killed) is never returned until its newline arrives.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aar.agents.base import Step

BLOCK = 1 << 16
MAX_LINE = 16 << 20  # a line longer than this is shown as unreadable (a trajectory line is ~ < 100 KB)


@dataclass
class Line:
    """One journal line: where it starts and ends, and its step (None when it is not a valid step)."""

    offset: int
    end: int
    step: Step | None
    raw: str = ""


def _parse(data: bytes, offset: int) -> Line:
    try:
        return Line(offset, offset + len(data) + 1, Step.model_validate_json(data))
    except ValueError:
        return Line(offset, offset + len(data) + 1, None, data[:2000].decode(errors="replace"))


def _lines(data: bytes, start: int) -> list[Line]:
    """The complete lines of ``data`` (which begins at byte ``start`` of the file), blank ones skipped."""
    out: list[Line] = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return out
        if data[pos:nl].strip():
            out.append(_parse(data[pos:nl], start + pos))
        pos = nl + 1


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, before: int | None = None, limit: int = 200) -> tuple[list[Line], int]:
    """Up to ``limit`` complete lines ending at or before byte ``before`` (the end of file when None).

    Returns the lines, oldest first, and the offset of the first one (0: nothing earlier remains).
    """
    try:
        f = path.open("rb")
    except OSError:
        return [], 0
    with f:
        size = os.fstat(f.fileno()).st_size
        end = size if before is None else max(0, min(before, size))
        pos, buf = end, b""
        # the block that holds the last newline before ``end`` decides where complete lines stop
        while pos > 0 and buf.count(b"\n") <= limit:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            if len(buf) > MAX_LINE * 2 and buf.count(b"\n") == 0:
                break
    last_nl = buf.rfind(b"\n")
    if last_nl < 0:
        return [], pos if pos else 0
    buf = buf[:last_nl + 1]
    if pos > 0:  # drop the partial first line: it belongs to the page before
        first_nl = buf.find(b"\n")
        cut = first_nl + 1
        pos, buf = pos + cut, buf[cut:]
    lines = _lines(buf, pos)
    if len(lines) > limit:
        lines = lines[-limit:]
    return lines, lines[0].offset if lines else pos


def after(path: Path, offset: int, limit: int = 500, max_bytes: int = 8 << 20) -> tuple[list[Line], int]:
    """Complete lines from byte ``offset`` on (at most ``limit`` lines / about ``max_bytes``); and the next offset."""
    try:
        f = path.open("rb")
    except OSError:
        return [], offset
    with f:
        size = os.fstat(f.fileno()).st_size
        if offset >= size:
            return [], offset
        f.seek(offset)
        data = f.read(max_bytes)
    last_nl = data.rfind(b"\n")
    if last_nl < 0:
        return [], offset
    lines = _lines(data[:last_nl + 1], offset)[:limit]
    return lines, (lines[-1].end if lines else offset + last_nl + 1)


def line_at(path: Path, offset: int) -> Line | None:
    """The line starting exactly at ``offset`` (None when no line starts there)."""
    if offset < 0:
        return None
    try:
        f = path.open("rb")
    except OSError:
        return None
    with f:
        if offset > 0:
            f.seek(offset - 1)
            if f.read(1) != b"\n":
                return None
        f.seek(offset)
        data = f.read(MAX_LINE)
    nl = data.find(b"\n")
    return _parse(data[:nl], offset) if nl >= 0 else None


def needles(query: str) -> list[bytes]:
    """What ``query`` looks like inside a JSON line, lower-cased (as typed, and JSON-escaped)."""
    q = query.strip().lower()
    if not q:
        return []
    escaped = json.dumps(q)[1:-1]
    return list(dict.fromkeys([q.encode(), escaped.encode()]))


def search(path: Path, query: str, limit: int = 50) -> Iterator[Line]:
    """Lines of ``path`` whose text contains ``query`` (case-insensitive), oldest first, at most ``limit``."""
    keys = needles(query)
    if not keys:
        return
    found = 0
    offset = 0
    ascii_only = all(k.isascii() for k in keys)
    try:
        f = path.open("rb")
    except OSError:
        return
    with f:
        for raw in f:
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                return
            if ascii_only:
                hit = any(k in raw.lower() for k in keys)
            else:  # bytes.lower() folds ASCII only: compare decoded text
                text = raw.decode(errors="replace").lower()
                hit = any(k.decode() in text for k in keys)
            if hit:
                yield _parse(raw[:-1], start)
                found += 1
                if found >= limit:
                    return


#: What the team views read of a step's ``data`` (usage, cost, best PGR, flags); the rest is dropped from the
#: cache so that long transcripts cost memory once, on disk, not again in every process that shows them.
KEEP: dict[str, tuple[str, ...] | None] = {"submission": None, "run_start": None, "detector": None, "run_end": None,
                                           "budget_stop": None, "message": ("model", "role")}


def light(step: Step) -> Step:
    """``step`` with only the ``data`` keys in :data:`KEEP` (all of it for submissions, run starts, detectors)."""
    keys = KEEP.get(step.type, ())
    if keys is None:
        return step
    return step.model_copy(update={"data": {k: step.data[k] for k in keys if k in step.data}})


class StepCache:
    """Parsed steps per file (:func:`light`), extended incrementally (a file replaced or truncated is read again)."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[int, int, list[Step]]] = {}
        self._lock = threading.Lock()

    def steps(self, path: Path) -> list[Step]:
        """Every valid step of ``path`` (a copy of the cached list, extended by the bytes appended since)."""
        try:
            st = path.stat()
        except OSError:
            return []
        with self._lock:
            ino, offset, steps = self._files.get(path, (st.st_ino, 0, []))
            if ino != st.st_ino or st.st_size < offset:
                offset, steps = 0, []
            steps = list(steps)
            chunk = 4 << 20
            while offset < st.st_size:  # a chunk at a time: never the whole file's steps in full at once
                lines, nxt = after(path, offset, limit=10**9, max_bytes=chunk)
                if nxt == offset:  # no newline in the chunk: a very long line, or a torn last one
                    if chunk > MAX_LINE or offset + chunk >= st.st_size:
                        break
                    chunk *= 4
                    continue
                steps += [light(x.step) for x in lines if x.step is not None]
                offset = nxt
            self._files[path] = (st.st_ino, offset, steps)
            return list(steps)
