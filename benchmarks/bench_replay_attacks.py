"""How far labels an agent wrote itself get through finalize's replay (``aar.labels.replay``).

Scripted researchers on a prepared testbed with stored baselines. Each "writes" the true labels of the
published ``strong_train`` (what an LLM agent could approximate through its model proxy), submits what its
idea folder computes on the public items, and is replayed: on the public items (must reproduce) and in the
private worlds (never-published items, each view's features turned by a secret rotation, no encoder in the
sandbox). Per researcher: released public PGR, whether it reproduced, private PGR ± SE and the paired
difference with the best baseline on the private items.

* ``honest``: the vanilla method (trains on the weak labels);
* ``text table``: its strong_train labels keyed by item text train the head (the private worlds' items are
  not in the table);
* ``shipped head``: a head fitted on those labels in its sandbox, shipped as weights;
* ``PCA-aligned head, k``: the same head in the top-``k`` principal components of each feature block, with
  each component's skewness sign, realigned in the replay (an adaptive attack on the rotation).

    AAR_HOME=/path/to/home .venv/bin/python benchmarks/bench_replay_attacks.py --testbed wordsense-verify
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression

from aar.analysis.rerun import folder_tarball
from aar.config import get_settings
from aar.evalserver.labels import load_labels
from aar.evalserver.scoring import score
from aar.labels.replay import replay_submission
from aar.labels.store import load_labelled
from aar.w2s.testbeds.base import TEST_SPLITS
from aar.w2s.workbench import Workbench

HEAD = """import argparse, json
from pathlib import Path
import numpy as np
from aar.w2s.workbench import Workbench
ap = argparse.ArgumentParser(); ap.add_argument("--testbed"); ap.add_argument("--out", type=Path)
args = ap.parse_args()
wb = Workbench(args.testbed)
here = Path(__file__).parent
"""
HONEST = HEAD + """h = wb.fit((wb.weak("strong_train") > 0.5).astype(float))
wb.save_predictions(wb.predict_tests(h), args.out / "predictions.jsonl")
"""
TEXT_TABLE = HEAD + """table = json.loads((here / "labels.json").read_text())
train = zip(wb.testbed["strong_train"].items, wb.weak("strong_train"))
h = wb.fit(np.array([table.get(it.prompt + "|" + it.answer_a, float(w > 0.5)) for it, w in train]))
wb.save_predictions(wb.predict_tests(h), args.out / "predictions.jsonl")
"""
SHIPPED = HEAD + """w = json.loads((here / "head.json").read_text())
preds = {s: 1 / (1 + np.exp(-(wb.features(s) @ np.array(w["coef"]) + w["bias"]))) for s in ("test_id", "test_ood")}
wb.save_predictions(preds, args.out / "predictions.jsonl")
"""
PCA_ALIGNED = HEAD + """ship = json.loads((here / "pca.json").read_text())
allx = np.concatenate([wb.features(s) for s in ("strong_train", "test_id", "test_ood")]).astype(np.float64)
logit = {s: np.full(len(wb.ids(s)), ship["bias"] + ship["offset"]) for s in ("test_id", "test_ood")}
for name, (a, b) in wb.store.blocks.items():
    ref = ship["blocks"][name]
    xb = allx[:, a:b]
    mu = xb.mean(0)
    v = np.linalg.eigh(np.cov(xb - mu, rowvar=False))[1][:, ::-1][:, :len(ref["skew"])]
    v = v * np.sign((((xb - mu) @ v) ** 3).mean(0)) * np.sign(ref["skew"])
    for s in logit:
        logit[s] += ((wb.features(s)[:, a:b].astype(np.float64) - mu) @ v) @ np.array(ref["w_pc"])
