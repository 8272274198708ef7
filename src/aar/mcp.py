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
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

import httpx
from pydantic import AliasChoices, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aar.evalserver.client import EvalClient, EvalError
from aar.hub.client import HubClient, HubError
from aar.hub.models import MAX_BODY_CHARS, METHOD_FAMILIES, FindingIn, FindingKind
from aar.hub.snapshots import DEFAULT_EXCLUDES, SnapshotError, extract_tarball, pack_workspace
from aar.hub.sync import FindingsSync, finding_filename, headline_pgr
from aar.sandbox.files import open_dir_beneath, read_beneath, relative_parts

MAX_PREDICTIONS_FILE = 64 * 2**20
IDEA_ENTRY_POINT = "run.py"  # an idea folder's one entry point: run.py --testbed NAME --out DIR
IDEA_EXCLUDES = ("predictions.jsonl",)  # outputs, not code
SHA256 = r"^[0-9a-f]{64}$"

# Tool parameters: descriptions and the limits the hub and eval server enforce, in the JSON schemas.
Testbed = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Testbed name.")]
Predictions = Annotated[dict[str, float] | None, Field(
    description="Inline {item_id: P(label 1)} for every test item (test_id and test_ood); or use "
                "predictions_file.")]
WorkspacePath = Annotated[str, Field(min_length=1, max_length=1024,
                                     description="A path inside your workspace (relative).")]
Seed = Annotated[int | None, Field(ge=0, lt=2**63, description="Seed of the run that made the predictions.")]
Note = Annotated[str | None, Field(max_length=4000, description="Free text stored with the submission.")]
SnapshotId = Annotated[str, Field(pattern=SHA256, description="A snapshot id: sha256 hex of its tarball.")]
IdeaDir = Annotated[str, Field(min_length=1, max_length=1024, description=(
    "The idea's folder in your workspace (e.g. ideas/my_idea), holding its entry point run.py: "
    "`python run.py --testbed NAME --out DIR` writes DIR/predictions.jsonl. It is snapshotted with the "
    "submission, so the idea can be re-run elsewhere."))]
Title = Annotated[str, Field(min_length=1, max_length=200, description="One-line title.")]
Kind = Annotated[FindingKind, Field(description="result (cites submission_ids) | hypothesis | insight | "
                                                "negative | error.")]
Body = Annotated[str, Field(max_length=MAX_BODY_CHARS, description="Markdown body.")]
Family = Annotated[Literal[METHOD_FAMILIES], Field(description="The method family of the idea.")]  # type: ignore[valid-type]
Tags = Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,47}$")]] | None,
                 Field(max_length=20, description="Up to 20 short tags.")]
Parents = Annotated[list[Annotated[int, Field(ge=1)]] | None, Field(
    max_length=20, description="Ids of findings this builds on.")]
SubmissionIds = Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]] | None, Field(
    max_length=20, description="Your eval-server submission ids (required for a result).")]
MethodConfig = Annotated[dict[str, Any] | None, Field(description="The method's configuration (JSON).")]
SearchQuery = Annotated[str, Field(min_length=1, max_length=500, description="Full-text query.")]
FindingId = Annotated[int, Field(ge=1, le=2**31 - 1, description="A finding id.")]
CommentBody = Annotated[str, Field(min_length=1, max_length=20_000, description="Markdown comment.")]
SnapshotNote = Annotated[str, Field(max_length=2000, description="A note stored with the snapshot.")]
Excludes = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]] | None, Field(
    max_length=100, description="Extra glob patterns to leave out (data, caches and venvs are already out).")]
WorkerId = Annotated[str, Field(min_length=1, max_length=128, description="A worker of your team.")]
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
    record: Path | None = Field(default=None, description="A host file (outside the workspace) where each "
                                "accepted submission is appended as a JSON line: the researcher's record of "
                                "submissions, independent of what the agent's client prints.")


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
        except httpx.InvalidURL:  # e.g. a megabyte-long argument that ends up in a URL
            raise ToolError("an argument is too long or not valid in a URL") from None

    return wrapper  # type: ignore[return-value]


