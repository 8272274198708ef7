"""Opt-in (``-m api``): one short real model call per provider when its key is set (network and a key)."""

from __future__ import annotations

import os

import pytest

from aar.agents.providers import ToolSpec

pytestmark = pytest.mark.api
TOOLS = [ToolSpec("shell", "Run a shell command.", {"type": "object", "required": ["command"],
                                                      "properties": {"command": {"type": "string"}}})]
ASK = [{"role": "user", "content": "Call the shell tool once with the command `ls`, nothing else."}]


@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="ANTHROPIC_API_KEY is not set")
def test_anthropic_real_tool_call() -> None:
    from aar.agents.providers.anthropic import AnthropicProvider

    model = os.environ.get("AAR_TEST_ANTHROPIC_MODEL", "claude-haiku-4-5")
    turn = AnthropicProvider(model, os.environ["ANTHROPIC_API_KEY"]).complete("You are terse.", ASK, TOOLS, 200)
    assert turn.tool_calls and turn.tool_calls[0].name == "shell" and turn.input_tokens > 0


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set")
def test_openai_real_tool_call() -> None:
    from aar.agents.providers.openai import OpenAIProvider

    model = os.environ.get("AAR_TEST_OPENAI_MODEL", "gpt-4o-mini")
    turn = OpenAIProvider(model, os.environ["OPENAI_API_KEY"], os.environ.get("OPENAI_BASE_URL")).complete(
        "You are terse.", ASK, TOOLS, 200)
    assert turn.tool_calls and turn.tool_calls[0].name == "shell" and turn.input_tokens > 0
