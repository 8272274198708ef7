"""Host-side sockets bound into sandboxes: only their owner may connect, and connections are capped."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

from aar.agents.forward import MAX_CONNECTIONS, CommandSocket


def test_command_socket_is_private_and_capped(tmp_path: Path) -> None:
    path = tmp_path / "echo.sock"
    with CommandSocket(path, ["cat"], {"PATH": "/usr/bin:/bin"}):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # not world-connectable: it carries a worker's powers
        conns = []
        for k in range(MAX_CONNECTIONS):
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(10)
            c.connect(str(path))
            c.sendall(f"hello {k}\n".encode())
            assert c.recv(100) == f"hello {k}\n".encode()  # each connection gets its own process
            conns.append(c)
        extra = socket.socket(socket.AF_UNIX)
        extra.settimeout(10)
        extra.connect(str(path))
        assert extra.recv(100) == b""  # over the cap: closed at once, no new host process
        for c in [*conns, extra]:
            c.close()
