"""The ``cli_path`` the Agent SDK runs: exec the Claude Code CLI inside the worker's sandbox.

``python -m aar.agents.claude_launch SPEC.json ARGS...`` reads the bwrap command line written by
:class:`aar.agents.claude.ClaudeResearcher` (its last element is a placeholder for the CLI's arguments),
puts the SDK's arguments there, and execs it with the sandbox's environment plus the SDK's own
``CLAUDE_CODE_*`` / ``CLAUDE_AGENT_SDK_*`` variables (never a key or token). stdin / stdout stay
the SDK's pipes, so the SDK drives the sandboxed CLI exactly as it would drive a local one. Before the
exec it leads a new session and writes its pid to the spec's ``pidfile``, so the host's
:class:`aar.agents.session_guard.SessionGuard` can kill the whole tree.
"""

from __future__ import annotations

import json
import os
import sys

PLACEHOLDER = "__AAR_CLI_ARGS__"
PASS_PREFIXES = ("CLAUDE_CODE_", "CLAUDE_AGENT_SDK_", "MCP_")
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m aar.agents.claude_launch SPEC.json [CLI ARGS...]", file=sys.stderr)
        return 2
    with open(args[0]) as f:
        spec = json.load(f)
    command: list[str] = spec["argv"]
    at = command.index(PLACEHOLDER)
    command = command[:at] + args[1:] + command[at + 1:]
    env = dict(spec["env"])
    env.update({k: v for k, v in os.environ.items()
                if k.startswith(PASS_PREFIXES) and not any(w in k for w in SECRET_WORDS)})
    if spec.get("pidfile"):
        os.setsid()
        with open(spec["pidfile"], "w") as f:
            f.write(str(os.getpid()))
    os.execvpe(command[0], command, env)
    return 127  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
