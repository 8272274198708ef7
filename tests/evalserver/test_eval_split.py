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


def test_the_division_uses_the_whole_salt() -> None:
    """Before: only crc32(salt) seeded the division, so two salts with one checksum gave one division and
    the 2**32 checksums could be enumerated against the published public ids."""
    import random
    import zlib

    from aar.labels.division import divide

    rng = random.Random(0)
    seen: dict[int, str] = {}
    for _ in range(400_000):  # a birthday search finds two random salts with the same crc32
        salt = f"{rng.getrandbits(96):024x}"
        crc = zlib.crc32(salt.encode())
        if crc in seen:
            a, b = seen[crc], salt
            break
        seen[crc] = salt
    else:
        pytest.fail("no crc32 collision found")
    rows = [{"id": f"i{k}", "label": k % 2, "difficulty": "all"} for k in range(400)]
    split_of = ["test_id"] * 400
    assert divide(rows, split_of, 0.5, 0, "tb", a) != divide(rows, split_of, 0.5, 0, "tb", b)
    assert divide(rows, split_of, 0.5, 0, "tb", a) == divide(rows, split_of, 0.5, 0, "tb", a)
