"""W2S methods: small modules, one idea each, registered by name in ``METHODS``."""

from aar.w2s.methods import confident, critic, elicitation, logconf, reference, vanilla  # noqa: F401
from aar.w2s.methods.base import METHOD_DOCS, METHODS, ExperimentContext, MethodNotApplicable, MethodOutput

__all__ = ["METHODS", "METHOD_DOCS", "ExperimentContext", "MethodNotApplicable", "MethodOutput"]
