"""The cold path as one job: the plan covers every text the features need, once per encoder, under one bar."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from aar.w2s.models import build_model
from aar.w2s.models.cache import ArrayCache
from aar.w2s.models.encoder import ENCODE_STATS
from aar.w2s.models.warm import plan, text_cost, warm_features
from aar.w2s.progress import _Lines, progress_bar
from aar.w2s.spec import ModelSpec
from aar.w2s.testbeds.base import Item

ITEMS = [
    Item("1", "She *ran* the company for ten years", "direct or control", "move fast by using one's feet"),
    Item("2", "The *bank* raised its interest rates", "sloping land beside water", "a financial institution"),
    Item("3", "He sat on the *bank* of the river", "sloping land beside water", "a financial institution"),
    Item("4", "a *light* meal before the show", "not heavy", "electromagnetic radiation"),
]
# Two small views that share an encoder (MiniLM, first layer) and every feature kind that embeds something.
SPEC_A = ModelSpec(backend="encoder", options={"layers": 1, "features": ["product", "target_cosine", "word_cosine"]})
SPEC_B = ModelSpec(backend="encoder", options={"layers": 1, "features": ["joint", "answer"]})


@pytest.fixture()
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AAR_HOME for the exported int8 encoder (shared across sessions with AAR_TEST_CACHE)."""
    shared = os.environ.get("AAR_TEST_CACHE")
    path = Path(shared) / "runtime-home" if shared else tmp_path_factory.getbasetemp() / "runtime-home"
    monkeypatch.setenv("AAR_HOME", str(path))
    return path


@pytest.mark.parametrize("fmt", ["pairwise", "binary"])
def test_after_warming_features_need_no_encoder(fmt: str, tmp_path: Path, home: Path) -> None:
    items = ITEMS if fmt == "pairwise" else [replace(it, answer_b=None) for it in ITEMS]
    jobs = [(SPEC_A, items), (SPEC_B, items)]
    todo = plan(jobs, fmt, ArrayCache(tmp_path))
    assert len(todo) == 1  # both models use one encoder: one job, one forward pass per text
    (job,) = todo
    assert set(job.pools) == {"mean", "target"}
    assert job.pools["target"] == {it.prompt for it in items}  # the contextual word from the prompts' pass
    answers = {a for it in items for a in (it.answer_a, it.answer_b) if a is not None}
    joints = {f"{it.prompt} {a}" for it in items for a in (it.answer_a, it.answer_b) if a is not None}
    words = {"ran", "bank", "light"}
    assert job.pools["mean"] == {it.prompt for it in items} | answers | joints | words

    before = replace(ENCODE_STATS)
    assert warm_features(jobs, fmt, tmp_path) == len(job.texts)
    assert ENCODE_STATS.since(before).texts == len(job.texts)  # each distinct text encoded once
    before = replace(ENCODE_STATS)
    for spec in (SPEC_A, SPEC_B):
        model = build_model(spec, fmt, tmp_path)
        model.fit(items, [0.0, 1.0, 1.0, 0.0] if fmt == "pairwise" else [1.0, 0.0, 1.0, 0.0], seed=0)  # type: ignore[arg-type]
        model.predict_proba(items)
        model.zero_shot(items)
    assert ENCODE_STATS.since(before).texts == 0
    assert plan(jobs, fmt, ArrayCache(tmp_path)) == []
    assert warm_features(jobs, fmt, tmp_path) == 0


def test_cost_weighs_deeper_and_wider_encoders_and_longer_texts(home: Path) -> None:
    from aar.w2s.models.encoder import EncoderSpec

    one, six = EncoderSpec(name="minilm", layers=1), EncoderSpec(name="minilm")
    assert text_cost(six, ["a b c d"]) == pytest.approx(6 * text_cost(one, ["a b c d"]))
    assert text_cost(one, ["a much longer text than the other one"]) > text_cost(one, ["short"])


def test_log_lines_show_the_time_left(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    lines = _Lines("embedding", 400.0, counted=False)
    lines.done = 100.0
    assert lines.line(30.0) == "25% (30 s, about 90 s left)"
    lines.done = 400.0
    assert lines.line(120.0) == "100% (120 s)"
    monkeypatch.delenv("AAR_QUIET", raising=False)
    with progress_bar("embedding 9 texts (minilm)", 1000.0, counted=False) as bar:
        bar.advance(1000.0)
    assert capsys.readouterr().err.strip().endswith("100% (0 s)")


def test_passes_group_texts_by_the_pools_they_lack_in_chunks() -> None:
    from aar.w2s.models.encoder import EncoderSpec
    from aar.w2s.models.warm import _Job

    job = _Job(EncoderSpec(name="minilm"), {"mean": {"p1", "p2", "a1", "a2", "a3"}, "target": {"p1", "p2", "p3"}})
    passes = job.passes(size=2)
    assert passes == [(("mean",), ["a1", "a2"]), (("mean",), ["a3"]), (("mean", "target"), ["p1", "p2"]),
                      (("target",), ["p3"])]
