"""One ``evolve`` worker against live services for N minutes on the default testbed: does it beat the best
shipped baseline on the **private** half by at least 2 paired SE, and how soon?

Needs an AAR_HOME with the default testbed prepared and its baselines stored (``aar testbed prepare``,
``aar baselines``). Starts the eval server and hub on loopback, runs the worker in bwrap, then scores
(trusted side) every submission and every shipped baseline on the private half with the paired SE
of the difference. The selected submission is the one the eval server's finalize picks (best true
public score), as for a real team.

    .venv/bin/python benchmarks/bench_evolve.py --home .aar --minutes 20
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("AAR_QUIET", "1")
BASELINES = ("vanilla", "vanilla_soft", "confident", "logconf", "zeroshot", "ue_zeroshot")
WEAK_LABEL_BASELINES = ("vanilla", "vanilla_soft", "confident", "logconf")  # trained on the weak labels


def read_predictions(path: Path) -> dict[str, float]:
    return {r["id"]: r["prob"] for r in map(json.loads, path.read_text().splitlines()) if r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".aar"))
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--sandbox", default="bwrap")
    args = parser.parse_args()
    os.environ["AAR_HOME"] = str(args.home.resolve())
    from aar.agents.base import Budget, read_trajectory
    from aar.agents.evolve import EvolveConfig
    from aar.agents.worker import WorkerConfig, run_worker
    from aar.auth import TokenStore
    from aar.config import get_settings
    from aar.db import make_engine
    from aar.evalserver.admin import finalize
    from aar.evalserver.app import create_app as eval_app
    from aar.hub.app import HubConfig
    from aar.hub.app import create_app as hub_app
    from aar.labels.compare import paired_private
    from aar.servicekit import serve_in_thread
    from aar.w2s.experiment import run_experiment
    from aar.w2s.testbeds import DEFAULT_TESTBED
    from aar.w2s.testbeds.base import TEST_SPLITS, load_testbed

    settings = get_settings()
    tb = load_testbed(DEFAULT_TESTBED, settings)
    team = f"bench-{int(time.time())}"
    token = TokenStore(make_engine(settings.sqlite_url("auth"))).create("evolve-1", team)
    start = time.monotonic()
    with serve_in_thread(eval_app(settings)) as eval_url, \
            serve_in_thread(hub_app(settings, HubConfig(eval_url=eval_url))) as hub_url:
        config = WorkerConfig(team=team, worker="evolve-1", testbed=DEFAULT_TESTBED, sandbox=args.sandbox,
                              hub_url=hub_url, eval_url=eval_url,
                              budget=Budget(wall_s=args.minutes * 60, submissions=60),
                              evolve=EvolveConfig(children=args.children))
        result = run_worker(config, token, settings)
    minutes = (time.monotonic() - start) / 60
    report = finalize(settings, team)
    selected = report.team_best[0].submission_id if report.team_best else None
    subs = [s for s in read_trajectory(result.trajectory) if s.type == "submission"]
    print(f"evolve: {len(subs)} submissions in {minutes:.1f} min; finalize selected {selected}")

    base_preds: dict[str, dict[str, float]] = {}
    for name in BASELINES:
        out = run_experiment(name, DEFAULT_TESTBED, settings=settings)
        base_preds[name] = {i: float(p) for s in TEST_SPLITS for i, p in zip(tb[s].ids, out.test_probs[s], strict=True)}
    vs_vanilla = {n: paired_private(DEFAULT_TESTBED, p, base_preds["vanilla"], settings) for n, p in base_preds.items()}
    best = max(BASELINES, key=lambda n: vs_vanilla[n]["combined"].pgr_a)
    print("\nshipped baselines, private half (PGR ± SE):")
    for n in BASELINES:
        r = vs_vanilla[n]
        print(f"  {n:13s} " + "  ".join(f"{p} {r[p].pgr_a:.3f}±{r[p].se_a:.3f}" for p in ("id", "ood", "combined")))
    print(f"best baseline (private combined): {best}")

    print("\nevolve submissions vs best baseline, private half (diff ± paired SE):")
    first_win = None
    for s in subs:
        folder = result.workspace / "ideas" / s.data["candidate"]
        cmp = paired_private(DEFAULT_TESTBED, read_predictions(folder / "predictions.jsonl"), base_preds[best],
                             settings)
        c = cmp["combined"]
        win = c.diff >= 2 * c.paired_se
        if win and first_win is None:
            first_win = s.elapsed_s / 60
        mark = " <- selected" if s.submission_id == selected else ""
        print(f"  {s.elapsed_s / 60:5.1f} min {s.data['candidate']}: PGR {c.pgr_a:.3f} vs {c.pgr_b:.3f}, "
              f"diff {c.diff:+.3f}±{c.paired_se:.3f} (id {cmp['id'].diff:+.3f}±{cmp['id'].paired_se:.3f}, "
              f"ood {cmp['ood'].diff:+.3f}±{cmp['ood'].paired_se:.3f}){mark}")
    if selected:
        sid = next(s for s in subs if s.submission_id == selected)
        mine = read_predictions(result.workspace / "ideas" / sid.data["candidate"] / "predictions.jsonl")
        best_weak = max(WEAK_LABEL_BASELINES, key=lambda n: vs_vanilla[n]["combined"].pgr_a)
        for name in dict.fromkeys((best, best_weak)):
            cmp = paired_private(DEFAULT_TESTBED, mine, base_preds[name], settings)
            print(f"\nselected submission vs {name}: " + ", ".join(
                f"{p} {cmp[p].pgr_a:.3f} vs {cmp[p].pgr_b:.3f} (diff {cmp[p].diff:+.3f}±{cmp[p].paired_se:.3f}, "
                f"z {cmp[p].z:.1f})" for p in ("id", "ood", "combined")))
    print("first submission >= 2 paired SE above the best baseline: "
          + (f"{first_win:.1f} min" if first_win is not None else "none"))


if __name__ == "__main__":
    main()
