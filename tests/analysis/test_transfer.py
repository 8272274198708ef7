"""Ideas re-run unchanged in a fresh sandbox (no hub, no model API, no network): a recipe reproduces its
in-process predictions, transfers to a ``jsonl:`` testbed built here (tuned on label-free checks only) and is
scored on all test items beside the target's best baseline; code that reaches for labels, the network or
files outside its output, or writes the wrong items, is reported with the reason, never scored."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aar.analysis.rerun import IdeaRunError, folder_tarball, recipe_tarball, rerun_idea
from aar.analysis.transfer import score_all_items, transfer_idea, tuning_variants
from aar.config import Settings
from aar.labels.replay import build_view, each_world
from aar.sandbox.bwrap import bwrap_problem
from aar.w2s.recipes import Recipe, run_recipe
from aar.w2s.testbeds.base import TEST_SPLITS
from aar.w2s.workbench import Workbench

TARGET = "xfer"


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    import os

    problem = bwrap_problem(os.geteuid() == 0)
    if problem:
        pytest.skip(f"bwrap unavailable: {problem}")


@pytest.fixture(scope="module")
def home(small_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The small wordsense home (vanilla baselines) plus a binary ``jsonl:`` testbed with baselines."""
    from aar.labels.baselines import run_baselines
    from aar.labels.prepare import prepare_testbed
    from aar.labels.references import load_baselines
    from aar.w2s.testbeds.base import TestbedError

    for name in ("wordsense",):
        try:
            load_baselines(name, small_home)
        except TestbedError:
            run_baselines(name, methods=["vanilla"], seeds=1, progress=False, settings=small_home)
    rng = np.random.default_rng(0)
    animals = ("cat dog horse sparrow salmon eagle tiger lion wolf fox bear deer rabbit mouse owl shark whale frog "
               "snake lizard crow duck goose goat sheep cow pig camel zebra giraffe monkey otter seal bat moth bee "
               "ant spider crab").split()
    tools = ("hammer saw drill wrench chisel pliers screwdriver axe shovel rake hoe trowel file clamp vise level "
             "ruler tape chainsaw sander grinder lathe router plane awl crowbar mallet sledge scraper trowel pick "
             "spade ladder stapler welder torch").split()
    rows = []
    for k in range(400):
        is_animal = bool(k % 2)
        pool = animals if is_animal else tools
        word = pool[(k // 2) % len(pool)]
        claim = "an animal" if rng.random() < 0.5 else "a tool"
        rows.append({"question": f"Item {k}: is a {word} {claim}?", "candidate": f"yes, a {word} is {claim}",
                     "label": (claim == "an animal") == is_animal,
                     "group": "ood" if (k // 2) % len(pool) >= 28 else "id", "difficulty": "easy"})
    path = tmp_path_factory.mktemp("xfer") / f"{TARGET}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepare_testbed(f"jsonl:{path}", settings=small_home)
    run_baselines(TARGET, methods=["vanilla", "zeroshot"], seeds=1, progress=False, settings=small_home)
    return small_home


def test_a_recipe_reruns_unchanged_and_transfers(home: Settings, tmp_path: Path) -> None:
    recipe = Recipe(labels="soft", test_zeroshot_mix=0.3)
    in_process: dict[str, float] = {}  # in-process, in each world, for comparison with the sandboxed re-runs
    for k, (_, ids, world) in enumerate(each_world("wordsense", home)):
        view = build_view("wordsense", ids, home, tmp_path / str(k), world=world)
        wb = Workbench(view.name, view.settings)
        tests, _ = run_recipe(wb, recipe)
        in_process |= {view.original[i]: float(p) for s in TEST_SPLITS
                       for i, p in zip(wb.ids(s), tests[s], strict=True)}
    result = transfer_idea("t", "w1:c1", recipe_tarball(recipe), recipe, "wordsense", TARGET, home, tune=3)
    assert result.source.ok and result.target.ok, (result.source.reason, result.target.reason)
    expected = score_all_items("wordsense", in_process, home)
    for got, want in ((result.source.pgr, expected.pgr), (result.source.acc, expected.acc)):
        assert got is not None and want is not None  # the same method (each private world turned its own way)
        assert got.combined == pytest.approx(want.combined, abs=0.005)
    assert result.source.pgr_se is not None and result.source.pgr_se.combined is not None
    tgt = result.target
    assert tgt.pgr is not None and tgt.pgr.combined is not None and tgt.pgr_se and tgt.pgr_se.combined
    assert tgt.vs_best_baseline is not None and tgt.vs_best_baseline.baseline in ("vanilla", "zeroshot")
    assert tgt.vs_best_baseline.paired_se.combined is not None
    assert len(result.tuning) == 3 and all(t.ok and t.proxy is not None for t in result.tuning)
    best = max(t.proxy or 0 for t in result.tuning)
    assert tgt.proxy == best  # chosen by the label-free proxy: the scored variant is a best one
    assert result.chosen in [t.params for t in result.tuning if t.proxy == best]
    assert set(result.chosen) == {"C", "test_zeroshot_mix"}  # only what the recipe uses was tuned
    row = result.row()
    assert row["target_testbed"] == TARGET and row["diff_se"] == tgt.vs_best_baseline.paired_se.combined


def test_tuning_never_switches_an_idea_on() -> None:
    base = Recipe(zeroshot_mix=0.4, ensemble=3)
    for v in tuning_variants(base, 8, seed=1)[1:]:
        assert v.ensemble == 3 and v.labels == base.labels and v.self_train_rounds == 0
        assert v.test_zeroshot_mix == 0 and v.filter_keep == 1.0  # unused genes stay off
        assert 0 < v.zeroshot_mix <= 1 and v.C is not None


def _folder(files: dict[str, str]) -> bytes:
    return folder_tarball({name: text.encode() for name, text in files.items()})


HEAD = """import argparse, json, os, sys
from pathlib import Path
ap = argparse.ArgumentParser(); ap.add_argument("--testbed"); ap.add_argument("--out", type=Path)
args = ap.parse_args(); args.out.mkdir(parents=True, exist_ok=True)
from aar.w2s.workbench import Workbench
wb = Workbench(args.testbed)
ids = [i for s in ("test_id", "test_ood") for i in wb.ids(s)]
"""


@pytest.mark.parametrize(("body", "reason"), [
    ("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:8711/', timeout=5)\n", "exit 1"),
    ("import anthropic\nanthropic.Anthropic(api_key='x', max_retries=0).models.list()\n", "exit 1"),
    ("print(open(os.environ['AAR_HOME'] + '/labels/wordsense/test_id.jsonl').read()[:10])\n", "exit 1"),
    ("(args.out / 'predictions.jsonl').write_text(''.join(json.dumps({'id': i, 'prob': 0.5}) + '\\n' "
     "for i in ids[:-3]))\n", "3 test items missing"),
    ("(args.out / 'predictions.jsonl').write_text(json.dumps({'id': ids[0], 'prob': 'nan'}))\n", "line 1"),
    ("os.symlink('/etc/passwd', args.out / 'predictions.jsonl')\n", "predictions:"),
    ("import time\ntime.sleep(60)\n", "wall limit"),
])
def test_a_rerun_reports_why_it_failed(home: Settings, body: str, reason: str) -> None:
    run = rerun_idea(_folder({"run.py": HEAD + body}), "wordsense", home, timeout_s=20)
    assert not run.ok and reason in (run.reason or ""), run.reason
    assert run.predictions == {}


def test_an_idea_needs_its_entry_point_and_a_safe_archive(home: Settings) -> None:
    with pytest.raises(IdeaRunError, match="no run.py"):
        rerun_idea(_folder({"main.py": "print(1)\n"}), "wordsense", home)
    with pytest.raises(IdeaRunError, match="cannot be restored"):
        rerun_idea(_folder({"../escape.py": "print(1)\n", "run.py": "print(1)\n"}), "wordsense", home)
    leftovers = list((home.runs_dir / "reruns").iterdir())
    assert leftovers == []  # every re-run's workspace is removed


def test_a_correct_folder_idea_runs(home: Settings) -> None:
    body = ("h = wb.fit((wb.weak('strong_train') > 0.5).astype(float))\n"
            "wb.save_predictions(wb.predict_tests(h), args.out / 'predictions.jsonl')\n")
    run = rerun_idea(_folder({"run.py": HEAD + body}), "wordsense", home)
    assert run.ok and len(run.predictions) == sum(len(Workbench("wordsense", home).ids(s)) for s in TEST_SPLITS)
    assert all(0 <= p <= 1 for p in run.predictions.values())


def test_scores_on_all_items_cover_both_halves(home: Settings) -> None:
    from aar.evalserver.labels import load_labels

    tl = load_labels("wordsense", home)
    assert len(tl.part("all", "combined")) == tl.n == tl.n_public + len(tl.part("private", "combined"))
    every, public, private = (tl.refs[(v, "combined")] for v in ("all", "public", "private"))
    assert every.weak == public.weak  # the weak model is the same in every world
    assert tl.ceiling_correct is not None  # S: each item from its own world, as an idea is re-run
    assert every.ceiling == pytest.approx(tl.ceiling_correct.mean())
    assert private.ceiling == pytest.approx(tl.ceiling_correct[tl.part("private", "combined")].mean())



def test_an_agent_idea_folder_is_restored_for_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from aar.analysis import rerun
    from aar.analysis.complexity import python_lines
    from aar.analysis.ideas import Idea

    code = _folder({"run.py": HEAD + "x = 1\ny = 2\n", "util/helpers.py": "def f():\n    return 3\n"})
    monkeypatch.setattr(rerun, "idea_code", lambda settings, team, snap, recipe: code if snap == "a" * 64 else
                        (_ for _ in ()).throw(IdeaRunError("gone")))
    now = datetime.now(UTC)
    ideas = [Idea(id="w1:snapshot-aaaa", worker="w1", started_at=now, hours=0.0, description="d", family="other",
                  family_source="classifier", snapshot_id="a" * 64),
             Idea(id="w2:snapshot-bbbb", worker="w2", started_at=now, hours=0.0, description="d", family="other",
                  family_source="classifier", snapshot_id="b" * 64),
             Idea(id="w3:c1", worker="w3", started_at=now, hours=0.0, description="recipe {}", family="other",
                  family_source="recipe", snapshot_id="c" * 64, recipe={})]  # recipes are counted from JSON
    folders, notes = rerun.idea_folders(Settings(home=tmp_path / "home"), "t", ideas, tmp_path / "code")
    assert list(folders) == ["w1:snapshot-aaaa"] and (folders["w1:snapshot-aaaa"] / "util/helpers.py").is_file()
    assert len(notes) == 1 and "w2:snapshot-bbbb" in notes[0] and "gone" in notes[0]
    folder = folders["w1:snapshot-aaaa"]
    assert python_lines(folder, template=Counter()) == HEAD.count("\n") + 2 + 2  # every code line of the folder
    assert 0 < python_lines(folder) < HEAD.count("\n") + 4  # less what the shipped library already has
