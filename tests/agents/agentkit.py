"""Researcher-test helpers (a uniquely named module): live eval server and hub over the small testbed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.servicekit import serve_in_thread


@dataclass
class Live:
    settings: Settings
    eval_url: str
    hub_url: str
    tokens: TokenStore


@pytest.fixture(scope="module")
def live(small_home: Settings) -> Iterator[Live]:
    """The eval server and hub of the small testbed's AAR_HOME (baselines computed once if missing)."""
    from aar.evalserver.app import create_app as eval_app
    from aar.hub.app import HubConfig
    from aar.hub.app import create_app as hub_app
    from aar.labels.baselines import run_baselines
    from aar.labels.references import load_baselines
    from aar.w2s.testbeds.base import TestbedError

    try:
        load_baselines("wordsense", small_home)
    except TestbedError:
        run_baselines("wordsense", methods=["vanilla"], seeds=1, progress=False, settings=small_home)
    tokens = TokenStore(make_engine(small_home.sqlite_url("auth")))
    with serve_in_thread(eval_app(small_home)) as eval_url, \
            serve_in_thread(hub_app(small_home, HubConfig(eval_url=eval_url))) as hub_url:
        yield Live(small_home, eval_url, hub_url, tokens)


def bwrap_or_skip() -> None:
    import os

    from aar.sandbox.bwrap import bwrap_problem

    problem = bwrap_problem(os.geteuid() == 0)
    if problem:
        pytest.skip(f"bwrap unavailable: {problem}")
