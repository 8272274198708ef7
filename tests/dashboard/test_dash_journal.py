"""Byte-offset trajectory reading: tail pages, lines after an offset, one line, search, a torn last line,
and the incremental step cache (checked against aar.agents.base.read_trajectory)."""

from __future__ import annotations

from pathlib import Path

from aar.agents.base import Trajectory, read_trajectory
from aar.dashboard import journal


def write(path: Path, n: int) -> Trajectory:
    tr = Trajectory(path)
    for k in range(n):
        tr.append("message", role="assistant", text=f"line {k} " + "x" * (k % 7) * 50)
    return tr


def test_pages_cover_the_file_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write(path, 1000)
    seen, before = [], None
    while True:
        lines, start = journal.tail(path, before, limit=64)
        seen = [x.step.data["text"].split()[1] for x in lines if x.step] + seen
        if start == 0:
            break
        before = start
    assert seen == [str(k) for k in range(1000)]
    last, _ = journal.tail(path, None, limit=5)
    assert [x.step.data["text"].split()[1] for x in last if x.step] == ["995", "996", "997", "998", "999"]


def test_after_line_at_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write(path, 10)
    size = path.stat().st_size
    with path.open("a") as f:
        f.write('{"schema_version": 1, "type": "mess')  # a writer mid-line
    lines, nxt = journal.after(path, 0)
    assert len(lines) == 10 and nxt == size
    assert journal.after(path, nxt) == ([], nxt)  # the torn line is not returned yet
    tail, _ = journal.tail(path, None, 3)
    assert [x.end for x in tail][-1] == size
    assert journal.line_at(path, lines[3].offset).step == lines[3].step  # type: ignore[union-attr]
    assert journal.line_at(path, lines[3].offset + 1) is None  # not the start of a line


def test_search_and_cache(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tr = write(path, 200)
    tr.append("tool_result", name="shell", ok=True, result="Ünïcode and <b>tags</b>")
    assert [x.step.type for x in journal.search(path, "ünïcode")] == ["tool_result"]  # type: ignore[union-attr]
    assert len(list(journal.search(path, "LINE 1", limit=5))) == 5
    cache = journal.StepCache()
    assert cache.steps(path) == [journal.light(s) for s in read_trajectory(path)]
    write(path, 3)  # appended: only the new bytes are parsed
    assert cache.steps(path) == [journal.light(s) for s in read_trajectory(path)]
    steps = cache.steps(path)
    assert steps[200].type == "tool_result" and steps[200].data == {}  # transcript text is not kept in memory
    assert steps[0].data == {"role": "assistant"}
    path.write_text("")  # replaced: read again
    assert cache.steps(path) == []