def load_predictions(workspace: Path, rel: str) -> dict[str, float]:
    """Read ``{item_id: P(label 1)}`` from a workspace file: JSON (the mapping, or ``{"predictions":
    mapping}``) or JSONL (one ``{"id": ..., "prob": ...}`` per line; ``p`` / ``prediction`` also accepted).

    The file is opened beneath the workspace without following any link, must be a regular file of
    at most ``MAX_PREDICTIONS_FILE`` bytes, and is read once through that descriptor.
    """
    raw = read_beneath(workspace, rel, MAX_PREDICTIONS_FILE)
    try:
        text = raw.decode()
        if rel.endswith(".jsonl"):
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
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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

    def _relative(self, path: str) -> str:
        """``path`` relative to the workspace: an absolute path that names a place inside it (as Claude
        Code's tools write paths) loses that prefix, lexically; nothing is resolved on disk."""
        pure = PurePosixPath(path)
        if pure.is_absolute() and pure.is_relative_to(self.workspace):
            return pure.relative_to(self.workspace).as_posix()
        return path

    def submit_predictions(self, testbed: Testbed, predictions: Predictions = None,
                           predictions_file: WorkspacePath | None = None, seed: Seed = None,
                           note: Note = None, snapshot_id: SnapshotId | None = None,
                           idea_dir: IdeaDir | None = None) -> dict[str, Any]:
        if (predictions is None) == (predictions_file is None):
            raise ToolFailure("give exactly one of predictions (inline) or predictions_file (workspace path)")
        if idea_dir is not None and snapshot_id is not None:
            raise ToolFailure("give idea_dir (snapshotted now) or snapshot_id (an earlier snapshot), not both")
        if predictions_file is not None:
            predictions = load_predictions(self.workspace, self._relative(predictions_file))
        if idea_dir is not None:
            snapshot_id = self._snapshot_idea(idea_dir, note)
        sub = self.evals.submit(self.config.token, testbed, predictions or {}, seed, note, snapshot_id)
        out = sub.model_dump(mode="json")
        if self.config.record is not None:
            line = json.dumps({"submission_id": sub.id, "testbed": testbed, "snapshot_id": snapshot_id,
                               "released_pgr": (out.get("released") or {}).get("pgr")}) + "\n"
            fd = os.open(self.config.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, line.encode())  # one write of one line: a reader never sees half of it
            finally:
                os.close(fd)
        try:
            self.hub.post_event("submission", {"submission_id": sub.id})
        except HubError as exc:
            out["hub_warning"] = f"submission not logged on the hub: {exc}"
        return out

    def _snapshot_idea(self, idea_dir: str, note: str | None) -> str:
        """Pack the idea folder (walked from the workspace descriptor, links skipped) and upload it; the
        packed archive itself must hold the entry point, so a folder swapped after a check cannot pass."""
        root_fd = open_dir_beneath(self.workspace, self._relative(idea_dir))
        try:
            packed = pack_workspace(root_fd, DEFAULT_EXCLUDES + IDEA_EXCLUDES)
        finally:
            os.close(root_fd)
        if IDEA_ENTRY_POINT not in packed.names:
            raise ToolFailure(f"{idea_dir} holds no {IDEA_ENTRY_POINT} (a regular file at the folder's top): an "
                              f"idea folder's entry point is `python {IDEA_ENTRY_POINT} --testbed NAME --out DIR`")
        meta = self.hub.upload_snapshot(packed.data, note=f"idea {idea_dir}: {note or ''}"[:2000])
        return meta.id

    def get_leaderboard(self, testbed: Testbed | None = None) -> dict[str, Any]:
        return self.evals.leaderboard(self.config.token, testbed).model_dump(mode="json")

    def share_finding(self, title: Title, kind: Kind, body: Body = "", family: Family | None = None,
                      tags: Tags = None, parents: Parents = None, submission_ids: SubmissionIds = None,
                      config: MethodConfig = None, snapshot_id: SnapshotId | None = None) -> dict[str, Any]:
        fin = FindingIn.model_validate({
            "title": title, "kind": kind, "body": body, "family": family, "tags": tags or [],
            "parents": parents or [], "submission_ids": submission_ids or [], "config": config or {},
            "snapshot_id": snapshot_id})
        f = self.hub.post_finding(fin)
        self.sync.sync_once()
        return {"id": f.id, "file": f"findings/{finding_filename(f)}", "scores": f.scores,
                "created_at": f.created_at.isoformat()}

    def search_findings(self, query: SearchQuery, limit: Annotated[int, Field(ge=1, le=100, description=
                        "Most hits returned.")] = 10) -> dict[str, Any]:
        res = self.hub.search(query, max(1, min(limit, 100)))
        return {"query": query, "hits": [{
            "id": h.finding.id, "title": h.finding.title, "kind": h.finding.kind, "family": h.finding.family,
            "author": h.finding.author, "votes": h.finding.votes, "pgr": headline_pgr(h.finding.scores),
            "snippet": h.snippet, "file": f"findings/{finding_filename(h.finding)}"} for h in res.hits]}

    def read_finding(self, finding_id: FindingId) -> dict[str, Any]:
        return self.hub.finding(finding_id).model_dump(mode="json")

    def comment_on_finding(self, finding_id: FindingId, body: CommentBody) -> dict[str, Any]:
        return self.hub.comment(finding_id, body).model_dump(mode="json")

    def vote_on_finding(self, finding_id: FindingId, value: Annotated[Literal[-1, 0, 1], Field(
                        description="1 up, -1 down, 0 withdraws your vote.")]) -> dict[str, Any]:
        f = self.hub.vote(finding_id, value)
        return {"id": f.id, "votes": f.votes, "my_vote": f.my_vote}

    def upload_snapshot(self, note: SnapshotNote = "", parent_id: SnapshotId | None = None,
                        finding_id: FindingId | None = None, path: WorkspacePath = ".",
                        exclude: Excludes = None) -> dict[str, Any]:
        root_fd = open_dir_beneath(self.workspace, self._relative(path))
        try:
            packed = pack_workspace(root_fd, DEFAULT_EXCLUDES + tuple(exclude or ()))
        finally:
            os.close(root_fd)
        meta = self.hub.upload_snapshot(packed.data, note=note, parent_id=parent_id, finding_id=finding_id)
        return {**meta.model_dump(mode="json"), "skipped": packed.skipped[:50]}

    def list_snapshots(self, worker: WorkerId | None = None, limit: Annotated[int, Field(
                       ge=1, le=500, description="Most snapshots returned, newest first.")] = 20) -> dict[str, Any]:
        return {"snapshots": [s.model_dump(mode="json") for s in self.hub.snapshots(worker, limit)]}

    def download_snapshot(self, snapshot_id: SnapshotId, target: WorkspacePath | None = None) -> dict[str, Any]:
        dest = "/".join(relative_parts(self._relative(target or f"snapshots/{snapshot_id[:12]}"),
                                       allow_root=True)) or "."
        files = extract_tarball(self.hub.download_snapshot(snapshot_id), Path(dest), self.workspace)
        return {"snapshot_id": snapshot_id, "target": dest, "files": len(files),
                "sample": sorted(files)[:20]}