wb.save_predictions({s: 1 / (1 + np.exp(-g)) for s, g in logit.items()}, args.out / "predictions.jsonl")
"""


def folder(files: dict[str, str]) -> bytes:
    return folder_tarball({name: text.encode() for name, text in files.items()})


def by_id(wb: Workbench, preds: dict[str, np.ndarray]) -> dict[str, float]:
    return {i: float(p) for s in TEST_SPLITS for i, p in zip(wb.ids(s), preds[s], strict=True)}


def pca_ship(wb: Workbench, coef: np.ndarray, bias: float, k: int) -> tuple[dict, dict[str, float]]:
    """The head in each block's top-``k`` principal components (from the published rows), and its predictions."""
    allx = np.concatenate([wb.features(s) for s in ("strong_train", *TEST_SPLITS)]).astype(np.float64)
    ship: dict = {"bias": bias, "offset": 0.0, "blocks": {}}
    logit = {s: np.full(len(wb.ids(s)), bias) for s in TEST_SPLITS}
    for name, (a, b) in wb.store.blocks.items():
        xb = allx[:, a:b]
        mu = xb.mean(0)
        v = np.linalg.eigh(np.cov(xb - mu, rowvar=False))[1][:, ::-1][:, :min(k, b - a)]
        w_pc = v.T @ coef[a:b]
        ship["offset"] += float(mu @ coef[a:b])
        ship["blocks"][name] = {"skew": np.sign((((xb - mu) @ v) ** 3).mean(0)).tolist(), "w_pc": w_pc.tolist()}
        for s in TEST_SPLITS:
            logit[s] += ((wb.features(s)[:, a:b].astype(np.float64) - mu) @ v) @ w_pc
    return ship, by_id(wb, {s: 1 / (1 + np.exp(-(g + ship["offset"]))) for s, g in logit.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testbed", default="wordsense-verify")
    ap.add_argument("--components", default="16,64,256")
    args = ap.parse_args()
    settings = get_settings()
    tl = load_labels(args.testbed, settings)
    wb = Workbench(args.testbed, settings)
    st = load_labelled(args.testbed, settings)["strong_train"]
    table = {it.prompt + "|" + it.answer_a: float(y) for it, y in zip(st.items, st.require_labels(), strict=True)}
    written = np.array([table[it.prompt + "|" + it.answer_a] for it in wb.testbed["strong_train"].items])
    fitted = LogisticRegression(C=1.0, max_iter=3000).fit(wb.features("strong_train"), written)
    coef, bias = fitted.coef_[0], float(fitted.intercept_[0])
    researchers = [
        ("honest", by_id(wb, wb.predict_tests(wb.fit((wb.weak("strong_train") > 0.5).astype(float)))),
         {"run.py": HONEST}),
        ("text table", by_id(wb, wb.predict_tests(wb.fit(written))),
         {"run.py": TEXT_TABLE, "labels.json": json.dumps(table)}),
        ("shipped head", by_id(wb, {s: fitted.predict_proba(wb.features(s))[:, 1] for s in TEST_SPLITS}),
         {"run.py": SHIPPED, "head.json": json.dumps({"coef": coef.tolist(), "bias": bias})}),
    ]
    for k in (int(x) for x in args.components.split(",")):
        ship, submitted = pca_ship(wb, coef, bias, k)
        files = {"run.py": PCA_ALIGNED, "pca.json": json.dumps(ship)}
        researchers.append((f"PCA-aligned head, k={k}", submitted, files))
    print(f"{'researcher':24s} {'public PGR':>12s} {'repro':>6s} {'private PGR':>16s} {'vs best baseline':>24s}")
    for name, submitted, files in researchers:
        public = score(tl, tl.expand(np.array([submitted[i] for i in tl.submit_ids])), "public")
        r = replay_submission(tl, submitted, "bench", "0" * 64, folder(files), settings, timeout_s=900)
        if r.private is None or r.vs_best_baseline is None:
            print(f"{name:24s} {public.pgr.combined:12.3f} {'no':>6s}  {r.reason}")
            continue
        v = r.vs_best_baseline
        print(f"{name:24s} {public.pgr.combined:12.3f} {'yes':>6s} {r.private.pgr.combined:8.3f} ± "
              f"{r.private.pgr_se.combined:.3f} {v.baseline:>12s} {v.diff.combined:+.3f} ± {v.paired_se.combined:.3f}",
              flush=True)


if __name__ == "__main__":
    main()
