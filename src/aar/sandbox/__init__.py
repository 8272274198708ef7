"""Sandboxes for researcher agents: the ``Sandbox`` contract, the ``bwrap`` and ``local`` backends.

``get_sandbox(kind, config)`` builds one; ``worker_config(workspace, ...)`` is the config every
worker uses. Third-party backends register under the ``aar.sandboxes`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from aar.sandbox.base import ExecResult, Limits, Sandbox, SandboxConfig, SandboxError, SandboxUnavailable
from aar.sandbox.policy import worker_config

__all__ = ["ExecResult", "Limits", "Sandbox", "SandboxConfig", "SandboxError", "SandboxUnavailable",
           "get_sandbox", "register", "sandbox_kinds", "worker_config"]

_REGISTRY: dict[str, Callable[..., Sandbox]] = {}
_LOADED: list[bool] = []


def register(kind: str) -> Callable[[Callable[..., Sandbox]], Callable[..., Sandbox]]:
    """Decorator: make a sandbox class available to ``get_sandbox(kind)``."""
    def deco(factory: Callable[..., Sandbox]) -> Callable[..., Sandbox]:
        _REGISTRY[kind] = factory
        return factory
    return deco


def _load() -> None:
    if _LOADED:
        return
    _LOADED.append(True)
    from aar.sandbox.bwrap import BwrapSandbox
    from aar.sandbox.local import LocalSandbox

    _REGISTRY.setdefault("bwrap", BwrapSandbox)
    _REGISTRY.setdefault("local", LocalSandbox)
    for ep in entry_points(group="aar.sandboxes"):
        _REGISTRY.setdefault(ep.name, ep.load())


def sandbox_kinds() -> list[str]:
    """The registered backend names."""
    _load()
    return sorted(_REGISTRY)


def get_sandbox(kind: str, config: SandboxConfig, **kwargs: object) -> Sandbox:
    """A sandbox of backend ``kind`` (``bwrap``, ``local``, or a registered one) for ``config``."""
    _load()
    if kind not in _REGISTRY:
        raise SandboxError(f"unknown sandbox backend {kind!r}; choose from {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[kind](config, **kwargs)
