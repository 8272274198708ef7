"""The MCP server of one worker (``aar mcp``): tools over the eval server and the hub, with its token.

Runs over stdio (the official ``mcp`` SDK, 2.x ``MCPServer``), one process per worker. Besides the
tools it keeps ``<workspace>/findings/`` in sync with the team's findings. Every tool failure comes
back to the agent as a tool error with a one-line reason; the server itself keeps running.

Tools: ``submit_predictions``, ``get_leaderboard``, ``share_finding``, ``search_findings``,
``read_finding``, ``comment_on_finding``, ``vote_on_finding``, ``upload_snapshot``,
``list_snapshots``, ``download_snapshot``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from aar.hub.client import HubClient, HubError
from aar.hub.evalclient import EvalClient, EvalError
from aar.hub.models import FindingIn, FindingKind
from aar.hub.snapshots import (
    DEFAULT_EXCLUDES,
    SnapshotError,
    extract_tarball,
    pack_workspace,
    resolve_inside,
)
from aar.hub.sync import FindingsSync, finding_filename, headline_pgr

MAX_PREDICTIONS_FILE = 64 * 2**20
_F = TypeVar("_F", bound=Callable[..., Any])


class McpConfig(BaseSettings):
    """What one worker's MCP server needs (environment ``AAR_WORKER_TOKEN``, ``AAR_HUB_URL``, ...)."""

    model_config = SettingsConfigDict(env_prefix="AAR_", extra="ignore")

    token: str = Field(default="", validation_alias=AliasChoices("AAR_WORKER_TOKEN", "token"), repr=False)
    hub_url: str = "http://127.0.0.1:8711"
    eval_url: str = "http://127.0.0.1:8710"
    workspace: Path = Field(default_factory=Path.cwd)
    sync: bool = Field(default=True, description="Keep <workspace>/findings in sync in the background.")
    sync_wait: float = Field(default=20.0, ge=0.5, le=30, description="Long-poll seconds of the sync.")
    state_dir: Path | None = Field(default=None, description="Where the sync cursor is kept (outside the "
                                                             "workspace); default AAR_HOME/mcp.")


class ToolFailure(Exception):
    """Raised inside a tool; becomes the tool error the agent reads."""


