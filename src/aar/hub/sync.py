"""Local findings sync: every finding of the team as a Markdown file in ``<workspace>/findings/``.

One file per finding (``f00042-short-title.md``) with front matter (id, author, kind, family,
tags, parents, submissions, released scores, snapshot, votes), the body and the comments, plus
``INDEX.md`` (a table, newest first) and ``index.json``. The sync follows the hub's change feed
(long-poll), so a post anywhere in the team lands in every workspace within about a second.
Files are replaced atomically; the folder is a read-only view (local edits are overwritten).

The folder is agent-writable, so nothing is trusted from it: each pass opens the workspace and then
``findings/`` as directory descriptors with ``O_NOFOLLOW`` and writes every file relative to that
descriptor (temp file with ``O_EXCL | O_NOFOLLOW``, then ``rename`` within the directory). Renaming
the folder and planting a symlink mid-pass redirects nothing. The sync cursor lives in memory and,
when given, in ``cursor_file`` outside the workspace (an edited cursor in the workspace cannot force
a long pass).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from aar.hub.client import HubClient
from aar.hub.models import Finding
from aar.sandbox.files import replace_at

log = logging.getLogger(__name__)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW


def slug(title: str, max_len: int = 48) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return s[:max_len].rstrip("-") or "finding"


def finding_filename(f: Finding) -> str:
    return f"f{f.id:05d}-{slug(f.title)}.md"


def headline_pgr(scores: dict[str, dict[str, Any]]) -> float | None:
    """The best combined PGR among a finding's released scores (for the index), if the scores have one."""
    best: float | None = None
    for s in scores.values():
        if isinstance(s, dict) and isinstance(s.get("released"), dict):
            s = s["released"]
        pgr = s.get("pgr") if isinstance(s, dict) else None
        if isinstance(pgr, dict):
            pgr = pgr.get("combined", pgr.get("id"))
        if isinstance(pgr, int | float) and (best is None or pgr > best):
            best = float(pgr)
    return best


_UNSAFE_LINK = re.compile(r"(\]\(\s*<?|^\s{0,3}\[[^\]]*\]:\s*<?)\s*(javascript|vbscript|data|file)\s*:",
                          re.IGNORECASE | re.MULTILINE)


def neutralise(text: str) -> str:
    """Markdown that renders as text, never as HTML or a script link.

    ``<`` becomes ``&lt;`` (no raw HTML, no ``<javascript:...>`` autolinks) and a link whose target
    uses the ``javascript:``, ``vbscript:``, ``data:`` or ``file:`` scheme gets an inert ``unsafe-``
    prefix. Agents write these texts; whoever renders the mirror (an editor preview, the dashboard)
    must not run them.
    """
    return _UNSAFE_LINK.sub(lambda m: f"{m.group(1)}unsafe-{m.group(2)}:", text.replace("<", "&lt;"))


def quoted(text: str) -> str:
    """``text`` as a Markdown blockquote: nothing inside can pose as the file's own structure."""
    return "\n".join("> " + line if line else ">" for line in text.rstrip().splitlines()) or ">"


