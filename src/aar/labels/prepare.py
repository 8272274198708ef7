"""Prepare a testbed on the trusted side: build from a secret salt, train the weak model, write, card.

The weak model is trained here on ``weak_train`` ground truth; only its outputs (soft labels on
``strong_train``, predictions on the test items) are published with the label-free splits, as in
the published W2S setup.
"""

from __future__ import annotations

from aar.config import Settings, get_settings
from aar.labels.card import TestbedCard, build_card, save_card
from aar.labels.store import testbed_salt, write_testbed
from aar.w2s.models import ModelSpec, build_model
from aar.w2s.testbeds import build_testbed, default_models, label_sources, testbed_name
from aar.w2s.testbeds.base import PUBLIC_SPLITS, TEST_SPLITS, Testbed

WEAK_SEED = 0


def publish_weak(tb: Testbed, spec: ModelSpec, settings: Settings) -> None:
    """Train the weak model on ``weak_train`` ground truth and attach its P(label 1) to every published split."""
    split = tb["weak_train"]
    model = build_model(spec, tb.format, settings.cache_dir).fit(
        split.items, split.require_labels().astype(float), seed=WEAK_SEED
    )
    for name in PUBLIC_SPLITS:
        tb[name].weak = model.predict_proba(tb[name].items)
    tb.meta["weak_model"] = {**spec.model_dump(), "seed": WEAK_SEED}


def prepare_testbed(
    name: str,
    max_items: int | None = None,
    settings: Settings | None = None,
    *,
    new_salt: bool = False,
    salt: str | None = None,
) -> TestbedCard:
    """Build a testbed from its secret salt, publish the weak model's outputs, write it and its card.

    The salt is ``salt`` if given (to reproduce a build), else the stored one, else a new one.
    """
    settings = settings or get_settings()
    stored_name = testbed_name(name)
    salt = testbed_salt(stored_name, settings, new=new_salt, value=salt)
    tb = build_testbed(name, salt, max_items, settings)
    tb.name = stored_name
    publish_weak(tb, default_models(stored_name)[0], settings)
    write_testbed(tb, settings)
    card = build_card(tb, label_sources(stored_name, settings))
    card.halves = divide_tests(tb, settings)
    save_card(card, settings)
    return card


def divide_tests(tb: Testbed, settings: Settings) -> dict[str, dict[str, int]]:
    """Make (or keep) the public / private division of the test items now, the one the eval server then
    uses (its default fraction and seed), and count each half per test split."""
    from aar.labels.division import DEFAULT_FRACTION, DEFAULT_SEED, load_or_divide

    rows, split_of = [], []
    for split in TEST_SPLITS:
        part = tb[split]
        difficulty = part.difficulty or ["all"] * len(part)
        rows += [{"id": it.id, "label": int(y), "difficulty": d}
                 for it, y, d in zip(part.items, part.require_labels(), difficulty, strict=True)]
        split_of += [split] * len(part)
    public = load_or_divide(tb.name, rows, split_of, DEFAULT_FRACTION, DEFAULT_SEED, settings)
    halves = {s: {"public": 0, "private": 0} for s in TEST_SPLITS}
    for row, split in zip(rows, split_of, strict=True):
        halves[split]["public" if row["id"] in public else "private"] += 1
    return halves
