"""A researcher's research tools from the host side: an MCP client session to the worker's ``aar mcp``.

The official MCP SDK's stdio client starts ``aar mcp`` for this worker (its token in that process's
environment, never in the sandbox) and calls the tools; each call and its result land in the
trajectory. A tool error comes back as :class:`ToolCallError` with the server's one-line reason.
"""

from __future__ import annotations

import shutil
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aar.agents.base import Trajectory, jsonable

MAX_RESULT_CHARS = 4000  # longer tool results are truncated in the trajectory (the caller gets them whole)


class ToolCallError(Exception):
    """A research tool refused or failed; the message is the server's reason."""


def aar_command() -> str:
    """The ``aar`` executable of this installation."""
    return shutil.which("aar", path=str(Path(sys.executable).parent)) or shutil.which("aar") or "aar"


class McpTools:
    """``async with McpTools(...) as tools: await tools.call("get_leaderboard")``."""

    def __init__(self, trajectory: Trajectory, workspace: Path, hub_url: str, eval_url: str, token: str,
                 aar_home: Path, sync: bool = True) -> None:
        self.trajectory = trajectory
        self.workspace = workspace
        self._args = ["mcp", "--workspace", str(workspace), "--hub-url", hub_url, "--eval-url", eval_url,
                      "--sync" if sync else "--no-sync"]
        self._env = {"AAR_WORKER_TOKEN": token, "AAR_HOME": str(aar_home), "AAR_QUIET": "1",
                     "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
        self._stack: AsyncExitStack | None = None
        self._session: Any = None
        self.names: set[str] = set()

    async def __aenter__(self) -> McpTools:
        try:
            from mcp.client.session import ClientSession
            from mcp.client.stdio import StdioServerParameters, stdio_client
        except ImportError as exc:
            raise RuntimeError("researchers need the MCP SDK: pip install 'aar[agents]'") from exc
        params = StdioServerParameters(command=aar_command(), args=self._args, env=self._env)
        self._stack = AsyncExitStack()
        read, write = await self._stack.enter_async_context(stdio_client(params))
        self._session = await self._stack.enter_async_context(ClientSession(read, write))
        await self._session.initialize()
        self.names = {t.name for t in (await self._session.list_tools()).tools}
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            await self._stack.aclose()

    async def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        """Call one tool; returns its structured result, raises ``ToolCallError`` on a tool error."""
        self.trajectory.append("tool_call", name=name, arguments=jsonable(_short(arguments)))
        result = await self._session.call_tool(name, arguments)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            self.trajectory.append("tool_result", name=name, ok=False, error=text[:MAX_RESULT_CHARS])
            raise ToolCallError(f"{name}: {text}")
        data = result.structured_content
        data = data.get("result", data) if isinstance(data, dict) else data
        self.trajectory.append("tool_result", name=name, ok=True, result=jsonable(_short(data)))
        return data if isinstance(data, dict) else {"result": data}


def _short(value: Any) -> Any:
    """``value`` with long strings and big mappings cut down for the journal."""
    if isinstance(value, str) and len(value) > MAX_RESULT_CHARS:
        return value[:MAX_RESULT_CHARS] + f"... [{len(value) - MAX_RESULT_CHARS} chars cut]"
    if isinstance(value, dict):
        if len(value) > 50:
            return {"_truncated": f"{len(value)} entries"}
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value[:50]]
    return value
