"""Prepare a testbed on the trusted side: build from a secret salt, train the weak model, write, card.

The weak model is trained here on ``weak_train`` ground truth; only its outputs (soft labels on
``strong_train``, predictions on the test items) are published with the label-free splits, as in
the published W2S setup. Of each test split only the public half is published (``write_testbed``).
"""

from __future__ import annotations

from aar.config import Settings, get_settings
from aar.labels.card import TestbedCard, build_card, save_card
from aar.labels.store import load_full, testbed_salt, write_testbed
from aar.labels.worlds import private_worlds
from aar.w2s.models import ModelSpec, build_model
from aar.w2s.models.warm import warm_features
from aar.w2s.testbeds import build_testbed, default_models, label_sources, testbed_name
from aar.w2s.testbeds.base import PUBLIC_SPLITS, TEST_SPLITS, Testbed, load_testbed

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


def warm_testbed(tb: Testbed, settings: Settings) -> int:
    """Embed every text the default weak and strong models will need (the cold path) as one job.

    The weak model sees every split; the strong model every split but ``weak_train``. Built-in
    testbeds warm their candidates while building, so this finds nothing left to do for them.
    """
    weak, strong = default_models(tb.name)
    items = {name: split.items for name, split in tb.splits.items()}
    strong_items = [it for name, split in items.items() if name != "weak_train" for it in split]
    jobs = [(weak, [it for split in items.values() for it in split]), (strong, strong_items)]
    return warm_features(jobs, tb.format, settings.cache_dir)


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
    warm_testbed(tb, settings)
    publish_weak(tb, default_models(stored_name)[0], settings)
    write_testbed(tb, settings)
    card = build_card(tb, label_sources(stored_name, settings))
    card.halves = test_halves(stored_name, settings)
    card.worlds = [{"strong_train": len(w.train), **{s: len(ids) for s, ids in w.tests.items()}}
                   for w in private_worlds(stored_name, settings)]
    save_card(card, settings)
    return card


def test_halves(name: str, settings: Settings) -> dict[str, dict[str, int]]:
    """How many items each test split has in its public half (published) and its private half (label side)."""
    published, full = load_testbed(name, settings), load_full(name, settings)
    return {s: {"public": len(published[s]), "private": len(full[s]) - len(published[s])} for s in TEST_SPLITS}