DESCRIPTIONS = {
    "submit_predictions": "Score test predictions {item_id: P(label 1)} on the eval server, inline or from a "
                          "JSON / JSONL file in your workspace. Give idea_dir (the idea's folder with its "
                          "run.py) so the idea is snapshotted with it and can be re-run elsewhere. Returns "
                          "the submission id and released scores.",
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
        _strict(server._tool_manager._tools[name])
    return server


def one_line(exc: ValidationError) -> str:
    """A validation error as one line: ``field: rule; field: rule`` (no pydantic dump, no input echo)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:4]:
        where = ".".join(str(x) for x in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - len(parts)
    return "invalid arguments: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _strict(tool: Any) -> None:
    """Refuse unknown arguments (``additionalProperties: false``) and report bad ones in one line."""
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.server.mcpserver.tools.base import Tool

    base = tool.fn_metadata.arg_model
    strict: Any = type(base.__name__, (base,), {
        "model_config": ConfigDict(extra="forbid", arbitrary_types_allowed=True), "__module__": __name__})
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)

    class OneLineTool(Tool):
        async def run(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().run(*args, **kwargs)
            except ToolError as exc:
                if isinstance(exc.__cause__, ValidationError):
                    raise ToolError(one_line(exc.__cause__)) from None
                raise

    tool.__class__ = OneLineTool


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
