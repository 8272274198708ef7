"""Testbed construction and layout: balance, salted ids, word-grouped splits, label hiding, card checks."""

from __future__ import annotations

import json
import re
import stat
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from aar.config import Settings
from aar.labels.card import load_card
from aar.labels.store import load_labelled
from aar.w2s.models import build_model
from aar.w2s.models.cache import ArrayCache
from aar.w2s.models.encoder import ENCODE_STATS
from aar.w2s.testbeds import build_testbed, default_models
from aar.w2s.testbeds.base import PUBLIC_SPLITS, SPLITS, TestbedError, load_testbed
from aar.w2s.testbeds.wordnet import _parse_gloss, find_lemma, read_exceptions, read_index, read_synsets
from aar.w2s.testbeds.wordsense import (
    FREQUENT_RULE,
    Candidate,
    build_wordsense,
    collect_candidates,
    pair_negatives,
    salted_rng,
    split_by_word,
)

TARGET = re.compile(r"\*([^*]+)\*")


def test_wordnet_parser_reads_glosses_and_examples() -> None:
    nouns = read_synsets("n")
    index = read_index("n")
    assert len(nouns) > 80000
    bank = [nouns[o] for o in index["bank"]]
    assert any("financial" in s.definition for s in bank)
    definition, examples = _parse_gloss('free from constraint; "an abandoned sadness" - Liam O\'Flaherty')
    assert definition == "free from constraint"
    assert examples == ("an abandoned sadness",)


def test_lemmas_are_found_in_inflected_forms() -> None:
    nouns, verbs = read_exceptions("n"), read_exceptions("v")
    assert find_lemma("two geese flew over", "goose", "n", nouns) == (4, 9)
    assert find_lemma("she walked home", "walk", "v", verbs) == (4, 10)
    assert find_lemma("he ran away", "run", "v", verbs) == (3, 6)
    assert find_lemma("they took off quickly", "take off", "v", verbs) == (5, 13)
    assert find_lemma("nothing here", "walk", "v", verbs) is None


def test_splits_are_balanced_and_disjoint(small_home: Settings) -> None:
    tb = load_labelled("wordsense", small_home)
    ids = [i for s in SPLITS for i in tb[s].ids]
    assert len(ids) == len(set(ids))
    for s in SPLITS:
        y = tb[s].require_labels()
        levels = np.array(tb[s].difficulty)
        for lv in set(levels):
            assert abs(y[levels == lv].mean() - 0.5) <= 0.5 / (levels == lv).sum() + 1e-9


def test_no_sentence_appears_in_two_splits(small_home: Settings) -> None:
    tb = load_labelled("wordsense", small_home)
    sentences = {s: {it.prompt for it in tb[s].items} for s in SPLITS}
    assert all(TARGET.search(p) for s in SPLITS for p in sentences[s])  # every prompt marks its word
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not sentences[a] & sentences[b]


def test_splits_are_grouped_by_word_across_parts_of_speech() -> None:
    cands = collect_candidates("n") + collect_candidates("v")
    assigned = split_by_word(cands, {"test_id": 3000, "weak_train": 300}, "strong_train", salted_rng("s", "t"))
    words = {s: {c.word for c in group} for s, group in assigned.items()}
    assert len(assigned["test_id"]) >= 3000 and len(assigned["weak_train"]) >= 300
    assert sum(len(g) for g in assigned.values()) == len(cands)
    assert not words["test_id"] & words["strong_train"] and not words["weak_train"] & words["strong_train"]
    assert not words["test_id"] & words["weak_train"]
    both = {c.word for c in cands if c.pos == "n"} & {c.word for c in cands if c.pos == "v"}
    assert len(both) > 500 and all(sum(w in ws for ws in words.values()) == 1 for w in both)  # "act": noun + verb


