"""MCP tool schemas carry descriptions and the services' limits; bad arguments fail in one line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from aar.mcp import DESCRIPTIONS, McpConfig, WorkerTools, _tool, build_server

pytest.importorskip("mcp.server.mcpserver")


@pytest.fixture
def server(tmp_path: Path) -> Any:
    ws = tmp_path / "ws"
    ws.mkdir()
    tools = WorkerTools(McpConfig(token="aar_x", workspace=ws, state_dir=tmp_path / "state",
                                  hub_url="http://127.0.0.1:9", eval_url="http://127.0.0.1:9"))
    yield build_server(tools)
    tools.hub.close()
    tools.evals.close()


def schema(server: Any, name: str) -> dict[str, Any]:
    return dict(server._tool_manager._tools[name].parameters)


def prop(s: dict[str, Any], name: str) -> dict[str, Any]:
    """A property's schema with an optional (anyOf [..., null]) unwrapped."""
    p = s["properties"][name]
    inner = next((a for a in p.get("anyOf", []) if a.get("type") != "null"), {})
    return {**inner, **{k: v for k, v in p.items() if k != "anyOf"}}


def test_every_parameter_is_described_and_unknown_ones_are_refused(server: Any) -> None:
    for name in DESCRIPTIONS:
        s = schema(server, name)
        assert s.get("additionalProperties") is False, name
        for pname in s["properties"]:
            assert prop(s, pname).get("description"), f"{name}.{pname} has no description"


def test_hub_limits_are_in_the_schemas(server: Any) -> None:
    share = schema(server, "share_finding")
    assert prop(share, "title")["maxLength"] == 200 and prop(share, "body")["maxLength"] == 100_000
    assert "ensemble" in prop(share, "family")["enum"] and prop(share, "tags")["maxItems"] == 20
    assert prop(schema(server, "search_findings"), "query")["maxLength"] == 500
    assert prop(schema(server, "search_findings"), "limit")["maximum"] == 100
    assert prop(schema(server, "download_snapshot"), "snapshot_id")["pattern"] == "^[0-9a-f]{64}$"
    limit = prop(schema(server, "list_snapshots"), "limit")
    assert limit["minimum"] == 1 and limit["maximum"] == 500


@pytest.mark.parametrize(("tool", "args", "needle"), [
    ("share_finding", {"title": "x" * 300, "kind": "insight"}, "title: String should have at most 200"),
    ("share_finding", {"title": "ok", "kind": "insight", "bogus": 1}, "bogus: Extra inputs are not permitted"),
    ("share_finding", {"title": "ok", "kind": "insight", "family": "magic"}, "family"),
    ("search_findings", {"query": "q" * 1_000_000}, "query: String should have at most 500"),
    ("download_snapshot", {"snapshot_id": "x" * 1_000_000}, "snapshot_id: String should match pattern"),
    ("read_finding", {"finding_id": 10**12}, "finding_id"),
])
def test_bad_arguments_fail_in_one_line(server: Any, tool: str, args: dict[str, Any], needle: str) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    with pytest.raises(ToolError) as err:
        asyncio.run(server.call_tool(tool, args))
    message = str(err.value)
    assert needle in message and "\n" not in message and len(message) < 400
    assert "x" * 50 not in message  # the input is not echoed back


def test_invalid_url_is_a_readable_tool_error() -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    def fetch(arg: str) -> None:
        httpx.get("http://127.0.0.1:9/v1/" + arg, timeout=1)

    with pytest.raises(httpx.InvalidURL):  # control: what a megabyte-long path argument raises
        fetch("a" * 1_000_000)
    with pytest.raises(ToolError, match="too long or not valid in a URL"):
        _tool(fetch)("a" * 1_000_000)


def test_the_eval_client_lives_with_the_server_but_loads_no_label_code() -> None:
    """The hub and the MCP tools use ``aar.evalserver.client``; that must not import the label side."""
    import subprocess
    import sys

    code = ("import sys, aar.mcp, aar.hub.app; from aar.evalserver.client import EvalClient; "
            "bad = [m for m in sys.modules if m.startswith(('aar.evalserver.labels', 'aar.evalserver.service', "
            "'aar.labels'))]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
