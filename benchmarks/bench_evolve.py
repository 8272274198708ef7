"""One ``evolve`` worker against live services for N minutes on a testbed (default: the default one): does it
beat the best shipped baseline on the **private** half by at least 2 paired SE, how soon, and what share of the
headroom up to the sealed reference method (stored by ``aar baselines --reference``) does its pick recover?

Needs an AAR_HOME with the testbed prepared and its baselines stored (``aar testbed prepare``,
``aar baselines --reference``: every baseline method's predictions and the reference's). Starts the eval server
and hub on loopback, runs the worker in bwrap, then scores (trusted side, the eval server's own code) every
submission on the never-published private half: each candidate's recipe re-run in this process on a
fresh-id view of the private items, against the stored baselines with the paired SE of the difference.
The selected submission is the one finalize picks (best true public score), as for a real team, and it
is also replayed the way finalize does (its idea folder in a sandbox without network).

    .venv/bin/python benchmarks/bench_evolve.py --home .aar --minutes 20 [--testbed wordsense-room]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("AAR_QUIET", "1")
WEAK_LABEL_BASELINES = ("vanilla", "vanilla_soft", "confident", "logconf")  # trained on the weak labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".aar"))
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--testbed", default=None, help="a prepared testbed (default: the default testbed)")
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--sandbox", default="bwrap")
    args = parser.parse_args()
    os.environ["AAR_HOME"] = str(args.home.resolve())
    from aar.agents.base import Budget, read_trajectory
    from aar.agents.evolve import EvolveConfig
    from aar.agents.worker import WorkerConfig, run_worker
    from aar.analysis.rerun import idea_code
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
    from aar.labels.replay import build_view, replay_finalists
    from aar.servicekit import serve_in_thread
    from aar.w2s.recipes import Recipe, run_recipe
    from aar.w2s.testbeds import DEFAULT_TESTBED
    from aar.w2s.testbeds.base import TEST_SPLITS
    from aar.w2s.workbench import Workbench

    settings = get_settings()
    testbed = args.testbed or DEFAULT_TESTBED
    team = f"bench-{int(time.time())}"
    token = TokenStore(make_engine(settings.sqlite_url("auth"))).create("evolve-1", team)
    start = time.monotonic()
    with serve_in_thread(eval_app(settings)) as eval_url, \
            serve_in_thread(hub_app(settings, HubConfig(eval_url=eval_url))) as hub_url:
        config = WorkerConfig(team=team, worker="evolve-1", testbed=testbed, sandbox=args.sandbox,
                              hub_url=hub_url, eval_url=eval_url,
                              budget=Budget(wall_s=args.minutes * 60, submissions=60),
                              evolve=EvolveConfig(children=args.children))
        result = run_worker(config, token, settings)
    minutes = (time.monotonic() - start) / 60
    report = finalize(settings, team)
    selected = report.team_best[0].submission_id if report.team_best else None
    subs = [s for s in read_trajectory(result.trajectory) if s.type == "submission"]
    print(f"evolve: {len(subs)} submissions in {minutes:.1f} min; finalize selected {selected}")

    tl = load_labels(testbed, settings)
    if not tl.method_correct:
        raise SystemExit("the stored baselines hold no method predictions: run `aar baselines` again")
    print("\nshipped baselines, private half (PGR):")
    for name, correct in sorted(tl.method_correct.items()):
        print(f"  {name:13s} " + "  ".join(
            f"{p} {pgr_of(tl, correct, p):.3f}" for p in ("id", "ood", "combined")))

    home = Path(tempfile.mkdtemp(prefix="bench-view-"))
    view = build_view(testbed, {i for i in tl.ids if i not in set(tl.submit_ids)}, settings, home)
    wb = Workbench(view.name, view.settings)

    def probs_of(candidate: str) -> np.ndarray:
        """The candidate's recipe re-run on the private view: NaN on the public items."""
        recipe = Recipe.model_validate_json((result.workspace / "ideas" / candidate / "recipe.json").read_text())
        test, _ = run_recipe(wb, recipe)
        preds = {view.original[i]: float(p) for s in TEST_SPLITS for i, p in zip(wb.ids(s), test[s], strict=True)}
        return np.array([preds.get(i, np.nan) for i in tl.ids])

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
        probs = probs_of(chosen.data["candidate"])  # one re-run of its recipe
        versus = {among: compare_with_best_baseline(tl, probs, among=among) for among in (None, WEAK_LABEL_BASELINES)}
        for among, c in versus.items():
            assert c is not None
            print(f"\nselected submission vs {c.baseline}"
                  f"{' (best weak-label baseline)' if among else ' (best baseline)'}: {line(c)}")
        c = versus[None]
        if c is None or c.headroom_share is None or c.headroom_se is None:
            print("share of the headroom: no sealed reference stored (run `aar baselines --reference`)")
        else:
            shares = ", ".join(f"{p} " + ("n/a (no headroom)" if v is None else f"{v:.2f} ± {e:.2f}")
                               for p in ("id", "ood", "combined")
                               for v, e in [(getattr(c.headroom_share, p), getattr(c.headroom_se, p))])
            print(f"selected submission's share of the headroom ({c.baseline} -> sealed reference), "
                  f"private half: {shares}")
    if tl.reference_correct is not None:
        print("sealed reference, private half (PGR): " + "  ".join(
            f"{p} {pgr_of(tl, tl.reference_correct, p):.3f}" for p in ("id", "ood", "combined")))
    print("first submission >= 2 paired SE above the best baseline: "
          + (f"{first_win:.1f} min" if first_win is not None else "none"))
    shutil.rmtree(home, ignore_errors=True)
    # the services are gone (a lone worker has no team state to fetch its snapshot with): replay the selected
    # idea from its recipe, which is what its snapshot's run.py re-runs
    recipe = None if chosen is None else json.loads(
        (result.workspace / "ideas" / chosen.data["candidate"] / "recipe.json").read_text())
    final = replay_finalists(settings, report, lambda snap: idea_code(settings, team, None, recipe),
                             sandbox=args.sandbox)
    for e in final.team_best:
        r = e.replay
        print("finalize replay of the selected idea: " + (
            f"private PGR {e.private.pgr.combined:.3f}" if e.private and e.private.pgr.combined is not None
            else f"not reproducible: {r.reason if r else '?'}"))


def pgr_of(tl, correct: np.ndarray, part: str) -> float:  # type: ignore[no-untyped-def]
    idx = tl.part("private", part)
    ref = tl.refs[("private", part)]
    return float((correct[idx].mean() - ref.weak) / (ref.ceiling - ref.weak))


if __name__ == "__main__":
    main()
