"""A researcher's tools: an MCP client session to the worker's ``aar mcp`` (host side), and the ``shell``
and ``edit_file`` tools of the ``llm`` researcher, which run inside the worker's sandbox.

The official MCP SDK's stdio client starts ``aar mcp`` for this worker (its token in that process's
environment, never in the sandbox) and calls the tools; each call and its result land in the
trajectory. A tool error comes back as :class:`ToolCallError` with the server's one-line reason.
"""

from __future__ import annotations

import math
import shutil
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aar.agents.base import Trajectory, jsonable
from aar.sandbox import Sandbox

MAX_RESULT_CHARS = 4000  # longer tool results are truncated in the trajectory (the caller gets them whole)


class ToolCallError(Exception):
    """A research tool refused or failed; the message is the server's reason."""


def aar_command() -> str:
    """The ``aar`` executable of this installation."""
    return shutil.which("aar", path=str(Path(sys.executable).parent)) or shutil.which("aar") or "aar"


def mcp_command(workspace: Path, hub_url: str, eval_url: str, token: str, aar_home: Path) -> tuple[list[str], dict]:
    """The worker's ``aar mcp`` command line and environment (the token lives only in that process)."""
    argv = [aar_command(), "mcp", "--workspace", str(workspace), "--hub-url", hub_url, "--eval-url", eval_url]
    env = {"AAR_WORKER_TOKEN": token, "AAR_HOME": str(aar_home), "AAR_QUIET": "1",
           "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    return argv, env


class McpTools:
    """``async with McpTools(...) as tools: await tools.call("get_leaderboard")``."""

    def __init__(self, trajectory: Trajectory, workspace: Path, hub_url: str, eval_url: str, token: str,
                 aar_home: Path, sync: bool = True) -> None:
        self.trajectory = trajectory
        self.workspace = workspace
        argv, self._env = mcp_command(workspace, hub_url, eval_url, token, aar_home)
        self._command, self._args = argv[0], [*argv[1:], "--sync" if sync else "--no-sync"]
        self._stack: AsyncExitStack | None = None
        self._session: Any = None
        self.names: set[str] = set()
        self.specs: list[dict[str, Any]] = []

    async def __aenter__(self) -> McpTools:
        try:
            from mcp.client.session import ClientSession
            from mcp.client.stdio import StdioServerParameters, stdio_client
        except ImportError as exc:
            raise RuntimeError("researchers need the MCP SDK: pip install 'aar[agents]'") from exc
        params = StdioServerParameters(command=self._command, args=self._args, env=self._env)
        self._stack = AsyncExitStack()
        try:
            read, write = await self._stack.enter_async_context(stdio_client(params))
            self._session = await self._stack.enter_async_context(ClientSession(read, write))
            await self._session.initialize()
            self.specs = [{"name": t.name, "description": t.description or "", "input_schema": t.input_schema}
                          for t in (await self._session.list_tools()).tools]
        except BaseException:
            await self._stack.aclose()  # never leave the server process and its reader tasks behind
            raise
        self.names = {s["name"] for s in self.specs}
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            await self._stack.aclose()

    async def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call one tool; returns its structured result, raises ``ToolCallError`` on a tool error."""
        self.trajectory.append("tool_call", name=name, arguments=jsonable(shorten(arguments)))
        result = await self._session.call_tool(name, arguments)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            self.trajectory.append("tool_result", name=name, ok=False, error=text[:MAX_RESULT_CHARS])
            raise ToolCallError(f"{name}: {text}")
        data = result.structured_content
        data = data.get("result", data) if isinstance(data, dict) else data
        self.trajectory.append("tool_result", name=name, ok=True, result=jsonable(shorten(data)))
        return data if isinstance(data, dict) else {"result": data}


def shorten(value: Any) -> Any:
    """``value`` with long strings and big mappings cut down for the journal."""
    if isinstance(value, str) and len(value) > MAX_RESULT_CHARS:
        return value[:MAX_RESULT_CHARS] + f"... [{len(value) - MAX_RESULT_CHARS} chars cut]"
    if isinstance(value, dict):
        if len(value) > 50:
            return {"_truncated": f"{len(value)} entries"}
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value[:50]]
    return value


# --- sandbox tools of the llm researcher: shell and file editing, executed inside the worker's sandbox --------

MAX_TOOL_OUTPUT = 20_000  # characters of output a model sees from one tool call

SHELL_SPEC = {
    "name": "shell",
    "description": "Run a shell command in your workspace (inside your sandbox: no network, no labels). "
                   "Returns the exit code and output; long output is truncated.",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["command"], "properties": {
        "command": {"type": "string", "description": "The command, run with sh -c."},
        "timeout": {"type": "number", "description": "Seconds (default 600)."}}},
}
EDIT_SPEC = {
    "name": "edit_file",
    "description": "View, create or edit a file of your workspace. command: view | create | str_replace | insert.",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["command", "path"], "properties": {
        "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"]},
        "path": {"type": "string", "description": "A path relative to the workspace."},
        "file_text": {"type": "string", "description": "create: the whole file."},
        "old_str": {"type": "string", "description": "str_replace: text that occurs exactly once."},
        "new_str": {"type": "string", "description": "str_replace / insert: the new text."},
        "insert_line": {"type": "integer", "description": "insert: after this line (0 = at the top)."}}},
}


def truncate(text: str, limit: int = MAX_TOOL_OUTPUT) -> str:
    """``text`` cut to ``limit`` characters (head and tail kept) with a note saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters cut] ...\n{text[-half:]}"


