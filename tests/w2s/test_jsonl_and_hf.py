"""User JSONL testbeds and the Hugging Face loaders, run offline on fixture files in the datasets' schemas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aar.config import Settings
from aar.w2s.testbeds import build_testbed, prepare_testbed
from aar.w2s.testbeds.base import SPLITS, TestbedError, load_testbed


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
    tb = load_testbed("mine", with_labels=True, settings=settings)
    for s in SPLITS:
        assert abs(tb[s].require_labels().mean() - 0.5) < 0.05
        for it, y in zip(tb[s].items, tb[s].labels, strict=True):
            assert (it.answer_b if y == 1 else it.answer_a).startswith("good")


def test_jsonl_binary_with_explicit_splits(tmp_path: Path) -> None:
    rows = [
        {"question": f"q{i}", "candidate": f"c{i}", "label": bool(i % 2), "split": SPLITS[i % 4]} for i in range(40)
    ]
    tb = build_testbed(f"jsonl:{_write(tmp_path / 'b.jsonl', rows)}")
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


@pytest.fixture()
def hf_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Small files in each source dataset's own schema, read through ``datasets`` offline."""
    root = tmp_path / "hf"
    n = 40
    _write(
        root / "nvidia__HelpSteer2/train.jsonl",
        [
            {"prompt": f"p{i}", "response_1": f"r1 {i}", "response_2": f"r2 {i}", "preference_strength": (i % 7) - 3}
            for i in range(n)
        ],
    )
    _write(
        root / "nvidia__HelpSteer3/train.jsonl",
        [
            {
                "context": [{"role": "user", "content": f"c{i}"}],
                "response1": f"a{i}",
                "response2": f"b{i}",
                "overall_preference": (i % 5) - 2,
            }
            for i in range(n)
        ],
    )
    _write(
        root / "THU-KEG__RM-Bench/train.jsonl",
        [
            {"prompt": f"rm{i}", "chosen": [f"good{i}", "x", "y"], "rejected": [f"bad{i}", "x", "y"], "domain": "chat"}
            for i in range(n)
        ],
    )
    _write(
        root / "allenai__reward-bench-2/test.jsonl",
        [
            {"prompt": f"rb{i}", "chosen": [f"good{i}"], "rejected": [f"bad{i}", "z"], "subset": "Focus"}
            for i in range(n)
        ],
    )
    _write(
        root / "BytedTsinghua-SIA__DAPO-Math-17k/train.jsonl",
        [
            {"prompt": [{"role": "user", "content": f"math {i}"}], "reward_model": {"ground_truth": str(i * 7)}}
            for i in range(n)
        ],
    )
    _write(
        root / "HuggingFaceH4__aime_2024/train.jsonl", [{"problem": f"aime {i}", "answer": str(i)} for i in range(n)]
    )
    _write(root / "yentinglin__aime_2025/train.jsonl", [{"problem": f"aime25 {i}", "answer": str(i)} for i in range(n)])
    levels = ["EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD"]
    _write(
        root / "BAAI__TACO/train.jsonl",
        [
            {"question": f"code {i}", "solutions": json.dumps([f"print({i})"]), "difficulty": levels[i % 5]}
            for i in range(100)
        ],
    )
    monkeypatch.setenv("AAR_HF_LOCAL_DIR", str(root))
    return root


@pytest.mark.parametrize("name", ["chat-preference", "math-verification", "code-verification"])
def test_hf_testbeds_from_local_mirror(hf_mirror: Path, name: str) -> None:
    tb = build_testbed(name)
    tb.validate()
    for s in SPLITS:
        assert len(tb[s]) > 0
    if name == "code-verification":
        for s in SPLITS:
            levels, y = np.array(tb[s].difficulty), tb[s].require_labels()
            assert set(levels) <= ({"EASY", "MEDIUM"} if s != "test_ood" else {"MEDIUM_HARD", "HARD", "VERY_HARD"})
            for lv in set(levels):
                assert y[levels == lv].mean() == 0.5
    if name == "chat-preference":
        ood = tb["test_ood"]
        for it, y in zip(ood.items, ood.labels, strict=True):
            assert (it.answer_b if y else it.answer_a).startswith("good")


def test_hf_missing_mirror_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AAR_HF_LOCAL_DIR", str(tmp_path))
    with pytest.raises(TestbedError, match="HelpSteer2"):
        build_testbed("chat-preference")


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
