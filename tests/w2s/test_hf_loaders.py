"""The Hugging Face loaders, offline, on mirrors that reproduce the real datasets' schemas and quirks."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aar.w2s.testbeds import build_testbed
from aar.w2s.testbeds import hf as hfmod
from aar.w2s.testbeds.base import SPLITS, TestbedError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

LEVELS = ["EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD", "UNKNOWN_DIFFICULTY"]
# TACO's parquet columns (dataset card); the loader must read only question, solutions, difficulty.
TACO_SCHEMA = ["question", "solutions", "starter_code", "input_output", "difficulty", "raw_tags", "name", "source"]
# AIME 2024 as published: zero-padded answer strings.
AIME24 = ["033", "023", "116", "809", "197", "385", "371", "601", "025", "055", "540", "045", "204", "113", "104"]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _taco_rows(prefix: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        sols = [f"import sys\nprint({i})"] + [f"print({i} + {k})" for k in range(i % 3)]
        rows.append(
            {
                "question": f"{prefix} {i}",
                "solutions": json.dumps(sols if i % 17 else []),  # some problems have no solution
                "starter_code": "",
                "input_output": json.dumps({"inputs": ["1\n"] * 50, "outputs": ["2\n"] * 50}),
                "difficulty": LEVELS[i % len(LEVELS)],
                "raw_tags": "['Math']",
                "name": None,
                "source": "codeforces",
            }
        )
    rows.append(dict(rows[1]))  # TACO merges several sites: a verbatim duplicate problem
    return rows


def _taco_repo(repo: Path) -> Path:
    """BAAI/TACO as on the hub: a loading script plus parquet shards under ALL/ (train in two shards)."""
    (repo / "ALL").mkdir(parents=True, exist_ok=True)
    (repo / "TACO.py").write_text("import datasets\n\n\nclass TACO(datasets.GeneratorBasedBuilder):\n    pass\n")
    (repo / "README.md").write_text("# TACO\n")
    train = _taco_rows("code", 120)
    for k, shard in enumerate([train[:60], train[60:]]):
        table = pa.table({c: [r[c] for r in shard] for c in TACO_SCHEMA})
        pq.write_table(table, repo / f"ALL/train-{k:05d}-of-00002.parquet", row_group_size=16)
    test = _taco_rows("test code", 30)
    pq.write_table(pa.table({c: [r[c] for r in test] for c in TACO_SCHEMA}), repo / "ALL/test-00000-of-00001.parquet")
    return repo


@pytest.fixture()
def hf_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Small files in each source dataset's own schema and with its quirks, read offline."""
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
    # DAPO-Math-17k on the hub: every prompt repeated (~100x there), rows interleaved, distinct extra_info.
    dapo = [
        {
            "data_source": "math_dapo",
            "prompt": [{"role": "user", "content": f"Solve: math {i}"}],
            "ability": "MATH",
            "reward_model": {"ground_truth": str(i * 7), "style": "rule-based"},
            "extra_info": {"index": f"uuid-{i}-{rep}"},
        }
        for rep in range(5)
        for i in range(60)
    ]
    _write(root / "BytedTsinghua-SIA__DAPO-Math-17k/train.jsonl", dapo)
    _write(
        root / "HuggingFaceH4__aime_2024/train.jsonl",
        [{"id": i, "problem": f"aime {i}", "solution": "...", "answer": a} for i, a in enumerate(AIME24 * 2)],
    )
    aime25 = [{"problem": f"aime25 {i}", "answer": 10 * i + 3} for i in range(30)]
    _write(root / "yentinglin__aime_2025/train.jsonl", aime25)
    _taco_repo(root / "BAAI__TACO")
    monkeypatch.setenv("AAR_HF_LOCAL_DIR", str(root))
    return root


@pytest.mark.parametrize("name", ["chat-preference", "math-verification", "code-verification"])
def test_hf_testbeds_from_local_mirror(hf_mirror: Path, name: str) -> None:
    """Each HF testbed builds from the mirror with its quirks; TACO splits by level, balanced per level."""
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
    """A mirror without a source's file names that source."""
    monkeypatch.setenv("AAR_HF_LOCAL_DIR", str(tmp_path))
    with pytest.raises(TestbedError, match="HelpSteer2"):
        build_testbed("chat-preference")
    with pytest.raises(TestbedError, match=r"BAAI__TACO has no files matching ALL/train-\*\.parquet"):
        build_testbed("code-verification")


# --- TACO: a script repo, read from its parquet files -------------------------------------------


