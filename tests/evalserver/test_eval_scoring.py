"""Released scores (public half) and private-half scores (what a replay is scored by) match an independent
sklearn / numpy computation on random predictions."""

from __future__ import annotations

import numpy as np
import pytest
from evalkit import LiveEval, SyntheticTestbed, make_testbed, noisy_predictions
from sklearn.metrics import accuracy_score

from aar.evalserver.guard import nice_step
from aar.evalserver.labels import load_labels
from aar.evalserver.scoring import score


def ref_accuracy(preds: dict[str, float], labels: dict[str, int], items: list[str]) -> float:
    """sklearn accuracy on decided items plus half credit for predictions of exactly 0.5."""
    decided = [i for i in items if preds[i] != 0.5]
    hits = accuracy_score([labels[i] for i in decided], [int(preds[i] > 0.5) for i in decided],
                          normalize=False)
    return float((hits + 0.5 * (len(items) - len(decided))) / len(items))


def ref_parts(tb: SyntheticTestbed, visibility: str) -> dict[str, list[str]]:
    public = tb.public_ids()
    chosen = [i for i in tb.all_labels if (i in public) == (visibility == "public")]
    return {"id": [i for i in chosen if "test_id" in i], "ood": [i for i in chosen if "test_ood" in i],
            "combined": chosen}


def full_part(tb: SyntheticTestbed, items: list[str]) -> list[str]:
    """All test items (public and private) of the part that ``items`` belong to."""
    kinds = {"test_id" in i for i in items}
    return [i for i in tb.all_labels if ("test_id" in i) in kinds]


def ref_pgr(tb: SyntheticTestbed, preds: dict[str, float], items: list[str], private: bool = False) -> float:
    """PGR on ``items`` against W and S of the whole part (released scores) or of the private ``items``
    themselves (private scores: evalkit's private world holds the same predictions)."""
    acc = ref_accuracy(preds, tb.all_labels, items)
    full = items if private else full_part(tb, items)
    w = np.mean([ref_accuracy(p, tb.all_labels, full) for p in tb.weak])
    s = np.mean([ref_accuracy(p, tb.all_labels, full) for p in tb.ceiling])
    return float((acc - w) / (s - w))


def random_predictions(tb: SyntheticTestbed, rng: np.random.Generator) -> dict[str, float]:
    p = rng.random(len(tb.test_ids))
    p[rng.random(len(p)) < 0.05] = 0.5  # some exact ties earn half credit
    return {i: float(v) for i, v in zip(tb.test_ids, p, strict=True)}


def test_exact_scores_match_reference(live: LiveEval) -> None:
    tb = live.testbed
    live.set_team("ref-exact", mechanism="exact", max_per_hour=1000)
    client = live.client("r", "ref-exact")
    rng = np.random.default_rng(11)
    for _ in range(6):
        preds = random_predictions(tb, rng)
        r = client.post("/v1/submissions", json={"testbed": tb.name, "predictions": preds})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["warning"] and "trusted use only" in out["warning"]
        for part, items in ref_parts(tb, "public").items():
            expected = ref_accuracy(preds, tb.labels, items)
            assert out["released"]["acc"][part] == pytest.approx(expected, abs=1e-12)
            assert out["released"]["pgr"][part] == pytest.approx(ref_pgr(tb, preds, items), abs=1e-4)
            full = full_part(tb, items)  # W and S come from the full test split of the part
            w = np.mean([ref_accuracy(p, tb.all_labels, full) for p in tb.weak])
            assert out["baselines"][part]["weak"] == pytest.approx(w, abs=1e-4)
            accs = [ref_accuracy(p, tb.all_labels, full) for p in tb.ceiling]
            se = np.std(accs, ddof=1) / np.sqrt(len(accs))
            assert out["baselines"][part]["ceiling_se"] == pytest.approx(se, abs=1e-4)


def test_ladder_releases_rounded_hard_score(live: LiveEval) -> None:
    """The default Ladder releases the hard-label accuracy (0.5 earns nothing), rounded to its step."""
    tb = live.testbed
    client = live.client("r", "ref-ladder")
    rng = np.random.default_rng(5)
    preds = noisy_predictions(tb.labels, 0.97, rng)  # well above W, so the first release goes out
    for i in tb.test_ids[:7]:
        preds[i] = 0.5
    out = client.post("/v1/submissions", json={"testbed": tb.name, "predictions": preds}).json()
    hard = {i: (0.0 if p == 0.5 and tb.labels[i] == 1 else 1.0 if p == 0.5 else p) for i, p in preds.items()}
    for part, items in ref_parts(tb, "public").items():
        step = nice_step(0.5 / np.sqrt(len(items)))
        assert out["released"]["step"][part] == pytest.approx(step)
        expected = round(ref_accuracy(hard, tb.labels, items) / step) * step  # a tie counts as wrong
        assert out["released"]["acc"][part] == pytest.approx(expected, abs=1e-9)
    assert out["released"]["improved"] is True


def _private_scores(live: LiveEval, preds: dict[str, float]) -> dict:
    """The label side's scores of predictions on the private half (as a replay is scored)."""
    tl = load_labels(live.testbed.name, live.settings)
    vec = np.array([preds.get(i, np.nan) for i in tl.ids])
    return score(tl, vec, "private", with_se=True).model_dump()


