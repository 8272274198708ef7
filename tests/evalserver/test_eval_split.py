"""The public / private division: stratified, seeded, made once and kept, redone only if items change."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from evalkit import make_testbed

from aar.config import Settings
from aar.evalserver.labels import load_labels
from aar.labels.store import read_label_rows


def test_division_is_stratified_and_made_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=tmp_path)
    make_testbed(settings, n_test=120)
    tl = load_labels("tiny", settings, fraction=0.5, seed=3)
    path = settings.labels_dir / "tiny" / "eval_split.json"
    stored = path.read_text()
    public = set(json.loads(stored)["public"])
    assert public == {tl.ids[i] for i in tl.part("public", "combined")}
    assert not public & {tl.ids[i] for i in tl.part("private", "combined")}
    assert len(tl.part("public", "combined")) + len(tl.part("private", "combined")) == tl.n
    strata: Counter[tuple[str, str, int]] = Counter()
    chosen: Counter[tuple[str, str, int]] = Counter()
    for split in ("test_id", "test_ood"):
        for row in read_label_rows("tiny", split, settings):
            key = (split, row["difficulty"], row["label"])
            strata[key] += 1
            chosen[key] += row["id"] in public
    for key, size in strata.items():
        assert abs(chosen[key] - size / 2) <= 1, key
    with caplog.at_level(logging.WARNING, logger="aar.evalserver"):
        again = load_labels("tiny", settings, fraction=0.3, seed=9)  # other settings: the division stays
    assert path.read_text() == stored and (again.public == tl.public).all()
    assert "keeps its existing" in caplog.text


def test_different_seeds_divide_differently_and_changed_items_divide_anew(tmp_path: Path) -> None:
    a, b = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    make_testbed(a)
    make_testbed(b)
    assert (load_labels("tiny", a, seed=0).public != load_labels("tiny", b, seed=1).public).any()
    before = (a.labels_dir / "tiny" / "eval_split.json").read_text()
    make_testbed(a, n_test=90)  # the testbed is rebuilt with other items
    tl = load_labels("tiny", a, seed=0)
    assert tl.n == 180 and (a.labels_dir / "tiny" / "eval_split.json").read_text() != before
