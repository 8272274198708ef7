"""Idea complexity: recipe genes and text keywords as components, lines an idea folder adds to the library
(links not followed, caps), and the judge model's score and pseudocode lines through a scripted provider."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import aar.w2s
from aar.agents.providers.scripted import ScriptedProvider
from aar.analysis import complexity as cx
from aar.analysis.complexity import ComplexityJudge, measure, measure_ideas, python_lines, text_components


def test_recipe_components_are_its_non_default_genes_and_its_lines_the_json() -> None:
    c = measure("w1:g1-c0", 'recipe {"ensemble": 3, "loss": "logconf", "seed": 7}')
    assert (c.components, c.component_names, c.components_source) == (2, ["ensemble", "loss"], "recipe")
    assert (c.python_lines, c.python_lines_source) == (5, "recipe_json")  # {, 3 genes, }
    vanilla = measure("w1:g1-c1", "recipe {}")
    assert (vanilla.components, vanilla.python_lines) == (0, 1)


def test_text_components_are_distinct_method_keywords() -> None:
    names = text_components("Bagging five heads; pseudo-label the rest and filter the low-confidence items")
    assert names == ["self_training:pseudo-label", "ensemble:bagging", "data_filtering:filter"]
    assert measure("x", "Tune nothing at all").components == 0
    assert measure("x", "not a recipe {").components_source == "keywords"


def test_folder_lines_count_only_what_the_idea_adds_to_the_library(tmp_path: Path) -> None:
    lib = Path(aar.w2s.__file__).parent
    idea = tmp_path / "idea"
    (idea / "pkg").mkdir(parents=True)
    (idea / "recipes.py").write_text((lib / "recipes.py").read_text())  # a verbatim copy counts 0
    (idea / "run.py").write_text("# a comment\n\nimport sys\nx = 1\n\n    y = 2  # trailing\n")
    (idea / "pkg" / "more.py").write_text("def f():\n    return 42\n")
    (idea / "notes.txt").write_text("not python\n" * 50)
    (idea / ".venv").mkdir()
    (idea / ".venv" / "big.py").write_text("z = 0\n" * 50)  # hidden folders are skipped
    assert python_lines(idea) == 5  # import sys, x = 1, y = 2 ..., def f():, return 42


def test_folder_walk_follows_no_link_and_skips_huge_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("".join(f"s{k} = {k}\n" for k in range(100)))
    idea = tmp_path / "idea"
    idea.mkdir()
    (idea / "run.py").write_text("a = 1\n")
    os.symlink(outside / "secret.py", idea / "linked.py")
    os.symlink(outside, idea / "linked_dir")
    assert python_lines(idea) == 1
    control = tmp_path / "control"  # the same files as real ones are counted
    control.mkdir()
    (control / "secret.py").write_text((outside / "secret.py").read_text())
    assert python_lines(control) == 100
    monkeypatch.setattr(cx, "MAX_FILE_BYTES", 100)
    assert python_lines(control) == 0
    with pytest.raises(OSError):  # the folder itself must not be a link either
        python_lines(idea / "linked_dir")


def test_judge_scores_and_counts_pseudocode_lines_with_model_and_prompt_recorded() -> None:
    answer = json.dumps({"complexity": 4, "pseudocode": "fit weak\nfilter confident\n\nfit strong"})
    provider = ScriptedProvider("judge-model", [{"text": f"Here: {answer}"}, {"text": "I cannot say"}])
    judge = ComplexityJudge(provider)
    good = measure("a", "Filter then train", judge=judge)
    assert (good.judged, good.pseudocode_lines) == (4, 3)
    assert good.judge["model"] == "judge-model" and good.judge["prompt_sha256"] == judge.prompt_sha256
    assert "error" not in good.judge and judge.info()["prompt"] == provider.seen[0]["system"]
    bad = measure("b", "Something", judge=judge)
    assert bad.judged is None and bad.pseudocode_lines is None and "no JSON" in bad.judge["error"]


def test_measure_ideas_keeps_order_and_uses_each_ideas_folder(tmp_path: Path) -> None:
    from types import SimpleNamespace

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.py").write_text("print('new')\n")
    ideas = [SimpleNamespace(id="a", description='recipe {"agree_only": true}'),
             SimpleNamespace(id="b", description="Ensemble of probes on hidden layers")]
    out = measure_ideas(ideas, folder_of=lambda i: tmp_path / i.id if i.id == "b" else None)
    assert [c.idea_id for c in out] == ["a", "b"]
    assert (out[0].components, out[1].python_lines, out[1].python_lines_source) == (1, 1, "folder")
    assert out[1].component_names == ["ensemble:ensembl", "model_internal:layer", "model_internal:probe",
                                      "model_internal:hidden"]
