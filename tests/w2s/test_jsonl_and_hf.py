"""User JSONL testbeds and the registry (the Hugging Face loaders are in test_hf_loaders.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aar.config import Settings
from aar.labels.prepare import prepare_testbed
from aar.labels.store import load_labelled
from aar.w2s.testbeds import build_testbed
from aar.w2s.testbeds.base import SPLITS, TestbedError


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _pairwise_rows(n: int) -> list[dict]:
    return [
        {
            "prompt": f"question {i}",
            "answer_a": f"good answer {i}",
            "answer_b": f"bad {i}",
            "label": "A",
            "group": "ood" if i % 4 == 0 else "id",
            "difficulty": "hard" if i % 3 else "easy",
        }
        for i in range(n)
    ]


def test_jsonl_pairwise_is_balanced_by_swapping(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.jsonl", _pairwise_rows(200))
    settings = Settings(home=tmp_path / "home")
    card = prepare_testbed(f"jsonl:{path}", settings=settings)
    assert card.name == "mine" and card.format == "pairwise"
    tb = load_labelled("mine", settings)
    for s in SPLITS:
        assert abs(tb[s].require_labels().mean() - 0.5) < 0.05
        for it, y in zip(tb[s].items, tb[s].labels, strict=True):
            assert (it.answer_b if y == 1 else it.answer_a).startswith("good")


def test_jsonl_binary_with_explicit_splits(tmp_path: Path) -> None:
    rows = [
        {"question": f"q{i}", "candidate": f"c{i}", "label": bool(i % 2), "split": SPLITS[i % 4]} for i in range(40)
    ]
    tb = build_testbed(f"jsonl:{_write(tmp_path / 'b.jsonl', rows)}", salt="s")
    assert tb.format == "binary" and len(tb["test_ood"]) == 10


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "p", "answer_a": "a", "answer_b": "b", "label": "C"}, "label must be"),
        ({"prompt": "p", "answer_a": "", "answer_b": "b", "label": "A"}, "answer_a"),
        ({"question": "q", "candidate": "c", "label": "A"}, "label must be true or false"),
        ({"prompt": "p", "answer_a": "a", "answer_b": "b", "label": "A", "split": "train"}, "split must be"),
        ({"prompt": "p", "answer_a": "a", "answer_b": "b", "label": "A", "group": "x"}, "group must be"),
    ],
)
def test_jsonl_bad_rows_name_the_line(tmp_path: Path, row: dict, message: str) -> None:
    good = _pairwise_rows(3) if "prompt" in row else [{"question": "q", "candidate": "c", "label": True}] * 3
    path = _write(tmp_path / "bad.jsonl", good + [row])
    with pytest.raises(TestbedError, match=message) as err:
        prepare_testbed(f"jsonl:{path}", settings=Settings(home=tmp_path / "home"))
    assert "bad.jsonl:4" in str(err.value)
    assert not (tmp_path / "home" / "testbeds" / "bad").exists()


def test_jsonl_not_json(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "p"\n')
    with pytest.raises(TestbedError, match="x.jsonl:1: not valid JSON"):
        build_testbed(f"jsonl:{path}")


def test_unknown_testbed() -> None:
    with pytest.raises(TestbedError, match="unknown testbed"):
        build_testbed("nope")


def test_registry_name_is_authoritative(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dataclasses import replace

    import aar.w2s.testbeds as registry

    rows = [{"question": f"q{i}", "candidate": f"c{i}", "label": bool(i % 2), "split": SPLITS[i % 4]} for i in range(8)]
    path = _write(tmp_path / "inner.jsonl", rows)
    entry = replace(registry.REGISTRY["wordsense"], name="alias", build=lambda *a: build_testbed(f"jsonl:{path}"))
    monkeypatch.setitem(registry.REGISTRY, "alias", entry)
    assert build_testbed("alias").name == "alias"