def test_public_and_private_pgr_denominators(live: LiveEval) -> None:
    """Released scores take W and S from the full test set (so the division never moves their denominator); private
    scores from the private worlds' runs on the private items, where replays are run too."""
    tb = live.testbed
    public, private = ref_parts(tb, "public"), ref_parts(tb, "private")
    live.set_team("ref-den", mechanism="exact")
    preds = noisy_predictions(tb.labels, 0.8, np.random.default_rng(1))
    out = live.client("d", "ref-den").post("/v1/submissions", json={"testbed": tb.name, "predictions": preds}).json()
    replayed = _private_scores(live, noisy_predictions(tb.all_labels, 0.8, np.random.default_rng(1)))
    moved = []
    for part in ("id", "ood", "combined"):
        full = public[part] + private[part]
        w = np.mean([ref_accuracy(p, tb.all_labels, full) for p in tb.weak])
        s = np.mean([ref_accuracy(p, tb.all_labels, full) for p in tb.ceiling])
        w_pub = np.mean([ref_accuracy(p, tb.all_labels, public[part]) for p in tb.weak])
        w_priv = np.mean([ref_accuracy(p, tb.all_labels, private[part]) for p in tb.weak])  # evalkit's private world
        s_priv = np.mean([ref_accuracy(p, tb.all_labels, private[part]) for p in tb.ceiling])
        moved.append(abs(w_pub - w_priv))
        assert out["baselines"][part]["weak"] == pytest.approx(w, abs=1e-4)
        assert out["released"]["pgr"][part] == pytest.approx((out["released"]["acc"][part] - w) / (s - w), abs=1e-3)
        acc = replayed["acc"][part]
        assert replayed["pgr"][part] == pytest.approx((acc - w_priv) / (s_priv - w_priv), abs=1e-3)
    assert max(moved) > 1e-3  # control: the two denominators differ here


def test_finalize_selects_the_best_public_submission_and_private_scores_match_reference(live: LiveEval) -> None:
    tb = live.testbed
    client = live.client("f1", "ref-final")
    rng = np.random.default_rng(2)
    subs = [random_predictions(tb, rng) for _ in range(3)]
    for preds in subs:
        r = client.post("/v1/submissions", json={"testbed": tb.name, "predictions": preds})
        assert r.status_code == 200
    report = live.client(admin=True).post("/v1/teams/ref-final/finalize").json()
    (entry,) = report["workers"]
    public, private = ref_parts(tb, "public"), ref_parts(tb, "private")
    best = max(subs, key=lambda p: ref_accuracy(p, tb.labels, public["combined"]))
    assert entry["submissions"] == 3 and entry["private"] is None  # only a replay gives a private score
    for part in ("id", "ood", "combined"):
        assert entry["public"]["acc"][part] == pytest.approx(ref_accuracy(best, tb.labels, public[part]))
    assert report["team_best"][0]["worker_id"] == "f1"
    on_private = {i: float(v) for i, v in zip(private["combined"], rng.random(len(private["combined"])), strict=True)}
    scored = _private_scores(live, on_private)
    for part in ("id", "ood", "combined"):
        assert scored["acc"][part] == pytest.approx(ref_accuracy(on_private, tb.all_labels, private[part]))
        assert scored["pgr"][part] == pytest.approx(ref_pgr(tb, on_private, private[part], private=True), abs=1e-4)
    # bootstrap SE of an accuracy near 1/2 on n items is about sqrt(1/4n)
    n = len(private["combined"])
    assert 0.6 * np.sqrt(0.25 / n) < scored["acc_se"]["combined"] < 1.4 * np.sqrt(0.25 / n)
    with pytest.raises(ValueError, match="no predictions for the private items"):
        _private_scores(live, best)  # a submission's vector never scores the private half


def test_pgr_is_null_with_a_reason_without_a_gap_or_baselines(live: LiveEval) -> None:
    ids = {"inverted": make_testbed(live.settings, name="inverted", weak_acc=0.9, ceiling_acc=0.55, seed=4).test_ids,
           "nobase": make_testbed(live.settings, name="nobase", seed=5).test_ids}
    (live.settings.labels_dir / "nobase" / "baselines.json").unlink()
    (live.settings.labels_dir / "nobase" / "baseline_predictions.json").unlink()
    live.set_team("ref-null", mechanism="exact")
    client = live.client("p", "ref-null")
    for name, reason in (("inverted", "does not beat"), ("nobase", "no usable baselines")):
        preds = dict.fromkeys(ids[name], 0.7)
        r = client.post("/v1/submissions", json={"testbed": name, "predictions": preds})
        assert r.status_code == 200, r.text
        rel = r.json()["released"]
        assert rel["acc"]["combined"] is not None
        assert rel["pgr"]["combined"] is None and reason in rel["pgr_reason"]["combined"]


def test_thresholdout_over_http(live: LiveEval) -> None:
    tb = live.testbed
    live.set_team("ref-thr", mechanism="thresholdout", thresholdout={"budget": 3}, detectors={"withhold": []})
    client = live.client("t", "ref-thr")
    preds = random_predictions(tb, np.random.default_rng(8))
    first = client.post("/v1/submissions", json={"testbed": tb.name, "predictions": preds}).json()
    assert first["mechanism"] == "thresholdout" and first["released"]["improved"] is True
    assert first["released"]["info"]["budget_left"] == 2
    again = client.post("/v1/submissions", json={"testbed": tb.name, "predictions": preds}).json()
    if not again["released"]["improved"]:  # usually: no change, the last released value comes back
        assert again["released"]["acc"] == first["released"]["acc"]
    info = {t["name"]: t for t in client.get("/v1/testbeds").json()}
    assert info[tb.name]["n_items"] == len(tb.test_ids) and info[tb.name]["mechanism"] == "thresholdout"
