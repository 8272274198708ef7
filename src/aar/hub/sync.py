"""Local findings sync: every finding of the team as a Markdown file in ``<workspace>/findings/``.

One file per finding (``f00042-short-title.md``) with front matter (id, author, kind, family,
tags, parents, submissions, released scores, snapshot, votes), the body and the comments, plus
``INDEX.md`` (a table, newest first) and ``index.json``. The sync follows the hub's change feed
(long-poll), so a post anywhere in the team lands in every workspace within about a second.
Files are replaced atomically; the folder is a read-only view (local edits are overwritten).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from aar.hub.client import HubClient
from aar.hub.models import Finding

log = logging.getLogger(__name__)
STATE_FILE = ".sync.json"


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


def render_finding(f: Finding) -> str:
    """Markdown with front matter; values are JSON, which YAML parsers read as well."""
    front = {
        "id": f.id, "title": f.title, "author": f.author, "kind": f.kind, "family": f.family,
        "tags": f.tags, "parents": f.parents, "submissions": f.submission_ids, "scores": f.scores,
        "snapshot": f.snapshot_id, "votes": f.votes, "comments": f.n_comments,
        "created": f.created_at.isoformat(), "config": f.config,
    }
    lines = ["---", *(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in front.items()), "---", "",
             f"# {f.title}", ""]
    if f.parents:
        lines += ["Builds on: " + ", ".join(f"f{p:05d}" for p in f.parents), ""]
    lines += [f.body.rstrip(), ""]
    if f.scores:
        lines += ["## Released scores (from the eval server)", ""]
        for sid, s in f.scores.items():
            lines.append(f"- `{sid}`: `{json.dumps(s, sort_keys=True)}`")
        lines.append("")
    if f.comments:
        lines += ["## Comments", ""]
        for c in f.comments:
            lines += [f"**{c.author}** ({c.created_at:%Y-%m-%d %H:%M} UTC):", "", c.body.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FindingsSync:
    """Mirror the team's findings into ``<workspace>/findings``; ``sync_once`` is safe to call any time.

    The sync owns ``hub`` (its thread closes it on stop): give it a client of its own.
    """

    def __init__(self, hub: HubClient, workspace: Path, folder: str = "findings") -> None:
        if "/" in folder or folder in ("", ".", ".."):
            raise ValueError("folder is one plain name inside the workspace")
        self.hub = hub
        self.workspace = Path(workspace).resolve()
        self.dir = self.workspace / folder
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.dir / STATE_FILE).read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _index(self) -> dict[str, dict[str, Any]]:
        try:
            rows = json.loads((self.dir / "index.json").read_text())
            return {str(r["id"]): r for r in rows}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _check_dir(self) -> None:
        """Refuse a findings folder that is a symlink (an agent could aim it outside its workspace)."""
        if self.dir.is_symlink() or self.dir.parent.resolve() != self.workspace:
            raise OSError(f"{self.dir} is a symlink or leaves the workspace; not syncing into it")
        self.dir.mkdir(exist_ok=True)

    def sync_once(self, wait: float = 0) -> int:
        """Fetch every change since the last sync (waiting up to ``wait`` s for one); returns files written.
        """
        with self._lock:
            self._check_dir()
            state = self._state()
            cursor = int(state.get("cursor", 0))
            index = self._index()
            written = 0
            while True:
                page = self.hub.findings(since_rev=cursor, limit=200, comments=True, wait=wait)
                if not page.findings:
                    break
                for f in page.findings:
                    name = finding_filename(f)
                    _atomic_write(self.dir / name, render_finding(f))
                    index[str(f.id)] = {
                        "id": f.id, "file": name, "title": f.title, "kind": f.kind, "family": f.family,
                        "author": f.author, "tags": f.tags, "votes": f.votes, "comments": f.n_comments,
                        "pgr": headline_pgr(f.scores), "snapshot": f.snapshot_id,
                        "created": f.created_at.isoformat()}
                    written += 1
                cursor, wait = page.cursor, 0
            if written:
                self._write_index(index)
            _atomic_write(self.dir / STATE_FILE, json.dumps({"cursor": cursor, "hub": self.hub.base_url}))
            return written

    def _write_index(self, index: dict[str, dict[str, Any]]) -> None:
        rows = sorted(index.values(), key=lambda r: -int(r["id"]))
        _atomic_write(self.dir / "index.json", json.dumps(rows, indent=1))
        lines = ["# Findings", "", f"{len(rows)} findings, newest first. One file per finding; "
                 "front matter holds the released scores.", "",
                 "| id | kind | family | author | PGR | votes | title |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            pgr = "" if r.get("pgr") is None else f"{r['pgr']:.3f}"
            title = str(r["title"]).replace("|", "\\|")
            lines.append(f"| {r['id']} | {r['kind']} | {r.get('family') or ''} | {r['author']} | {pgr} | "
                         f"{r['votes']} | [{title}]({r['file']}) |")
        _atomic_write(self.dir / "INDEX.md", "\n".join(lines) + "\n")

    def start(self, wait: float = 20.0) -> None:
        """Follow the change feed in a daemon thread until ``stop``; errors back off and retry."""
        if self._thread is not None:
            return

        def loop() -> None:
            delay = 1.0
            try:
                while not self._stop.is_set():
                    try:
                        cursor = int(self._state().get("cursor", 0))
                        self.hub.findings(since_rev=cursor, limit=1, wait=wait)  # long-poll, lock not held
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
