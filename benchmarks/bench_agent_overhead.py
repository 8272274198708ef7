"""Overhead per agent turn of the LLM researchers' plumbing, on loopback (no model, no network).

* model-API proxy: one non-streaming ``POST /v1/messages`` to a local fake upstream, directly vs through
  the host-side proxy on a unix socket (the key injected) and the in-sandbox-style TCP forwarder;
* MCP: one ``get_leaderboard`` tool call through the worker's MCP server over stdio (as ``evolve`` and
  ``llm`` use it) vs through the unix-socket endpoint and the stdio bridge (as Claude Code uses it),
  against a direct HTTP call to the eval server.

    .venv/bin/python benchmarks/bench_agent_overhead.py [--n 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

os.environ.setdefault("AAR_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agents"))


def ms(samples: list[float]) -> str:
    p90 = sorted(samples)[int(0.9 * len(samples))]
    return f"median {statistics.median(samples) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_proxy(n: int, tmp: Path) -> None:
    from fake_anthropic import Script, fake_messages_api

    from aar.agents.forward import tcp_to_unix
    from aar.agents.providers.base import Price
    from aar.agents.proxy import Meter, ModelProxy
    from aar.servicekit import serve_in_thread

    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    script = Script([])
    with serve_in_thread(fake_messages_api(script)) as upstream, ModelProxy(
        tmp / "m.sock", upstream, "k", Meter({"m": Price(input=3.0, output=15.0)})
    ):
        port = free_port()
        loop = asyncio.new_event_loop()
        threading.Thread(target=lambda: loop.run_until_complete(tcp_to_unix(port, str(tmp / "m.sock"))),
                         daemon=True).start()
        time.sleep(0.5)
        results = {}
        for name, url in (("direct", upstream), ("proxy + forwarder", f"http://127.0.0.1:{port}")):
            with httpx.Client(base_url=url) as c:
                c.post("/v1/messages", json=body)
                samples = []
                for _ in range(n):
                    t = time.perf_counter()
                    assert c.post("/v1/messages", json=body).status_code == 200
                    samples.append(time.perf_counter() - t)
            results[name] = samples
            print(f"model call, {name:18s}: {ms(samples)}")
        extra = statistics.median(results["proxy + forwarder"]) - statistics.median(results["direct"])
        print(f"proxy overhead per model call: {extra * 1000:.2f} ms")


def bench_mcp(n: int, tmp: Path) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from aar.agents.forward import CommandSocket
    from aar.agents.tools import mcp_command
    from aar.auth import TokenStore
    from aar.config import Settings
    from aar.db import make_engine
    from aar.evalserver.app import create_app as eval_app
    from aar.evalserver.client import EvalClient
    from aar.hub.app import HubConfig
    from aar.hub.app import create_app as hub_app
    from aar.servicekit import serve_in_thread

    settings = Settings(home=tmp / "home")
    token = TokenStore(make_engine(settings.sqlite_url("auth"))).create("w1", "bench")
    ws = tmp / "ws"
    ws.mkdir()
    with serve_in_thread(eval_app(settings)) as eval_url, \
            serve_in_thread(hub_app(settings, HubConfig(eval_url=eval_url))) as hub_url:
        client = EvalClient(eval_url)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            client.leaderboard(token)
            samples.append(time.perf_counter() - t)
        client.close()
        print(f"get_leaderboard, direct HTTP        : {ms(samples)}")
        argv, env = mcp_command(ws, hub_url, eval_url, token, settings.home)
        direct = StdioServerParameters(command=argv[0], args=[*argv[1:], "--no-sync"], env=env)
        with CommandSocket(tmp / "mcp.sock", [*argv, "--no-sync"], env):
            bridged = StdioServerParameters(command=sys.executable,
                                            args=["-m", "aar.agents.forward", "stdio", str(tmp / "mcp.sock")])
            for name, params in (("MCP over stdio", direct), ("MCP socket + bridge", bridged)):
                samples = asyncio.run(_calls(params, n, stdio_client, ClientSession))
                print(f"get_leaderboard, {name:19s}: {ms(samples)}")


async def _calls(params, n, stdio_client, session_cls) -> list[float]:  # type: ignore[no-untyped-def]
    async with stdio_client(params) as (r, w), session_cls(r, w) as s:
        await s.initialize()
        await s.call_tool("get_leaderboard", {})
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await s.call_tool("get_leaderboard", {})
            out.append(time.perf_counter() - t)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aar-bench-", dir="/tmp") as d:
        bench_proxy(args.n, Path(d))
        bench_mcp(args.n, Path(d))


if __name__ == "__main__":
    main()
