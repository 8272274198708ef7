"""The private world: where a final score comes from, built of never-published items only.

An agent can label the published ``strong_train`` itself (it reads the texts, and its sandbox reaches a
frontier model), so a replay that trains on the published ``strong_train`` lets a table of labels it wrote,
keyed by anything an item carries (text, weak output, feature row), train the strong model there too. The
private world has no published item: the private half of the test splits is dealt into ``FOLDS`` folds
(within each split, difficulty and label, from the testbed's secret salt); world ``j`` trains on the private
``test_id`` items outside fold ``j`` (its ``strong_train``, with their weak outputs) and is tested on fold
``j`` of every test split. Each private item is predicted exactly once, by a run that saw none of its own fold.

Baselines (:mod:`aar.labels.baselines`) and replays (:mod:`aar.labels.replay`) both run in these worlds, so
W, S, every baseline and every finalist are measured on the same items under the same conditions, and a paired
comparison stays paired. The private world's ``strong_train`` is smaller than the published one (the private
ID half times ``(FOLDS - 1) / FOLDS``) and comes from the ``test_id`` pool, so unlike a testbed's published
split it may share sources (words, say) with its test fold: private scores describe that regime, and the
public / private gap of every method (baselines included) carries the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from aar.config import Settings
from aar.labels.division import deal_folds, load_division, stored_salt
from aar.labels.store import read_label_rows
from aar.w2s.testbeds.base import TEST_SPLITS, Split, Testbed

FOLDS = 3


@dataclass(frozen=True)
class World:
    """One private world: ``train`` (private ``test_id`` ids, its ``strong_train``) and ``tests`` (split -> ids)."""

    train: tuple[str, ...]
    tests: dict[str, tuple[str, ...]]

    @property
    def test_ids(self) -> set[str]:
        return {i for ids in self.tests.values() for i in ids}


def private_worlds(name: str, settings: Settings, folds: int = FOLDS) -> list[World]:
    """The private worlds of testbed ``name`` (trusted side: reads the label store)."""
    rows: list[dict] = []
    split_of: list[str] = []
    for split in TEST_SPLITS:
        part = read_label_rows(name, split, settings)
        rows += part
        split_of += [split] * len(part)
    public = load_division(name, [str(r["id"]) for r in rows], settings)
    private = [(str(r["id"]), s, r) for r, s in zip(rows, split_of, strict=True) if str(r["id"]) not in public]
    fold = deal_folds([r for _, _, r in private], [s for _, s, _ in private], folds, name, stored_salt(name, settings))
    return [World(train=tuple(i for i, s, _ in private if s == "test_id" and fold[i] != j),
                  tests={t: tuple(i for i, s, _ in private if s == t and fold[i] == j) for t in TEST_SPLITS})
            for j in range(folds)]


def world_testbed(full: Testbed, world: World) -> Testbed:
    """``full`` (test splits with both halves: ``load_full`` or ``load_labelled``) cut to ``world``: its
    ``strong_train`` holds the world's training items (with weak outputs, and labels where ``full`` has them),
    its test splits the world's fold; ``weak_train`` is kept when present."""

    def pick(split: str, ids: tuple[str, ...]) -> Split:
        position = {it.id: k for k, it in enumerate(full[split].items)}
        return full[split].select(position[i] for i in ids)

    splits = {"strong_train": pick("test_id", world.train), **{s: pick(s, world.tests[s]) for s in TEST_SPLITS}}
    if "weak_train" in full.splits:
        splits = {"weak_train": full["weak_train"], **splits}
    return Testbed(full.name, full.format, splits, dict(full.meta))