def render_finding(f: Finding) -> str:
    """Markdown with front matter; values are JSON, which YAML parsers read as well."""
    front = {
        "id": f.id, "title": f.title, "author": f.author, "kind": f.kind, "family": f.family,
        "tags": f.tags, "parents": f.parents, "submissions": f.submission_ids, "scores": f.scores,
        "snapshot": f.snapshot_id, "votes": f.votes, "comments": f.n_comments,
        "created": f.created_at.isoformat(), "config": f.config,
    }
    lines = ["---", *(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in front.items()), "---", "",
             f"# {neutralise(' '.join(f.title.split()))}", ""]
    if f.parents:
        lines += ["Builds on: " + ", ".join(f"f{p:05d}" for p in f.parents), ""]
    lines += [neutralise(f.body.rstrip()), ""]
    if f.scores:
        lines += ["## Released scores (from the eval server)", ""]
        for sid, s in f.scores.items():
            lines.append(f"- `{sid}`: `{json.dumps(s, sort_keys=True)}`")
        lines.append("")
    if f.comments:
        lines += ["## Comments", ""]
        if f.n_comments > len(f.comments):
            lines += [f"(the newest {len(f.comments)} of {f.n_comments} comments; the read_finding tool shows all)", ""]
        for c in f.comments:
            # each comment body is quoted under its author line, so a body cannot fake another author
            lines += [f"**{neutralise(c.author)}** ({c.created_at:%Y-%m-%d %H:%M} UTC):", "",
                      quoted(neutralise(c.body)), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_at(dir_fd: int, name: str, text: str) -> None:
    """Replace ``name`` in the directory ``dir_fd`` atomically, never following a symlink."""
    replace_at(dir_fd, name, text.encode("utf-8"))


class FindingsSync:
    """Mirror the team's findings into ``<workspace>/findings``; ``sync_once`` is safe to call any time.

    The sync owns ``hub`` (its thread closes it on stop): give it a client of its own.
    """

    def __init__(self, hub: HubClient, workspace: Path, folder: str = "findings",
                 cursor_file: Path | None = None) -> None:
        if "/" in folder or folder in ("", ".", ".."):
            raise ValueError("folder is one plain name inside the workspace")
        self.hub = hub
        self.workspace = Path(workspace).resolve()
        self.folder = folder
        self.dir = self.workspace / folder
        self.cursor_file = cursor_file
        self._cursor = self._load_cursor()
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _load_cursor(self) -> int:
        if self.cursor_file is None:
            return 0
        try:
            state = json.loads(self.cursor_file.read_text())
            return int(state["cursor"]) if state.get("workspace") == str(self.workspace) else 0
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return 0

    def _save_cursor(self) -> None:
        if self.cursor_file is None:
            return
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cursor_file.with_name(self.cursor_file.name + ".tmp")
        tmp.write_text(json.dumps({"cursor": self._cursor, "workspace": str(self.workspace),
                                   "hub": self.hub.base_url}))
        tmp.replace(self.cursor_file)

    def _open_dir(self) -> int:
        """A descriptor of the findings folder (made if missing); a symlink anywhere is refused."""
        try:
            ws_fd = os.open(self.workspace, DIR_FLAGS)
        except OSError as exc:
            raise OSError(f"workspace {self.workspace} is not a plain directory: {exc.strerror}") from None
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.folder, 0o755, dir_fd=ws_fd)
            try:
                return os.open(self.folder, DIR_FLAGS, dir_fd=ws_fd)
            except OSError:
                raise OSError(f"{self.dir} is a symlink or not a directory; not syncing into it") from None
        finally:
            os.close(ws_fd)

    def _index(self, dir_fd: int) -> dict[str, dict[str, Any]]:
        """The index rows known so far (from memory; on a resumed cursor, from the folder's index.json)."""
        if self._rows or self._cursor == 0:
            return self._rows
        try:
            fd = os.open("index.json", os.O_RDONLY | NOFOLLOW, dir_fd=dir_fd)
            with os.fdopen(fd, encoding="utf-8") as fh:
                rows = json.load(fh)
            self._rows = {str(r["id"]): r for r in rows if isinstance(r, dict)}
        except (OSError, ValueError, KeyError, TypeError):
            self._cursor = 0  # an unreadable index: rebuild everything
        return self._rows

    def sync_once(self, wait: float = 0) -> int:
        """Fetch every change since the last sync (waiting up to ``wait`` s for one); returns files written.
        """
        with self._lock:
            dir_fd = self._open_dir()
            try:
                index = self._index(dir_fd)
                cursor, written = self._cursor, 0
                while True:
                    page = self.hub.findings(since_rev=cursor, limit=200, comments=True, wait=wait)
                    if not page.findings:
                        break
                    for f in page.findings:
                        name = finding_filename(f)
                        write_at(dir_fd, name, render_finding(f))
                        index[str(f.id)] = {
                            "id": f.id, "file": name, "title": f.title, "kind": f.kind, "family": f.family,
                            "author": f.author, "tags": f.tags, "votes": f.votes, "comments": f.n_comments,
                            "pgr": headline_pgr(f.scores), "snapshot": f.snapshot_id,
                            "created": f.created_at.isoformat()}
                        written += 1
                    cursor, wait = page.cursor, 0
                if written:
                    self._write_index(dir_fd, index)
                self._cursor = cursor
                self._save_cursor()
                return written
            finally:
                os.close(dir_fd)

    def _write_index(self, dir_fd: int, index: dict[str, dict[str, Any]]) -> None:
        rows = sorted(index.values(), key=lambda r: -int(r["id"]))
        write_at(dir_fd, "index.json", json.dumps(rows, indent=1))
        lines = ["# Findings", "", f"{len(rows)} findings, newest first. One file per finding; "
                 "front matter holds the released scores.", "",
                 "| id | kind | family | author | PGR | votes | title |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            pgr = "" if r.get("pgr") is None else f"{r['pgr']:.3f}"
            title = neutralise(" ".join(str(r["title"]).split())).replace("|", "\\|").replace("]", "\\]")
            lines.append(f"| {r['id']} | {r['kind']} | {r.get('family') or ''} | {r['author']} | {pgr} | "
                         f"{r['votes']} | [{title}]({r['file']}) |")
        write_at(dir_fd, "INDEX.md", "\n".join(lines) + "\n")

    def start(self, wait: float = 20.0) -> None:
        """Follow the change feed in a daemon thread until ``stop``; errors back off and retry."""
        if self._thread is not None:
            return

        def loop() -> None:
            delay = 1.0
            try:
                while not self._stop.is_set():
                    try:
                        self.hub.findings(since_rev=self._cursor, limit=1, wait=wait)  # long-poll, no lock
                        self.sync_once()
                        delay = 1.0
                    except Exception as exc:  # keep following: the hub may be restarting
                        if self._stop.is_set():
                            break
                        log.warning("findings sync: %s (retrying in %.0fs)", exc, delay)
                        self._stop.wait(delay)
                        delay = min(delay * 2, 30.0)
            finally:
                self.hub.close()

        self._thread = threading.Thread(target=loop, name="findings-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following (after the pending long-poll, at most ``wait`` s); the thread closes the client."""
        self._stop.set()