def test_the_taco_fixture_is_a_script_repo_that_datasets_refuses(tmp_path: Path) -> None:
    """Control: ``datasets`` >= 4 refuses the fixture repo exactly as it refuses BAAI/TACO on the hub."""
    datasets = pytest.importorskip("datasets")
    repo = _taco_repo(tmp_path / "BAAI" / "TACO")
    with pytest.raises(RuntimeError, match="Dataset scripts are no longer supported, but found TACO.py"):
        datasets.load_dataset(str(repo), split="train")


@pytest.fixture()
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The hub client and ``datasets`` served from local repo folders (``<hub>/<owner>/<name>``), no network."""
    import datasets
    import huggingface_hub

    hub = tmp_path / "hub"
    _taco_repo(hub / "BAAI" / "TACO")
    calls: dict[str, list[str]] = {"listed": [], "downloaded": []}
    real_load = datasets.load_dataset

    def list_repo_files(self: object, repo_id: str, **kw: object) -> list[str]:
        assert kw.get("repo_type") == "dataset"
        calls["listed"].append(repo_id)
        return sorted(p.relative_to(hub / repo_id).as_posix() for p in (hub / repo_id).rglob("*") if p.is_file())

    def hf_hub_download(repo_id: str, filename: str, **kw: object) -> str:
        assert kw.get("repo_type") == "dataset"
        calls["downloaded"].append(filename)
        return str(hub / repo_id / filename)

    def load_dataset(path: str, *args: object, **kw: object) -> object:
        return real_load(str(hub / path) if (hub / path).is_dir() else path, *args, **kw)

    monkeypatch.delenv("AAR_HF_LOCAL_DIR", raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_code_verification_reads_the_hubs_parquet_files(fake_hub: dict[str, list[str]]) -> None:
    """With network, TACO is listed and only its train parquet shards are downloaded; no script runs."""
    tb = build_testbed("code-verification")
    tb.validate()
    assert fake_hub["listed"] == ["BAAI/TACO"]
    assert fake_hub["downloaded"] == ["ALL/train-00000-of-00002.parquet", "ALL/train-00001-of-00002.parquet"]
    prompts = {it.prompt for s in SPLITS for it in tb[s].items}
    assert prompts and not any(p.startswith("test code") for p in prompts)


@pytest.mark.parametrize("split", ["train", "test"])
def test_parquet_rows_stream_only_the_used_columns(hf_mirror: Path, split: str) -> None:
    """Rows come lazily, one split's files only, with the three columns the converter uses."""
    rows = hfmod.load_rows(replace(hfmod.HF_TESTBEDS["code-verification"][1][0], split=split))
    assert isinstance(rows, Iterator)
    first = next(rows)
    assert set(first) == {"question", "solutions", "difficulty"}
    questions = [first["question"], *(r["question"] for r in rows)]
    assert len(questions) == (121 if split == "train" else 31)
    assert all(q.startswith("test code") == (split == "test") for q in questions)


def test_parquet_without_a_used_column_is_a_clear_error(hf_mirror: Path) -> None:
    """A shard that lacks a column the converter reads is named, with the columns it has."""
    shard = hf_mirror / "BAAI__TACO/ALL/train-00001-of-00002.parquet"
    pq.write_table(pq.read_table(shard).drop(["solutions"]), shard)
    with pytest.raises(TestbedError, match=r"train-00001-of-00002.parquet: no column\(s\) \['solutions'\]"):
        build_testbed("code-verification")


# --- math: repeated prompts and padded answers --------------------------------------------------


def test_no_problem_lands_in_two_splits(hf_mirror: Path) -> None:
    """DAPO repeats each prompt: the testbed holds each problem once, so no problem is in two splits."""
    tb = build_testbed("math-verification")
    prompts = Counter(it.prompt for s in SPLITS for it in tb[s].items)
    assert prompts.most_common(1)[0][1] == 1
    n_dapo = sum(p.startswith("user: Solve: math") for p in prompts)
    assert 40 <= n_dapo <= 60  # 60 distinct problems, minus balancing


def test_candidates_are_normalised_answers(hf_mirror: Path) -> None:
    """AIME 2024's "025" is offered as "25", true or false; no candidate carries padding."""
    tb = build_testbed("math-verification")
    ood = tb["test_ood"]
    assert not [it.answer_a for it in ood.items if re.fullmatch(r"[+-]?0\d+", it.answer_a)]
    truth = {f"aime {i}": str(int(a)) for i, a in enumerate(AIME24 * 2)}
    for it, y in zip(ood.items, ood.require_labels(), strict=True):
        if it.prompt in truth:
            assert (it.answer_a == truth[it.prompt]) == bool(y)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [("025", "25"), (" 7 ", "7"), (25, "25"), ("-003", "-3"), ("+4", "4"), ("12.0", "12"), ("$5$", "5"), ("0", "0")]
    + [("\\frac{1}{2}", "\\frac{1}{2}"), ("a  b", "a b")],
)
def test_normalise_answer(raw: object, norm: str) -> None:
    """Integers lose padding and sign; other answers keep their text with whitespace collapsed."""
    assert hfmod.normalise_answer(raw) == norm


