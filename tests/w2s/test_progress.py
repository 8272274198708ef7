"""Progress reporting: log lines when stderr is not a terminal, silence under AAR_QUIET."""

from __future__ import annotations

import pytest

from aar.w2s.progress import progress_bar


def test_logs_get_a_final_line_and_quiet_gets_none(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AAR_QUIET", raising=False)
    with progress_bar("embedding 500 texts", 500) as bar:
        for _ in range(5):
            bar.advance(100)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("embedding 500 texts: 500/500")
    assert len(lines) <= 2  # at most one line per 30 s, plus the last one
    monkeypatch.setenv("AAR_QUIET", "1")
    with progress_bar("embedding 500 texts", 500) as bar:
        bar.advance(500)
    assert capsys.readouterr().err == ""