def test_length_is_not_a_shortcut(small_home: Settings) -> None:
    """"The longer definition is correct" holds for half of each pool (exactly, by construction) and
    for each split within sampling noise (3 SE: splits are dealt by word from the pool)."""
    tb = load_labelled("wordsense", small_home)
    pooled = []
    for s in SPLITS:
        split = tb[s]
        longer_correct = [
            (len(it.answer_b or "") > len(it.answer_a)) == bool(y)
            for it, y in zip(split.items, split.labels, strict=True)
        ]
        assert abs(np.mean(longer_correct) - 0.5) < 3 * 0.5 / np.sqrt(len(longer_correct))
        pooled += longer_correct
    assert abs(np.mean(pooled) - 0.5) < 0.02


def test_the_salt_fixes_the_build_and_another_salt_changes_it(small_home: Settings, small_cases: int) -> None:
    stored = load_labelled("wordsense", small_home)
    same = build_wordsense("pairwise", "test-salt", cache_dir=small_home.cache_dir, max_cases=small_cases)
    assert same["test_id"].ids == stored["test_id"].ids
    assert (same["test_id"].labels == stored["test_id"].labels).all()
    other = build_wordsense("pairwise", "another-salt", cache_dir=small_home.cache_dir, max_cases=small_cases)
    assert not set(other["test_id"].ids) & {i for s in SPLITS for i in stored[s].ids}


def test_public_files_hide_labels(small_home: Settings) -> None:
    pub = small_home.testbeds_dir / "wordsense"
    # features/ (the exported feature store, when a workspace was built) is scanned in tests/agents/test_workspace.py
    names = sorted(p.name for p in pub.iterdir() if p.name != "features")
    assert names == sorted([*(f"{s}.jsonl" for s in PUBLIC_SPLITS), "testbed.json"])
    for s in PUBLIC_SPLITS:
        rows = [json.loads(line) for line in (pub / f"{s}.jsonl").read_text().splitlines()]
        assert all(set(r) == {"id", "prompt", "answer_a", "answer_b", "weak"} for r in rows)
    meta = json.loads((pub / "testbed.json").read_text())
    assert not {"label", "labels", "salt", "checks"} & set(meta)
    lab = small_home.labels_dir / "wordsense"
    assert stat.S_IMODE(lab.stat().st_mode) == 0o700
    assert stat.S_IMODE((lab / "salt").stat().st_mode) == 0o600
    public = load_testbed("wordsense", settings=small_home)
    assert "weak_train" not in public.splits
    assert public["test_id"].labels is None and public["strong_train"].labels is None
    assert public["strong_train"].weak is not None and public["test_ood"].weak is not None


def test_card_reports_shortcuts_within_limits(small_home: Settings) -> None:
    card = load_card("wordsense", small_home)
    assert set(card.counts) == set(SPLITS)
    assert {"answer length", "position (always B)", "lexical overlap", FREQUENT_RULE} <= set(card.shortcuts)
    assert card.shortcuts["position (always B)"]["test_id"] <= 0.51
    assert "/usr/share/wordnet" in card.label_sources
    assert "Shortcut checks" in card.to_markdown()


def test_missing_testbed_error_tells_how_to_prepare(tmp_path) -> None:
    with pytest.raises(TestbedError, match="aar testbed prepare nope"):
        load_testbed("nope", settings=Settings(home=tmp_path))


@pytest.mark.parametrize("name", ["wordsense", "wordsense-verify", "wordsense-room"])
def test_building_embeds_every_text_up_front_as_one_job(name: str, small_home: Settings) -> None:
    """After a build, the default models' features and zero-shot scores of every item come from the cache."""
    tb = load_labelled(name, small_home) if name == "wordsense" else build_testbed(name, "salt-1", 300, small_home)
    if name == "wordsense-room":  # its own filter, said in the card's construction text
        from aar.w2s.testbeds import ROOM_DROP

        assert tb.meta["adversarial_filter"]["drop"] == ROOM_DROP
        assert tb.meta["construction"].endswith("This build's filter removes 28% (ID) / 26% (OOD) instead.")
    before = replace(ENCODE_STATS)
    weak, strong = default_models(name)
    for spec in (weak, strong):
        model = build_model(spec, tb.format, small_home.cache_dir)
        for split in tb.splits.values():
            model.item_features(split.items)
            model.zero_shot(split.items)  # type: ignore[attr-defined]
    assert ENCODE_STATS.since(before).texts == 0


