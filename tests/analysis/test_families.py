"""Idea families: the shipped labelled set, the offline classifier's accuracy on it, the LLM classifier
(scripted provider offline; a real one with -m api), and `aar ideas classify`."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from typer.testing import CliRunner

from aar.agents.providers.scripted import ScriptedProvider
from aar.analysis.families import (
    LlmClassifier,
    OfflineClassifier,
    evaluate,
    llm_prompt,
    load_labelled,
    parse_family,
)
from aar.hub.models import METHOD_FAMILIES


def test_the_labelled_set_covers_every_family_with_hard_cases() -> None:
    items = load_labelled()
    counts = Counter(it["family"] for it in items)
    assert len(items) >= 80 and set(counts) == set(METHOD_FAMILIES) and min(counts.values()) >= 5
    assert sum(bool(it["hard"]) for it in items) >= 11
    assert len({it["text"] for it in items}) == len(items)


def test_offline_classifier_reaches_its_accuracy_bar() -> None:
    """Measured 0.84 (0.65 on the hard cases); the centroids alone, without keywords, 0.74."""
    result = evaluate(OfflineClassifier(), load_labelled())
    assert result.accuracy >= 0.6, result
    assert sum(sum(row.values()) for row in result.confusion.values()) == result.n
    assert result.accuracy == pytest.approx(
        sum(result.confusion[f].get(f, 0) for f in METHOD_FAMILIES) / result.n)


def test_llm_classifier_records_model_and_prompt_and_survives_bad_answers() -> None:
    provider = ScriptedProvider("judge-model", [{"text": '{"family": "ensemble"}'}, {"text": "It is curriculum."},
                                                {"text": "no idea"}])
    labels = LlmClassifier(provider).classify(["average seeds", "easy first", "???"])
    assert [lab.family for lab in labels] == ["ensemble", "curriculum", "other"]
    assert labels[0].detail["model"] == "judge-model" and len(labels[0].detail["prompt_sha256"]) == 64
    assert "error" in labels[2].detail and "error" not in labels[0].detail
    assert provider.seen[0]["system"] == llm_prompt() and "Idea: average seeds" in str(provider.seen[0]["messages"])
    assert all(f in llm_prompt() for f in METHOD_FAMILIES)


def test_parse_family() -> None:
    assert parse_family('Sure: {"family": "loss_function"}') == ("loss_function", None)
    assert parse_family('{"family": "made_up"} maybe ensemble')[0] == "ensemble"
    assert parse_family("ensemble or distillation")[0] == "other"


def test_cli_classifies_arguments_and_stdin() -> None:
    from aar.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["ideas", "classify", "--json", "-"],
                        input="bagging ten heads and voting\nkeep only items where weak and zero-shot agree\n")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout[res.stdout.index("["):])
    assert [g["family"] for g in got] == ["ensemble", "data_filtering"]
    bad = runner.invoke(app, ["ideas", "classify", "--classifier", "nope", "x"])
    assert bad.exit_code != 0


@pytest.mark.api
def test_llm_classifier_accuracy_with_a_real_model() -> None:
    """Opt-in (-m api, ANTHROPIC_API_KEY): the LLM classifier on the labelled set; prints its accuracy."""
    from aar.agents.llm import LlmConfig, make_provider

    if not os.environ.get("ANTHROPIC_API_KEY"):
        pytest.skip("ANTHROPIC_API_KEY is not set")
    result = evaluate(LlmClassifier(make_provider(LlmConfig(provider="anthropic"), dict(os.environ))), load_labelled())
    print(result.model_dump_json())
    assert result.accuracy >= 0.6
