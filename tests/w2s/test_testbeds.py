"""Testbed construction and layout: balance, stable ids, label hiding, card shortcut checks."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from aar.config import Settings
from aar.w2s.testbeds.base import SPLITS, TestbedError, load_testbed
from aar.w2s.testbeds.card import load_card
from aar.w2s.testbeds.wordnet import _parse_gloss, read_index, read_synsets
from aar.w2s.testbeds.wordsense import build_wordsense


def test_wordnet_parser_reads_glosses_and_examples() -> None:
    nouns = read_synsets("n")
    index = read_index("n")
    assert len(nouns) > 80000
    bank = [nouns[o] for o in index["bank"]]
    assert any("financial" in s.definition for s in bank)
    definition, examples = _parse_gloss('free from constraint; "an abandoned sadness" - Liam O\'Flaherty')
    assert definition == "free from constraint"
    assert examples == ("an abandoned sadness",)


def test_splits_are_balanced_and_disjoint(small_home: Settings) -> None:
    tb = load_testbed("wordsense", with_labels=True, settings=small_home)
    ids = [i for s in SPLITS for i in tb[s].ids]
    assert len(ids) == len(set(ids))
    for s in SPLITS:
        y = tb[s].require_labels()
        levels = np.array(tb[s].difficulty)
        for lv in set(levels):
            assert abs(y[levels == lv].mean() - 0.5) <= 0.5 / (levels == lv).sum() + 1e-9


def test_length_is_not_a_shortcut(small_home: Settings) -> None:
    tb = load_testbed("wordsense", with_labels=True, settings=small_home)
    for s in SPLITS:
        split = tb[s]
        longer_correct = [
            (len(it.answer_b or "") > len(it.answer_a)) == bool(y)
            for it, y in zip(split.items, split.labels, strict=True)
        ]
        assert 0.4 < np.mean(longer_correct) < 0.6


def test_ids_are_stable_across_builds(small_home: Settings) -> None:
    a = build_wordsense("pairwise", seed=0, cache_dir=small_home.cache_dir, max_cases=700)
    b = load_testbed("wordsense", with_labels=True, settings=small_home)
    assert a["test_id"].ids == b["test_id"].ids


def test_public_files_hide_labels(small_home: Settings) -> None:
    pub = small_home.testbeds_dir / "wordsense"
    for s in SPLITS:
        rows = [json.loads(line) for line in (pub / f"{s}.jsonl").read_text().splitlines()]
        assert all("difficulty" not in r for r in rows)
        assert all(("label" in r) == (s == "weak_train") for r in rows)
    mode = stat.S_IMODE((small_home.labels_dir / "wordsense").stat().st_mode)
    assert mode == 0o700
    public = load_testbed("wordsense", settings=small_home)
    assert public["test_id"].labels is None and public["strong_train"].labels is None


def test_card_reports_shortcuts_within_limits(small_home: Settings) -> None:
    card = load_card("wordsense", small_home)
    assert set(card.counts) == set(SPLITS)
    assert set(card.shortcuts) == {"answer length", "position (always B)", "lexical overlap"}
    assert card.shortcuts["position (always B)"]["test_id"] <= 0.51
    assert "Shortcut checks" in card.to_markdown()


def test_missing_testbed_error_tells_how_to_prepare(tmp_path) -> None:
    with pytest.raises(TestbedError, match="aar testbed prepare nope"):
        load_testbed("nope", settings=Settings(home=tmp_path))


def test_binary_wordsense_has_one_candidate(small_home: Settings) -> None:
    tb = build_wordsense("binary", seed=1, cache_dir=small_home.cache_dir, max_cases=300)
    assert tb.format == "binary"
    assert all(it.answer_b is None for it in tb["test_ood"].items)
    tb.validate()


@pytest.mark.parametrize("name", ["../etc", "/abs", "a/b", "", ".hidden"])
def test_testbed_names_cannot_escape_aar_home(tmp_path, name: str) -> None:
    with pytest.raises(TestbedError, match="invalid testbed name"):
        load_testbed(name, settings=Settings(home=tmp_path))