def _tool(fn: _F) -> _F:
    """Turn expected failures (hub, eval server, snapshot, input) into tool errors with a clear reason."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mcp.server.mcpserver.exceptions import ToolError

        try:
            return fn(*args, **kwargs)
        except (HubError, EvalError, SnapshotError, ToolFailure, ValueError, OSError) as exc:
            raise ToolError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def load_predictions(path: Path) -> dict[str, float]:
    """Read ``{item_id: P(label 1)}`` from JSON (the mapping, or ``{"predictions": mapping}``) or JSONL
    (one ``{"id": ..., "prob": ...}`` per line; ``p`` / ``prediction`` also accepted)."""
    if not path.is_file():
        raise ToolFailure(f"predictions file {path.name!r} does not exist")
    if path.stat().st_size > MAX_PREDICTIONS_FILE:
        raise ToolFailure(f"predictions file is over {MAX_PREDICTIONS_FILE} bytes")
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            out: dict[str, Any] = {}
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    row = json.loads(line)
                    key = next((k for k in ("prob", "p", "prediction") if k in row), None)
                    if "id" not in row or key is None:
                        raise ToolFailure(f"line {n}: expected {{'id': ..., 'prob': ...}}")
                    out[str(row["id"])] = row[key]
        else:
            data = json.loads(text)
            out = data.get("predictions", data) if isinstance(data, dict) else data
    except json.JSONDecodeError as exc:
        raise ToolFailure(f"predictions file is not valid JSON: {exc}") from None
    if not isinstance(out, dict):
        raise ToolFailure("predictions must be an object {item_id: probability}")
    return out


class WorkerTools:
    """The tools' implementation: plain methods, testable without MCP."""

    def __init__(self, config: McpConfig) -> None:
        if not config.token:
            raise ValueError("no worker token: pass --token-file or set AAR_WORKER_TOKEN")
        self.config = config
        self.workspace = Path(config.workspace).resolve()
        if not self.workspace.is_dir():
            raise ValueError(f"workspace {self.workspace} is not a directory")
        self.hub = HubClient(config.hub_url, config.token)
        self.evals = EvalClient(config.eval_url)
        self.sync = FindingsSync(HubClient(config.hub_url, config.token), self.workspace,
                                 cursor_file=self._cursor_file())

    def _cursor_file(self) -> Path | None:
        """The sync cursor's file, outside the agent-writable workspace (None: keep it in memory)."""
        from aar.config import get_settings

        root = (self.config.state_dir or get_settings().home / "mcp").resolve()
        if root == self.workspace or self.workspace in root.parents:
            return None
        return root / f"sync-{hashlib.sha256(str(self.workspace).encode()).hexdigest()[:16]}.json"

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.workspace).as_posix() or "."

    def submit_predictions(self, testbed: str, predictions: dict[str, float] | None = None,
                           predictions_file: str | None = None, seed: int | None = None,
                           note: str | None = None, snapshot_id: str | None = None) -> dict[str, Any]:
        if (predictions is None) == (predictions_file is None):
            raise ToolFailure("give exactly one of predictions (inline) or predictions_file (workspace path)")
        if predictions_file is not None:
            predictions = load_predictions(resolve_inside(self.workspace, predictions_file))
        out = self.evals.submit(self.config.token, testbed, predictions or {}, seed, note, snapshot_id)
        try:
            self.hub.post_event("submission", {"submission_id": out["id"]})
        except (HubError, KeyError) as exc:
            out["hub_warning"] = f"submission not logged on the hub: {exc}"
        return out

    def get_leaderboard(self, testbed: str | None = None) -> dict[str, Any]:
        board = self.evals.leaderboard(self.config.token, testbed)
        return board if isinstance(board, dict) else {"leaderboard": board}

    def share_finding(self, title: str, kind: FindingKind, body: str = "", family: str | None = None,
                      tags: list[str] | None = None, parents: list[int] | None = None,
                      submission_ids: list[str] | None = None, config: dict[str, Any] | None = None,
                      snapshot_id: str | None = None) -> dict[str, Any]:
        fin = FindingIn.model_validate({
            "title": title, "kind": kind, "body": body, "family": family, "tags": tags or [],
            "parents": parents or [], "submission_ids": submission_ids or [], "config": config or {},
            "snapshot_id": snapshot_id})
        f = self.hub.post_finding(fin)
        self.sync.sync_once()
        return {"id": f.id, "file": f"findings/{finding_filename(f)}", "scores": f.scores,
                "created_at": f.created_at.isoformat()}

    def search_findings(self, query: str, limit: int = 10) -> dict[str, Any]:
        res = self.hub.search(query, max(1, min(limit, 100)))
        return {"query": query, "hits": [{
            "id": h.finding.id, "title": h.finding.title, "kind": h.finding.kind, "family": h.finding.family,
            "author": h.finding.author, "votes": h.finding.votes, "pgr": headline_pgr(h.finding.scores),
            "snippet": h.snippet, "file": f"findings/{finding_filename(h.finding)}"} for h in res.hits]}

    def read_finding(self, finding_id: int) -> dict[str, Any]:
        return self.hub.finding(finding_id).model_dump(mode="json")

    def comment_on_finding(self, finding_id: int, body: str) -> dict[str, Any]:
        return self.hub.comment(finding_id, body).model_dump(mode="json")

    def vote_on_finding(self, finding_id: int, value: Literal[-1, 0, 1]) -> dict[str, Any]:
        f = self.hub.vote(finding_id, value)
        return {"id": f.id, "votes": f.votes, "my_vote": f.my_vote}

    def upload_snapshot(self, note: str = "", parent_id: str | None = None, finding_id: int | None = None,
                        path: str = ".", exclude: list[str] | None = None) -> dict[str, Any]:
        root = resolve_inside(self.workspace, path)
        packed = pack_workspace(root, DEFAULT_EXCLUDES + tuple(exclude or ()))
        meta = self.hub.upload_snapshot(packed.data, note=note, parent_id=parent_id, finding_id=finding_id)
        return {**meta.model_dump(mode="json"), "skipped": packed.skipped[:50]}

    def list_snapshots(self, worker: str | None = None, limit: int = 20) -> dict[str, Any]:
        return {"snapshots": [s.model_dump(mode="json") for s in self.hub.snapshots(worker, limit)]}

    def download_snapshot(self, snapshot_id: str, target: str | None = None) -> dict[str, Any]:
        dest = resolve_inside(self.workspace, target or f"snapshots/{snapshot_id[:12]}")
        files = extract_tarball(self.hub.download_snapshot(snapshot_id), dest, self.workspace)
        return {"snapshot_id": snapshot_id, "target": self._rel(dest), "files": len(files),
                "sample": sorted(files)[:20]}


DESCRIPTIONS = {
    "submit_predictions": "Score test predictions {item_id: P(label 1)} on the eval server, inline or from a "
                          "JSON / JSONL file in your workspace. Returns the submission id and released "
                          "scores.",
    "get_leaderboard": "Your team's leaderboard: each worker's best released scores.",
    "share_finding": "Post a finding (kind: result | hypothesis | insight | negative | error). A result must "
                     "cite your submission_ids; its scores are fetched from the eval server. Synced to "
                     "findings/.",
    "search_findings": "Full-text search over your team's findings (they are also files in findings/).",
    "read_finding": "One finding with its comments, votes and released scores.",
    "comment_on_finding": "Comment on a finding.",
    "vote_on_finding": "Vote on another worker's finding: 1 up, -1 down, 0 withdraw.",
    "upload_snapshot": "Snapshot your code (a folder of the workspace; data, caches and venvs excluded) "
                       "to the hub. Returns its id (sha256); link it from a finding.",
    "list_snapshots": "Recent code snapshots of your team (optionally one worker's).",
    "download_snapshot": "Restore a snapshot into a folder of your workspace (default snapshots/<id>).",
}


def build_server(tools: WorkerTools) -> Any:
    """The ``MCPServer`` exposing ``tools`` (not started)."""
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError as exc:
        raise RuntimeError("the MCP server needs the mcp SDK: pip install 'aar[agents]'") from exc
    server = MCPServer("aar", instructions="Tools of one aar researcher: submit predictions, share and "
                       "search findings, snapshot code. Findings are also files under findings/.",
                       log_level="WARNING")
    for name, description in DESCRIPTIONS.items():
        server.add_tool(_tool(getattr(tools, name)), name=name, description=description)
    return server


def run_stdio(config: McpConfig) -> None:
    """Serve one worker's tools over stdio until the client closes the pipe."""
    tools = WorkerTools(config)
    server = build_server(tools)
    if config.sync:
        tools.sync.start(wait=config.sync_wait)
    try:
        server.run("stdio")
    finally:
        tools.sync.stop()
        tools.hub.close()
        tools.evals.close()
