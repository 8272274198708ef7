"""Dashboard tests reuse the researcher tests' live services (``tests/agents/agentkit.py``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agents"))

from agentkit import live  # noqa: E402

__all__ = ["live"]