def _best_format_rule(candidates: list[str], labels: list[int], seed: int = 0) -> float:
    """Held-out accuracy of the best candidate-only lookup rule (majority label per feature value)."""
    features: dict[str, Callable[[str], object]] = {
        "leading zero": lambda c: bool(re.match(r"[+-]?0\d", c)),
        "length": len,
        "first char": lambda c: c[:1],
        "last char": lambda c: c[-1:],
        "lines": lambda c: c.count("\n"),
        "first line": lambda c: c.split("\n", 1)[0][:20],
    }
    order = np.random.default_rng(seed).permutation(len(candidates))
    fit, held = order[: len(order) // 2], order[len(order) // 2 :]
    best = 0.0
    for f in features.values():
        votes: dict[object, list[int]] = {}
        for i in fit:
            votes.setdefault(f(candidates[i]), []).append(labels[i])
        rule = {v: int(np.mean(ys) > 0.5) for v, ys in votes.items()}
        acc = float(np.mean([rule.get(f(candidates[i]), 0) == labels[i] for i in held]))
        best = max(best, acc, 1 - acc)
    return best


def _math_rows(rng: np.random.Generator, n: int) -> list[dict]:
    values = np.concatenate([rng.integers(0, 1000, n // 2), np.exp(rng.uniform(0, 7, n - n // 2)).astype(int)])
    rows = [{"problem": f"problem {i}", "answer": f"{v:03d}"} for i, v in enumerate(values)]
    return [rows[i] for i in rng.permutation(n).tolist() * 2]  # padded, and each repeated


def _taco_like(rng: np.random.Generator, n: int) -> list[dict]:
    return [
        {
            "question": f"task {i}",
            "difficulty": "EASY" if i % 2 else "HARD",
            # the first solution of a problem has its own style (one site's template), as merged data does
            "solutions": json.dumps([f"import sys\nx = {i}"] + [f"x = {i} + {k}" for k in range(int(rng.integers(3)))]),
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("source", ["aime", "taco"])
def test_format_alone_cannot_tell_true_from_false(source: str) -> None:
    """No candidate-only rule (padding, length, first/last char, lines) beats chance on built candidates."""
    rng = np.random.default_rng(1)
    if source == "aime":
        convert = hfmod.math_answers("problem", lambda r: r["answer"], "aime24")
        records = list(convert(_math_rows(rng, 4000), np.random.default_rng(2), "ood"))
    else:
        records = list(hfmod.taco(_taco_like(rng, 4000), np.random.default_rng(2), "id"))
    labels = [r.label for r in records]
    assert _best_format_rule([r.item.answer_a for r in records], labels) < 0.55
    assert len({r.item.prompt for r in records}) == len(records) >= 3000
    assert abs(np.mean(labels) - 0.5) < 0.02


def test_format_rule_detects_a_padding_leak() -> None:
    """Control: the same rule search finds the leak when only true answers keep AIME's padding."""
    rows = _math_rows(np.random.default_rng(3), 4000)[:4000]
    labels = [int(i % 2 == 0) for i in range(len(rows))]
    cands = [r["answer"] if y else str(int(r["answer"]) + 1) for r, y in zip(rows, labels, strict=True)]
    assert _best_format_rule(cands, labels) > 0.6


def test_no_candidate_appears_with_two_labels() -> None:
    """A reference is offered once: its own problem's True item, or another problem's False item."""
    records = list(hfmod.taco(_taco_like(np.random.default_rng(0), 500), np.random.default_rng(1), "id"))
    by_candidate = Counter(r.item.answer_a for r in records)
    assert by_candidate.most_common(1)[0][1] == 1


def test_old_style_mirror_without_taco_parquet_still_names_the_layout(tmp_path: Path, hf_mirror: Path) -> None:
    """A mirror made before the parquet layout (``BAAI__TACO/train.jsonl``) gets an error naming the layout."""
    shutil.rmtree(hf_mirror / "BAAI__TACO")
    _write(hf_mirror / "BAAI__TACO/train.jsonl", [{"question": "q", "solutions": "[]", "difficulty": "EASY"}])
    with pytest.raises(TestbedError, match=r"ALL/train-\*\.parquet"):
        build_testbed("code-verification")
