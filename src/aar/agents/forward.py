"""Byte forwarders between a sandbox and the host's unix sockets (the only way out of a sandbox).

Inside the sandbox (``python -m aar.agents.forward``):
  * ``tcp PORT SOCKET [-- CMD ...]``: listen on ``127.0.0.1:PORT`` of the sandbox's own network
    namespace and forward each connection to ``SOCKET`` (the host's model-API proxy), so a client that
    only speaks TCP (the Claude Code CLI, via ``ANTHROPIC_BASE_URL``) reaches it; with a command, bind
    first, run the command, and stop with it;
  * ``stdio SOCKET``: connect stdin/stdout to ``SOCKET`` (the worker's MCP endpoint), so a stdio MCP
    client inside the sandbox talks to the MCP server running on the host.
On the host, :class:`CommandSocket` serves a unix socket by starting a command per connection (the
worker's ``aar mcp``, with its token in that process's environment only) and piping bytes both ways.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()


async def tcp_to_unix(port: int, socket_path: str, command: list[str] | None = None) -> int:
    """Forward every connection to ``127.0.0.1:port`` to the unix socket ``socket_path``.

    With ``command``, the port is bound first, then the command runs (stdio inherited) and forwarding
    stops when it exits; its exit code is returned. Without, forward forever.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        writer.close()
        up_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        if command is None:
            await server.serve_forever()
            return 0
        child = await asyncio.create_subprocess_exec(*command)
        return await child.wait()


async def stdio_to_unix(socket_path: str) -> None:
    """Connect this process's stdin / stdout to the unix socket ``socket_path`` until either side closes."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_unix_connection(socket_path)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    out_transport, out_protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout)
    stdout = asyncio.StreamWriter(out_transport, out_protocol, None, loop)
    done, _ = await asyncio.wait([asyncio.create_task(_pump(stdin, writer)),
                                  asyncio.create_task(_pump(reader, stdout))], return_when=asyncio.FIRST_COMPLETED)


MAX_CONNECTIONS = 4  # an agent that opens connections in a loop cannot start unbounded host processes


def restrict_socket(path: Path, owner: tuple[int, int] | None) -> None:
    """Only the sandbox user may connect: mode 0600, owned by ``owner`` (uid, gid) when given."""
    if owner is not None:
        os.chown(path, *owner)
    os.chmod(path, 0o600)


class CommandSocket:
    """Host side: serve ``path`` by running ``argv`` (with ``env``) for each connection, in a background thread.

    Only ``owner`` (the sandbox user) may connect, and at most ``MAX_CONNECTIONS`` at once.
    """

    def __init__(self, path: Path, argv: list[str], env: dict[str, str], owner: tuple[int, int] | None = None) -> None:
        self.path, self.argv, self.env, self.owner = path, argv, env, owner
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"socket:{path.name}")
        self._server: asyncio.AbstractServer | None = None
        self._procs: set[asyncio.subprocess.Process] = set()

    def __enter__(self) -> CommandSocket:
        self.path.unlink(missing_ok=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"could not serve {self.path}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop)
        self._thread.join(10)
        self.path.unlink(missing_ok=True)

    def _stop(self) -> None:
        for proc in self._procs:
            if proc.returncode is None:
                proc.kill()
        if self._server is not None:
            self._server.close()
        self._loop.call_later(0.5, self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_unix_server(self._handle, str(self.path)))
        restrict_socket(self.path, self.owner)
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._procs) >= MAX_CONNECTIONS:
            writer.close()
            return
        proc = await asyncio.create_subprocess_exec(*self.argv, env=self.env, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self._procs.add(proc)
        assert proc.stdin is not None and proc.stdout is not None
        stdin_writer = proc.stdin
        await asyncio.gather(_pump(reader, stdin_writer), _pump(proc.stdout, writer))
        writer.close()
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        self._procs.discard(proc)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 3 and args[0] == "tcp" and (len(args) == 3 or args[3] == "--"):
        return asyncio.run(tcp_to_unix(int(args[1]), args[2], args[4:] or None))
    elif len(args) == 2 and args[0] == "stdio":
        asyncio.run(stdio_to_unix(args[1]))
    else:
        print("usage: python -m aar.agents.forward tcp PORT SOCKET [-- CMD ...] | stdio SOCKET", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