def run_shell(sandbox: Sandbox, command: str, timeout: float | None = None) -> tuple[str, bool]:
    """(output for the model, is_error) of one shell command in the sandbox."""
    if timeout is not None and not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        return f"timeout must be a positive number of seconds, not {timeout!r}", True
    res = sandbox.exec(["sh", "-c", command], timeout=min(timeout or 600.0, 3600.0))
    parts = [f"exit code {res.exit_code}" + (f" (stopped: {res.limit_hit} limit)" if res.limit_hit else "")]
    if res.stdout:
        parts.append("stdout:\n" + res.stdout + (" [truncated by the sandbox]" if res.stdout_truncated else ""))
    if res.stderr:
        parts.append("stderr:\n" + res.stderr + (" [truncated by the sandbox]" if res.stderr_truncated else ""))
    return truncate("\n".join(parts)), not res.ok


def edit_file(sandbox: Sandbox, command: str, path: str, file_text: str | None = None, old_str: str | None = None,
              new_str: str | None = None, insert_line: int | None = None) -> str:
    """Apply one edit through the sandbox's file API (links out of the workspace are never followed)."""
    if command == "create":
        if file_text is None:
            raise ValueError("create needs file_text")
        sandbox.write_file(path, file_text.encode())
        return f"created {path} ({len(file_text)} characters)"
    text = sandbox.read_file(path).decode(errors="replace")
    if command == "view":
        return truncate("\n".join(f"{n:6d}\t{line}" for n, line in enumerate(text.splitlines(), 1)))
    if command == "str_replace":
        if old_str is None or new_str is None:
            raise ValueError("str_replace needs old_str and new_str")
        count = text.count(old_str)
        if count != 1:
            raise ValueError(f"old_str occurs {count} times in {path}; it must occur exactly once")
        sandbox.write_file(path, text.replace(old_str, new_str).encode())
        return f"edited {path}"
    if command == "insert":
        if new_str is None or insert_line is None:
            raise ValueError("insert needs new_str and insert_line")
        lines = text.splitlines(keepends=True)
        if not 0 <= insert_line <= len(lines):
            raise ValueError(f"insert_line must be between 0 and {len(lines)}")
        lines.insert(insert_line, new_str if new_str.endswith("\n") else new_str + "\n")
        sandbox.write_file(path, "".join(lines).encode())
        return f"inserted {len(new_str.splitlines())} line(s) into {path} after line {insert_line}"
    raise ValueError(f"unknown command {command!r}")
