"""Run one W2S method on a testbed's public view: what an agent can do in its sandbox.

``run_experiment`` returns test predictions from label-free inputs (the published splits and the
weak model's outputs); scoring them needs labels and happens on the trusted side (the eval server,
or ``aar.labels.baselines`` for the admin).
"""

from __future__ import annotations

from aar.config import Settings, get_settings
from aar.w2s.methods import METHODS, ExperimentContext, MethodOutput
from aar.w2s.models import ModelSpec, build_model
from aar.w2s.testbeds import default_models
from aar.w2s.testbeds.base import Testbed, load_testbed


def make_context(tb: Testbed, strong: ModelSpec, seed: int, settings: Settings) -> ExperimentContext:
    """A method's context over ``tb`` with fresh ``strong`` models built on the shared feature cache."""
    return ExperimentContext(tb, lambda: build_model(strong, tb.format, settings.cache_dir), seed)


def run_method(name: str, ctx: ExperimentContext) -> MethodOutput:
    """Run one registered method; unknown names raise ``ValueError`` listing the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name](ctx)


def run_experiment(
    method: str, testbed: str, seed: int = 0, strong: ModelSpec | None = None, settings: Settings | None = None
) -> MethodOutput:
    """Load a prepared testbed's public view and run ``method`` on it with the testbed's strong model."""
    settings = settings or get_settings()
    tb = load_testbed(testbed, settings)
    return run_method(method, make_context(tb, strong or default_models(testbed)[1], seed, settings))
