"""Import contracts: the research side never imports the label side; the eval server starts without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aar"

# package (file or folder under src/aar) -> module prefixes it must never import, anywhere in its code
CONTRACTS = {
    "w2s": ("aar.labels", "aar.evalserver", "aar.hub", "aar.mcp"),
    "hub": ("aar.labels", "aar.evalserver", "aar.w2s"),
    "mcp.py": ("aar.labels", "aar.evalserver", "aar.w2s"),
    # researchers and the orchestrator work on the public side: services only through their clients
    "agents": ("aar.labels", "aar.evalserver"),
    "orchestrator": ("aar.labels", "aar.evalserver"),
    # the eval server's HTTP client and wire models: what the hub and MCP may use of the eval server
    "evalserver/client.py": ("aar.labels", "aar.w2s", "aar.evalserver.app", "aar.evalserver.service"),
    "evalserver/models.py": ("aar.labels", "aar.w2s", "aar"),
}
# the eval server's public surface: importing these does not load the server, its labels or models
ALLOWED = ("aar.evalserver.client", "aar.evalserver.models")


def imported_modules(path: Path, root: Path = SRC.parent) -> set[str]:
    """Every module a file imports, at any depth (functions included), with relative imports resolved."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def files_of(target: str) -> list[Path]:
    path = SRC / target
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("target", sorted(CONTRACTS))
def test_package_imports_nothing_forbidden(target: str) -> None:
    files = files_of(target)
    assert files, f"{target} not found"
    bad = [
        f"{f.relative_to(SRC)} imports {m}"
        for f in files
        for m in sorted(imported_modules(f))
        if m.startswith(CONTRACTS[target]) and not m.startswith(ALLOWED)
    ]
    assert not bad, "\n".join(bad)


def test_only_the_baselines_runner_imports_the_sealed_reference() -> None:
    """The sealed reference (``aar.labels.sealed``) is masked in every sandbox: nothing a worker runs may need it."""
    users = sorted(str(f.relative_to(SRC)) for f in SRC.rglob("*.py")
                   if "sealed" not in f.parts and any(m.startswith("aar.labels.sealed") for m in imported_modules(f)))
    assert users == ["labels/baselines.py"]


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """Control: a function-level import of the label side is found."""
    fake = tmp_path / "aar" / "w2s" / "probe.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from aar.labels.store import read_label_rows\n    from ..evalserver import app\n")
    mods = imported_modules(fake, root=tmp_path)
    assert "aar.labels.store" in mods and "aar.evalserver.app" in mods


def test_eval_server_imports_without_torch() -> None:
    code = "import sys, aar.evalserver.app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
