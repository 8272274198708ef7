"""The public / private division: stratified, seeded, made once and kept, redone only if items change."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from evalkit import make_testbed

from aar.config import Settings
from aar.evalserver.labels import load_labels
from aar.labels.division import DEFAULT_FRACTION, divide
from aar.labels.store import load_full, read_label_rows
from aar.w2s.testbeds.base import TestbedError


def test_division_is_stratified_made_once_and_only_the_public_half_is_published(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=tmp_path)
    tb = make_testbed(settings, n_test=120, public_fraction=None)  # the division prepare makes
    tl = load_labels("tiny", settings)
    path = settings.labels_dir / "tiny" / "eval_split.json"
    stored = path.read_text()
    public = set(json.loads(stored)["public"])
    assert public == {tl.ids[i] for i in tl.part("public", "combined")} == set(tl.submit_ids) == set(tb.test_ids)
    assert not public & {tl.ids[i] for i in tl.part("private", "combined")}
    assert len(tl.part("public", "combined")) + len(tl.part("private", "combined")) == tl.n == 240
    published = "".join(p.read_text() for p in (settings.testbeds_dir / "tiny").glob("*.jsonl"))
    assert not [i for i in tb.private_ids if i in published]  # neither the ids nor the items
    assert sorted(load_full("tiny", settings)["test_id"].ids) == sorted(i for i in tb.all_labels if "test_id" in i)
    strata: Counter[tuple[str, str, int]] = Counter()
    chosen: Counter[tuple[str, str, int]] = Counter()
    for split in ("test_id", "test_ood"):
        for row in read_label_rows("tiny", split, settings):
            key = (split, row["difficulty"], row["label"])
            strata[key] += 1
            chosen[key] += row["id"] in public
    for key, size in strata.items():
        assert abs(chosen[key] - size * DEFAULT_FRACTION) <= 1, key
    stale = settings.testbeds_dir / "tiny" / "features" / "old-build"  # e.g. rows of a then-published half
    stale.mkdir(parents=True)
    make_testbed(settings, n_test=120, public_fraction=None)  # written again with the same items: the division stays
    assert not stale.exists()  # feature stores of an earlier build are gone
    assert path.read_text() == stored and (load_labels("tiny", settings).public == tl.public).all()


def test_different_seeds_divide_differently_and_changed_items_divide_anew(tmp_path: Path) -> None:
    a = Settings(home=tmp_path / "a")
    make_testbed(a)
    rows = [r for s in ("test_id", "test_ood") for r in read_label_rows("tiny", s, a)]
    split_of = [s for s in ("test_id", "test_ood") for _ in read_label_rows("tiny", s, a)]
    assert divide(rows, split_of, 0.5, 0, "tiny") != divide(rows, split_of, 0.5, 1, "tiny")
    assert divide(rows, split_of, 0.5, 0, "tiny") != divide(rows, split_of, 0.5, 0, "tiny", salt="secret")
    before = (a.labels_dir / "tiny" / "eval_split.json").read_text()
    make_testbed(a, n_test=90)  # the testbed is rebuilt with other items
    tl = load_labels("tiny", a)
    assert tl.n == 180 and (a.labels_dir / "tiny" / "eval_split.json").read_text() != before


def test_a_testbed_without_its_division_must_be_prepared_again(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    make_testbed(settings)
    (settings.labels_dir / "tiny" / "eval_split.json").unlink()
    with pytest.raises(TestbedError, match="prepare tiny"):
        load_labels("tiny", settings)