def test_binary_wordsense_has_one_candidate(small_home: Settings) -> None:
    tb = build_wordsense("binary", "salt-1", cache_dir=small_home.cache_dir, max_cases=300)
    assert tb.format == "binary"
    assert all(it.answer_b is None for it in tb["test_ood"].items)
    tb.validate()


def _candidate(i: int, pos: str = "n") -> Candidate:
    topic = ["a river", "money", "a game", "music", "the weather", "cooking", "a ship", "law"][i % 8]
    return Candidate(
        pos,
        f"word{i}",
        f"{i:08d}",
        f"They talked about *word{i}* and {topic}.",
        f"a thing {i} that concerns {topic}",
        0,
        ((f"another sense of word{i}", 1),),
    )


def test_binary_negatives_are_other_false_items_true_definitions_each_shown_once(small_home: Settings) -> None:
    cands = [_candidate(i, "n" if i < 40 else "v") for i in range(60)]
    flags = np.arange(60) % 2
    out, matched = pair_negatives(cands, flags, np.random.default_rng(0), ArrayCache(small_home.cache_dir))
    assert len(out) == 60 and matched.sum() >= 56
    by_def = {c.true_def: c for c in cands}
    shown = [c.distractor for c, y, m in zip(out, flags, matched, strict=True) if y == 0 and m]
    assert len(shown) == len(set(shown))  # each donor definition is shown once
    for c, y, m in zip(out, flags, matched, strict=True):
        if y == 1 or not m:
            assert c.distractor == ""
            continue
        donor = by_def[c.distractor]
        assert donor.word != c.word and donor.pos == c.pos  # another word, same part of speech
        assert flags[cands.index(donor)] == 0  # a false item's definition, never shown as true


def test_binary_definition_counts_and_texts_do_not_reveal_labels(small_home: Settings) -> None:
    """The attacks that broke earlier designs: how often a definition appears, and the definition alone."""
    from aar.labels.card import answer_only_rule

    tb = build_wordsense("binary", "salt-2", cache_dir=small_home.cache_dir, max_cases=1500)
    public = [it for name in PUBLIC_SPLITS for it in tb[name].items]
    counts = Counter(it.answer_a for it in public)
    for name in PUBLIC_SPLITS:
        y = tb[name].require_labels()
        once = np.array([counts[it.answer_a] == 1 for it in tb[name].items])
        acc = float((once == (y == 1)).mean())
        assert max(acc, 1 - acc) < 0.58, (name, acc)
    assert answer_only_rule("binary", tb["strong_train"], tb["test_id"]) < 0.58


@pytest.mark.parametrize("name", ["../etc", "/abs", "a/b", "", ".hidden"])
def test_testbed_names_cannot_escape_aar_home(tmp_path, name: str) -> None:
    with pytest.raises(TestbedError, match="invalid testbed name"):
        load_testbed(name, settings=Settings(home=tmp_path))


def test_card_counts_the_halves_the_eval_server_scores(small_home: Settings) -> None:
    from aar.evalserver.labels import load_labels
    from aar.labels.division import DEFAULT_FRACTION
    from aar.labels.worlds import FOLDS

    card = load_card("wordsense", small_home)
    tl = load_labels("wordsense", small_home)  # the eval server keeps the division prepare made
    for split, ood in (("test_id", False), ("test_ood", True)):
        public = int((tl.public & (tl.is_ood == ood)).sum())
        assert card.halves[split] == {"public": public, "private": card.counts[split] - public}
        assert DEFAULT_FRACTION - 0.1 < public / card.counts[split] < DEFAULT_FRACTION + 0.1
    assert "## Test halves" in card.to_markdown() and "## Private worlds" in card.to_markdown()
    private_id = card.counts["test_id"] - card.halves["test_id"]["public"]
    assert len(card.worlds) == FOLDS and sum(w["test_id"] for w in card.worlds) == private_id
    assert all(w["strong_train"] == private_id - w["test_id"] for w in card.worlds)  # the other folds' ID items
