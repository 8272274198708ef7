"""Attacks on the default testbed that need no model: look-up in the label source, rebuild, priors, ids."""

from __future__ import annotations

import re

import numpy as np
import pytest

from aar.config import Settings
from aar.labels.store import load_labelled
from aar.w2s.testbeds import label_sources
from aar.w2s.testbeds.wordnet import read_synsets
from aar.w2s.testbeds.wordsense import (
    balance_priors,
    build_wordsense,
    choose_distractors,
    collect_candidates,
    level_flags,
    salted_rng,
    to_split,
)


@pytest.fixture(scope="module")
def verbs():  # type: ignore[no-untyped-def]
    return collect_candidates("v")


def test_lookup_in_wordnet_recovers_labels_so_wordnet_is_a_declared_label_source(small_home: Settings) -> None:
    """Control: with WordNet readable, each sentence finds its synset and so its label (the sandbox hides it)."""
    by_example = {}
    for pos in ("n", "v", "r"):
        for s in read_synsets(pos).values():
            for e in s.examples:
                by_example.setdefault(e, s.definition)
    tb = load_labelled("wordsense", small_home)
    split = tb["test_id"]
    hits = [
        (by_example.get(re.sub(r"\*", "", it.prompt)) == (it.answer_b if y else it.answer_a))
        for it, y in zip(split.items, split.require_labels(), strict=True)
    ]
    assert np.mean(hits) > 0.95
    assert "/usr/share/wordnet" in label_sources("wordsense", small_home)
    assert "/usr/share/wordnet" in label_sources("wordsense-verify", small_home)


def test_rebuilding_without_the_salt_reproduces_no_item(small_home: Settings, small_cases: int) -> None:
    stored = load_labelled("wordsense", small_home)
    guess = build_wordsense("pairwise", "", cache_dir=small_home.cache_dir, max_cases=small_cases)
    stored_ids = {i for s in stored.splits.values() for i in s.ids}
    assert not stored_ids & {i for s in guess.splits.values() for i in s.ids}


def test_another_salt_agrees_on_labels_and_distractors_only_at_chance(verbs) -> None:  # type: ignore[no-untyped-def]
    a = choose_distractors(verbs, salted_rng("secret", "pool-id"))
    b = choose_distractors(verbs, salted_rng("guess", "pool-id"))
    same_again = choose_distractors(verbs, salted_rng("secret", "pool-id"))
    assert [c.distractor for c in a] == [c.distractor for c in same_again]  # control: the salt decides
    # distractor agreement: no better than choosing uniformly among the candidates' other senses
    by_key_b = {(c.sense, c.context): c.distractor for c in b}
    agree = [by_key_b.get((c.sense, c.context)) == c.distractor for c in a]
    chance = np.mean([1 / len([d for d, _ in c.others if len(d) != len(c.true_def)]) for c in a])
    assert np.mean(agree) < chance + 0.25  # the prior-balancing targets make picks correlated, not reproducible
    # A/B order: two salts agree on about half of the labels; the same salt on all of them
    _, labels_a = _labels(a, "secret")
    _, labels_b = _labels(a, "guess")
    _, labels_again = _labels(a, "secret")
    assert np.array_equal(labels_a, labels_again)
    assert abs(np.mean(labels_a == labels_b) - 0.5) < 4 * 0.5 / np.sqrt(len(labels_a))


def _labels(cands, salt):  # type: ignore[no-untyped-def]
    rng = salted_rng(salt, "splits")
    split, _ = to_split(*level_flags(cands, rng), "pairwise", rng, salt)
    order = np.argsort([it.prompt for it in split.items])
    return split, split.require_labels()[order]


def test_dictionary_order_and_length_priors_are_balanced_exactly(verbs) -> None:  # type: ignore[no-untyped-def]
    cands = balance_priors(choose_distractors(verbs, salted_rng("s", "x")), salted_rng("s", "y"))
    assert len(cands) > 0.7 * len(verbs)
    assert np.mean([len(c.true_def) > len(c.distractor) for c in cands]) == 0.5
    assert np.mean([c.rank < c.distractor_rank for c in cands]) == 0.5


def test_binary_rebuild_with_another_salt_agrees_only_at_chance(small_home: Settings) -> None:
    """The binary build: which items are true and which definition a false item shows come from the salt."""
    builds = {
        salt: build_wordsense("binary", salt.removesuffix("-again"), cache_dir=small_home.cache_dir, max_cases=2500)
        for salt in ("secret", "guess", "secret-again")
    }

    def shown(tb):  # type: ignore[no-untyped-def]
        return {
            re.sub(r"\*", "", it.prompt): (it.answer_a, int(y))
            for split in tb.splits.values()
            for it, y in zip(split.items, split.require_labels(), strict=True)
        }

    a, b = shown(builds["secret"]), shown(builds["guess"])
    assert shown(builds["secret-again"]) == a  # control: the salt decides
    common = sorted(a.keys() & b.keys())
    assert len(common) > 200
    same_label = np.mean([a[k][1] == b[k][1] for k in common])
    assert abs(same_label - 0.5) < 4 * 0.5 / np.sqrt(len(common))
    false_both = [k for k in common if a[k][1] == 0 and b[k][1] == 0]
    assert np.mean([a[k][0] == b[k][0] for k in false_both]) < 0.2  # the false definition is not reproducible


def test_binary_retrieval_attacks_gain_nothing_over_the_cosine_rule(small_home: Settings) -> None:
    """Transductive attacks an agent could run on the public items (every false definition is another
    item's true one): rank my definition among all public definitions for my sentence, and my sentence
    among all public sentences for my definition. Neither beats the plain cosine threshold it refines."""
    from aar.w2s.models.cache import ArrayCache
    from aar.w2s.models.encoder import EncoderSpec, embed_texts

    tb = build_wordsense("binary", "attack", cache_dir=small_home.cache_dir, max_cases=2500)
    spec, cache = EncoderSpec(name="minilm"), ArrayCache(small_home.cache_dir)
    public = [it for name in ("strong_train", "test_id", "test_ood") for it in tb[name].items]
    every_def = embed_texts(spec, sorted({it.answer_a for it in public}), cache)
    every_ctx = embed_texts(spec, [it.prompt for it in public], cache)

    def accuracy(score: np.ndarray, y: np.ndarray) -> float:
        acc = float(((score > np.median(score)) == (y == 1)).mean())
        return max(acc, 1 - acc)

    for name in ("test_id", "test_ood"):
        y = tb[name].require_labels()
        ctx = embed_texts(spec, [it.prompt for it in tb[name].items], cache)
        own_def = embed_texts(spec, [it.answer_a for it in tb[name].items], cache)
        own = (ctx * own_def).sum(1)
        sentence_rank = -((ctx @ every_def.T) > own[:, None] + 1e-7).sum(1)
        definition_rank = -((own_def @ every_ctx.T) > own[:, None] + 1e-7).sum(1)
        cosine_rule = accuracy(own, y)
        assert cosine_rule < 0.66, name  # near chance (0.54 on the full build; a small pool matches less tightly)
        for score in (sentence_rank, definition_rank):
            assert accuracy(score.astype(float), y) < cosine_rule + 0.04, name
