"""The room criteria and the headroom share on known inputs; the sealed reference on a small testbed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aar.config import Settings
from aar.labels.room import MIN_LEAD_SE, PartRoom, room_criteria
from aar.w2s.scoring import headroom_share


def test_the_reference_needs_no_label_and_mixes_zero_shot_in(small_home: Settings) -> None:
    """It runs on the public view (no strong_train labels: reading one would raise) like any agent's method."""
    from aar.labels.sealed import ZEROSHOT_AT_TEST, reference_method
    from aar.w2s.experiment import make_context
    from aar.w2s.methods.elicitation import consistent_zero_shot
    from aar.w2s.testbeds import default_models
    from aar.w2s.testbeds.base import load_testbed

    tb = load_testbed("wordsense", small_home)
    assert tb["strong_train"].labels is None
    ctx = make_context(tb, default_models("wordsense")[1], 0, small_home)
    out = reference_method(ctx).test_probs
    for s in ("test_id", "test_ood"):
        zs = consistent_zero_shot(ctx.make_strong(), tb[s].items)
        student = (out[s] - ZEROSHOT_AT_TEST * zs) / (1 - ZEROSHOT_AT_TEST)  # what the self-trained student said
        assert len(out[s]) == len(tb[s]) and student.min() > -1e-9 and student.max() < 1 + 1e-9
        assert ((out[s] > 0.5) != (zs > 0.5)).any()  # not zero-shot alone


def test_headroom_share_is_zero_at_the_best_baseline_and_one_at_the_reference() -> None:
    rng = np.random.default_rng(0)
    best = (rng.random(4000) < 0.6).astype(float)
    ref = np.where(rng.random(4000) < 0.3, 1.0, best)  # the reference fixes 30% of the items
    assert headroom_share(best, best, ref)[0] == 0.0
    share, se = headroom_share(ref, best, ref)
    assert share == pytest.approx(1.0) and se == pytest.approx(0.0)
    half = np.where((ref > best) & (rng.random(4000) < 0.5), 1.0, best)  # recovers about half of what ref fixes
    share, se = headroom_share(half, best, ref)
    assert share is not None and se is not None and abs(share - 0.5) < 3 * se and 0 < se < 0.05
    assert headroom_share(ref, ref, best) == (None, None)  # the "reference" is worse: no headroom to share


def _part(best: float, ref: float | None, lead_se: float) -> PartRoom:
    return PartRoom(n_private=3000, baselines={"vanilla": 0.1, "mix": best}, best="mix", reference=ref,
                    reference_se=0.03, lead=None if ref is None else ref - best, lead_se=lead_se)


def test_room_criteria_need_low_baselines_a_high_reference_and_a_lead_of_four_paired_se() -> None:
    met = room_criteria({"id": _part(0.30, 0.65, 0.02)})
    assert [c.passed for c in met] == [True, True, True] and met[0].name.endswith(": mix")
    assert [c.passed for c in room_criteria({"id": _part(0.40, 0.65, 0.02)})] == [False, True, True]
    assert [c.passed for c in room_criteria({"id": _part(0.30, 0.55, 0.02)})] == [True, False, True]
    lead = 0.64 - 0.30
    assert [c.passed for c in room_criteria({"id": _part(0.30, 0.64, lead / MIN_LEAD_SE + 0.01)})] == [
        True, True, False]
    assert [c.passed for c in room_criteria({"ood": _part(0.30, None, 0.02)})] == [True, False, False]


def test_every_worker_sandbox_masks_the_sealed_reference(tmp_path: Path) -> None:
    import aar.labels.sealed
    from aar.sandbox import worker_config

    config = worker_config(tmp_path, aar_home=tmp_path / "home")
    assert Path(aar.labels.sealed.__file__).resolve().parent in config.hidden_paths
