"""One ``evolve`` worker against live services for N minutes on the default testbed: does it beat the best
shipped baseline on the **private** half by at least 2 paired SE, and how soon?

Needs an AAR_HOME with the default testbed prepared and its baselines stored (``aar testbed prepare``,
``aar baselines``: it stores every baseline method's predictions). Starts the eval server and hub on
loopback, runs the worker in bwrap, then scores (trusted side, the eval server's own code) every
submission against the stored baselines on the private half, with the paired SE of the difference.
The selected submission is the one the eval server's finalize picks (best true public score), as
for a real team.

    .venv/bin/python benchmarks/bench_evolve.py --home .aar --minutes 20
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("AAR_QUIET", "1")
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
    from aar.evalserver.labels import load_labels
    from aar.evalserver.models import BaselineComparison
    from aar.evalserver.scoring import compare_with_best_baseline
    from aar.hub.app import HubConfig
    from aar.hub.app import create_app as hub_app
    from aar.servicekit import serve_in_thread
    from aar.w2s.testbeds import DEFAULT_TESTBED

    settings = get_settings()
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

    tl = load_labels(DEFAULT_TESTBED, settings)
    if not tl.method_correct:
        raise SystemExit("the stored baselines hold no method predictions: run `aar baselines` again")
    print("\nshipped baselines, private half (PGR):")
    for name, correct in sorted(tl.method_correct.items()):
        print(f"  {name:13s} " + "  ".join(
            f"{p} {pgr_of(tl, correct, p):.3f}" for p in ("id", "ood", "combined")))

    def probs_of(candidate: str) -> np.ndarray:
        preds = read_predictions(result.workspace / "ideas" / candidate / "predictions.jsonl")
        return np.array([preds[i] for i in tl.ids])

    def line(c: BaselineComparison) -> str:
        return ", ".join(f"{p} {getattr(c.baseline_pgr, p) + getattr(c.diff, p):.3f} vs "
                         f"{getattr(c.baseline_pgr, p):.3f} ({getattr(c.diff, p):+.3f}±{getattr(c.paired_se, p):.3f})"
                         for p in ("id", "ood", "combined"))

    print("\nevolve submissions vs the best baseline, private half: PGR mine vs theirs (diff ± paired SE)")
    first_win = None
    for s in subs:
        c = compare_with_best_baseline(tl, probs_of(s.data["candidate"]))
        assert c is not None and c.diff.combined is not None and c.paired_se.combined is not None
        if c.diff.combined >= 2 * c.paired_se.combined and first_win is None:
            first_win = s.elapsed_s / 60
        mark = " <- selected" if s.submission_id == selected else ""
        print(f"  {s.elapsed_s / 60:5.1f} min {s.data['candidate']} vs {c.baseline}: {line(c)}{mark}")
    chosen = next((s for s in subs if s.submission_id == selected), None)
    if chosen is not None:
        for among in (None, WEAK_LABEL_BASELINES):
            c = compare_with_best_baseline(tl, probs_of(chosen.data["candidate"]), among=among)
            assert c is not None
            print(f"\nselected submission vs {c.baseline}"
                  f"{' (best weak-label baseline)' if among else ' (best baseline)'}: {line(c)}")
    print("first submission >= 2 paired SE above the best baseline: "
          + (f"{first_win:.1f} min" if first_win is not None else "none"))


def pgr_of(tl, correct: np.ndarray, part: str) -> float:  # type: ignore[no-untyped-def]
    idx = tl.part("private", part)
    ref = tl.refs[("private", part)]
    return float((correct[idx].mean() - ref.weak) / (ref.ceiling - ref.weak))


if __name__ == "__main__":
    main()
