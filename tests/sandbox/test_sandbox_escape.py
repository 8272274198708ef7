"""The escape suite: every attempt blocked under bwrap, every isolation attempt succeeding under local."""

from __future__ import annotations

import pytest

from aar.sandbox.attempts import ATTEMPTS
from aar.sandbox.check import CheckReport, run_check
from conftest import needs_bwrap

NAMES = [a.name for a in ATTEMPTS]


@pytest.fixture(scope="module")
def bwrap_report() -> CheckReport:
    return run_check("bwrap")


@pytest.fixture(scope="module")
def local_report() -> CheckReport:
    return run_check("local")


def test_suite_is_large_enough() -> None:
    assert len(ATTEMPTS) >= 20
    assert len(set(NAMES)) == len(NAMES)


@needs_bwrap
@pytest.mark.parametrize("name", NAMES)
def test_blocked_under_bwrap(bwrap_report: CheckReport, name: str) -> None:
    a = next(r for r in bwrap_report.attempts if r.name == name)
    if a.blocked is None:
        pytest.skip(a.detail)
    assert a.blocked and a.ok, f"{name}: {a.detail}"


@needs_bwrap
def test_bwrap_suite_passes_quickly(bwrap_report: CheckReport) -> None:
    assert bwrap_report.passed
    assert bwrap_report.duration_s < 120  # about 15 s on an idle machine; shared CI cores can be slower


@pytest.mark.parametrize("name", [a.name for a in ATTEMPTS if a.kind == "isolation"])
def test_isolation_attempt_succeeds_under_local(local_report: CheckReport, name: str) -> None:
    """Proof that each check can fail: with no isolation the attempt really escapes."""
    a = next(r for r in local_report.attempts if r.name == name)
    if a.blocked is None:
        pytest.skip(a.detail)
    assert a.blocked is False, f"{name} did not escape without isolation: {a.detail}"


def test_check_cleans_up(local_report: CheckReport) -> None:
    from pathlib import Path

    assert not Path(local_report.root).exists()
    lingering = [p for p in Path("/proc").glob("[0-9]*") if _cmd(p).find("aar-check-decoy") >= 0]
    assert not lingering


def _cmd(p: object) -> str:
    from pathlib import Path

    try:
        return Path(str(p), "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
