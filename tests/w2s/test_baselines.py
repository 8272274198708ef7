"""The baselines runner and the `aar` CLI on a small prepared testbed: JSON contracts, stored W and S."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aar.cli import app
from aar.config import Settings
from aar.labels.card import load_card
from aar.labels.references import load_baselines
from aar.labels.store import load_labelled
from aar.w2s.experiment import make_context, run_method
from aar.w2s.methods import METHODS
from aar.w2s.models import ModelSpec, build_model
from aar.w2s.scoring import accuracy
from aar.w2s.testbeds.base import load_testbed

runner = CliRunner()


def test_baselines_json_contract_and_stored_references(home_env: Path, small_home: Settings) -> None:
    result = runner.invoke(app, ["baselines", "--testbed", "wordsense", "--seeds", "2", "--reference", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["testbed"] == "wordsense" and data["seeds"] == 2
    assert set(data["weak"]["acc"]) >= {"id", "ood"} and set(data["ceiling"]["acc"]) >= {"id", "ood"}
    names = [m["name"] for m in data["methods"]]
    assert {"weak", "ceiling", "vanilla", "vanilla_soft", "confident", "logconf", "zeroshot", "ue_zeroshot",
            "weak_zeroshot_mix"} <= set(names)
    assert "reference" not in names and data["reference"]["name"] == "reference"  # never a baseline row
    assert set(data["reference"]["pgr"]) == {"id", "ood", "combined"}
    for m in data["methods"]:
        assert set(m) >= {"name", "acc", "pgr", "se"}
        assert set(m["pgr"]) == {"id", "ood", "combined"}
    by_name = {m["name"]: m for m in data["methods"]}
    assert by_name["weak"]["pgr"]["id"] == 0.0 and by_name["ceiling"]["pgr"]["id"] == 1.0
    assert "not applicable" in by_name["critic"]["note"]
    # The stored weak predictions reproduce W exactly on the labelled test items.
    report, preds = load_baselines("wordsense", small_home)
    tb = load_labelled("wordsense", small_home)
    labels = dict(zip(tb["test_id"].ids, tb["test_id"].labels.tolist(), strict=True))
    w_mean, _ = preds.reference_accuracy("weak", labels)
    assert abs(w_mean - report.weak.acc.id) < 1e-9
    card = load_card("wordsense", small_home)
    assert any(c.name == "vanilla PGR (ood)" for c in card.criteria)
    # The reference's predictions are stored apart from the baselines (finalize compares teams with those), in
    # both worlds, and the card measures the room on the private half.
    assert "reference" not in preds.methods and len(preds.reference) == 2
    assert len(preds.runs("reference", "private")) == 2
    for part, (best, ref, lead) in zip(("id", "ood"), np.reshape(card.room, (2, 3)), strict=True):
        name = best.name.rsplit(": ", 1)[1]  # the best baseline on this part's private half
        assert best.name == f"best shipped baseline PGR, private half ({part}): {name}"
        assert ref.name == f"reference PGR, private half ({part})" and ref.value is not None
        assert lead.name == f"reference - {name}, private half ({part})"
        assert lead.value == pytest.approx(ref.value - best.value)
    shown = card.to_markdown()
    assert "## Room above the baselines" in shown and "reference PGR, private half (ood)" in shown
    assert "Not measured: run `aar baselines --reference`" in card.model_copy(update={"room": []}).to_markdown()
    # Finalize's comparison gives the share of the headroom: the reference's own predictions recover all of it.
    from aar.evalserver.labels import load_labels
    from aar.evalserver.scoring import compare_with_best_baseline

    tl = load_labels("wordsense", small_home)
    runs = preds.runs("reference", "each")
    c = compare_with_best_baseline(tl, np.array([np.mean([run[i] for run in runs]) for i in tl.ids]))
    assert c is not None and c.headroom_share is not None and tl.reference_correct is not None
    for part in ("id", "ood", "combined"):
        idx = tl.part("private", part)
        lead = tl.reference_correct[idx].mean() - tl.method_correct[c.baseline][idx].mean()
        assert getattr(c.headroom_share, part) == (pytest.approx(1.0) if lead > 0 else None)


def test_methods_see_no_hidden_labels(small_home: Settings) -> None:
    tb = load_testbed("wordsense", small_home)
    strong = ModelSpec(backend="encoder", options={})
    ctx = make_context(tb, strong, 0, small_home)
    out = run_method("vanilla", ctx)
    assert set(out.test_probs) == {"test_id", "test_ood"}
    assert len(out.test_probs["test_id"]) == len(tb["test_id"])
    assert tb["strong_train"].labels is None and "weak_train" not in tb.splits
    assert np.array_equal(run_method("weak", ctx).test_probs["test_id"], tb["test_id"].weak)

    from aar.w2s.methods import MethodNotApplicable

    with pytest.raises(MethodNotApplicable, match="trusted side"):
        METHODS["ceiling"](ctx)


def test_pairwise_models_are_swap_antisymmetric(small_home: Settings) -> None:
    from aar.w2s.testbeds.base import Item

    tb = load_labelled("wordsense", small_home)
    model = build_model(ModelSpec(backend="encoder", options={"layers": 1}), "pairwise", small_home.cache_dir)
    model.fit(tb["weak_train"].items, tb["weak_train"].labels.astype(float))
    items = tb["test_id"].items[:50]
    swapped = [Item(it.id, it.prompt, it.answer_b or "", it.answer_a) for it in items]
    assert np.allclose(model.predict_proba(items), 1 - model.predict_proba(swapped), atol=1e-9)


def test_tfidf_weak_model_trains_and_beats_nothing_silly(small_home: Settings) -> None:
    tb = load_labelled("wordsense", small_home)
    model = build_model(ModelSpec(backend="tfidf", options={"C": 1.0}), "pairwise")
    model.fit(tb["weak_train"].items, tb["weak_train"].labels.astype(float))
    acc = accuracy(model.predict_proba(tb["weak_train"].items), tb["weak_train"].labels)
    assert acc > 0.6  # it fits its training data


def test_cli_lists_testbeds_and_rejects_bad_input(home_env: Path) -> None:
    result = runner.invoke(app, ["testbed", "list", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {"name", "format", "source", "offline", "default"} <= set(rows[0])
    assert [r["name"] for r in rows if r["default"]] == ["wordsense"]
    shown = runner.invoke(app, ["testbed", "show", "wordsense", "--json"])
    assert json.loads(shown.stdout)["name"] == "wordsense"


def test_cli_errors_are_one_line(home_env: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from aar.cli import main; main()",
            "baselines",
            "--testbed",
            "wordsense",
            "--methods",
            "nonsense",
            "--seeds",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown method 'nonsense'")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_word_cosine_compares_the_answer_with_the_marked_word_alone(small_home: Settings) -> None:
    from aar.w2s.models.cache import ArrayCache
    from aar.w2s.models.encoder import EncoderModel, EncoderSpec, EncoderView, embed_texts, marked_word

    spec = EncoderSpec(name="minilm", layers=1)
    model = EncoderModel("binary", views=[EncoderView(spec, ("word_cosine",))], cache_dir=small_home.cache_dir)
    prompts = ["We sat on the *Bank* of the river.", "No mark here."]
    answers = ["sloping land beside water", "a financial institution"]
    got = model.answer_features(prompts, answers)[:, 0]
    cache = ArrayCache(small_home.cache_dir)
    words = embed_texts(spec, ["bank", "No mark here."], cache)
    want = (words * embed_texts(spec, answers, cache)).sum(1)
    assert marked_word(prompts[0]) == "bank"
    assert np.allclose(got, want, atol=1e-6)


def test_the_cold_path_counts_only_texts_the_cache_did_not_have(tmp_path: Path) -> None:
    from dataclasses import replace

    from aar.w2s.models.cache import ArrayCache
    from aar.w2s.models.encoder import ENCODE_STATS, EncoderSpec, embed_texts

    spec, cache = EncoderSpec(name="minilm", layers=1), ArrayCache(tmp_path / "cache")
    texts = [f"cold path text {k} {tmp_path.name}" for k in range(5)]  # unique to this test: never cached
    before = replace(ENCODE_STATS)
    embed_texts(spec, texts + texts[:2], cache)
    first = ENCODE_STATS.since(before)
    assert first.texts == 5 and first.seconds > 0 and "5 texts embedded" in first.summary()
    before = replace(ENCODE_STATS)
    embed_texts(spec, texts[::-1], cache)
    assert ENCODE_STATS.since(before).texts == 0
    assert ENCODE_STATS.since(before).summary() == "cold path: every embedding came from the cache"


def test_weak_zeroshot_mix_adds_the_zero_shot_rank_to_the_weak_logit(small_home: Settings) -> None:
    from aar.w2s.methods.elicitation import ZEROSHOT_MIX_WEIGHT, logit

    ctx = make_context(load_testbed("wordsense", small_home), ModelSpec(backend="encoder", options={}), 0, small_home)
    mix, weak, zs = (run_method(m, ctx).test_probs for m in ("weak_zeroshot_mix", "weak", "zeroshot"))
    for s in ("test_id", "test_ood"):
        assert np.allclose(logit(mix[s]), logit(weak[s]) + ZEROSHOT_MIX_WEIGHT * (zs[s] - 0.5), atol=1e-6)
        # the mix follows zero-shot only where its rank outweighs the weak model's confidence
        assert 0 < ((mix[s] > 0.5) != (weak[s] > 0.5)).mean() < ((zs[s] > 0.5) != (weak[s] > 0.5)).mean()
