"""Progress and cost from hand-built trajectories: AAR-hours over runs, released PGR points with their SE and
running bests, private scores after finalize, and dollars that are unknown (never $0) for an unpriced model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aar.agents.base import Step
from aar.analysis.progress import (
    aar_hours_at,
    active_hours,
    active_spans,
    cost_of,
    final_report,
    released_se,
    team_progress,
    worker_bests,
)
from aar.evalserver.models import BaselineComparison, FinalEntry, FinalReport, PartValues, Scores

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def step(type: str, minutes: float, **kw: Any) -> Step:
    fields = {k: kw.pop(k) for k in ("tokens", "cost_usd", "submission_id") if k in kw}
    return Step(type=type, t=T0 + timedelta(minutes=minutes), session=1, elapsed_s=0.0, data=kw,  # type: ignore[arg-type]
                **fields)


def sub(minutes: float, sid: str, pgr: float | None) -> Step:
    return step("submission", minutes, submission_id=sid, released_pgr={"id": pgr, "ood": pgr, "combined": pgr})


def team() -> dict[str, list[Step]]:
    """w1 runs 0-60 min, crashes, runs again 90-120; w2 runs 30-90 (an llm worker, priced)."""
    w1 = [step("run_start", 0, kind="evolve"), sub(20, "a1", 0.10), sub(50, "a2", 0.30), step("run_end", 60),
          step("run_start", 90), sub(100, "a3", None), sub(110, "a4", 0.20), step("run_end", 120)]
    w2 = [step("run_start", 30, model="claude-sonnet-4-5"), step("message", 40, tokens=1000, cost_usd=0.5),
          sub(70, "b1", 0.25), sub(80, "b2", 0.40), step("run_end", 90)]
    return {"w1": w1, "w2": w2}


def test_aar_hours_sum_every_workers_runs_up_to_the_moment() -> None:
    steps = team()
    spans = {w: active_spans(s) for w, s in steps.items()}
    assert [(a - T0, b - T0) for a, b in spans["w1"]] == [(timedelta(0), timedelta(minutes=60)),
                                                          (timedelta(minutes=90), timedelta(minutes=120))]
    assert active_hours(spans["w1"]) == pytest.approx(1.5)
    assert aar_hours_at(spans, T0 + timedelta(minutes=60)) == pytest.approx(1.0 + 0.5)
    assert aar_hours_at(spans, T0 + timedelta(minutes=100)) == pytest.approx(1.0 + 10 / 60 + 1.0)


def test_points_carry_released_pgr_its_se_and_running_bests() -> None:
    se = {"a1": 0.05, "a2": 0.04, "a4": 0.06, "b1": 0.03, "b2": 0.02}
    p = team_progress(team(), se)
    assert [x.submission_id for x in p.points] == ["a1", "a2", "b1", "b2", "a3", "a4"]
    assert p.aar_hours == pytest.approx(2.5) and p.t0 == T0
    a3 = p.points[4]
    assert a3.pgr is None and a3.pgr_se is None and (a3.best, a3.best_se, a3.best_submission) == (0.30, 0.04, "a2")
    assert [x.best for x in p.team_best] == [0.10, 0.30, 0.30, 0.40, 0.40, 0.40]
    last = p.team_best[-1]
    assert (last.best_worker, last.best_submission, last.best_se) == ("w2", "b2", 0.02)
    assert p.team_best[3].aar_hours == pytest.approx(1.0 + 50 / 60)  # b2 at 80 min: w1 60 min, w2 50 min
    bests = worker_bests(p)
    assert (bests["w1"].best, bests["w2"].best, bests["w2"].best_se) == (0.30, 0.40, 0.02)
    assert team_progress(team()).points[0].pgr_se is None  # no SE known: None, not 0


def test_cost_is_unknown_not_zero_for_an_unpriced_model() -> None:
    steps = team()
    costs = {c.worker: c for c in team_progress(steps).costs}
    assert (costs["w1"].tokens, costs["w1"].dollars, costs["w1"].dollars_text()) == (0, 0.0, "$0.00")  # evolve
    assert costs["w2"].dollars == 0.5 and costs["w2"].dollars_per_aar_hour == pytest.approx(0.5)
    steps["w3"] = [step("run_start", 0, model="local-llama"), step("message", 30, tokens=5000, cost_usd=0.0),
                   step("message", 45, tokens=70, cost_usd=0.0, model="other-model"), step("run_end", 60)]
    p = team_progress(steps)
    w3 = next(c for c in p.costs if c.worker == "w3")
    assert w3.dollars is None and w3.dollars_text() == "unknown" and w3.dollars_per_aar_hour is None
    assert (w3.unpriced_tokens, w3.unpriced_models) == (5070, ["local-llama", "other-model"])
    assert p.team_cost.dollars is None and p.team_cost.priced_dollars == 0.5 and p.team_cost.tokens == 6070
    assert cost_of("w2", steps["w2"]).unpriced_tokens == 0


def scores(pgr: float, se: float) -> Scores:
    return Scores(acc=PartValues(combined=0.8), pgr=PartValues(combined=pgr), pgr_se=PartValues(combined=se))


def final() -> FinalReport:
    entry = FinalEntry(worker_id="w2", testbed="tiny", submission_id="b2", submissions=2, public=scores(0.41, 0.03),
                       private=scores(0.35, 0.05), gap=PartValues(combined=0.01),
                       vs_best_baseline=BaselineComparison(baseline="vanilla", baseline_pgr=PartValues(combined=0.2),
                                                           diff=PartValues(combined=0.15),
                                                           paired_se=PartValues(combined=0.04)))
    other = entry.model_copy(update={"worker_id": "w1", "submission_id": "a2", "vs_best_baseline": None})
    return FinalReport(team="t", created_at=T0, last_seq=6, workers=[other, entry], team_best=[entry])


def test_private_scores_after_finalize_sit_at_their_submissions_hours() -> None:
    p = team_progress(team(), final=final())
    w1, w2, best = p.private
    assert (w2.pgr, w2.pgr_se, w2.public_pgr, w2.diff, w2.diff_se) == (0.35, 0.05, 0.41, 0.15, 0.04)
    assert w2.aar_hours == pytest.approx(1.0 + 50 / 60) and w1.aar_hours == pytest.approx(50 / 60 + 20 / 60)
    assert best.team_best and not w2.team_best and w1.baseline is None


def test_private_report_is_read_from_the_eval_store(tmp_path: Path) -> None:
    from aar.config import Settings
    from aar.db import make_engine
    from aar.evalserver.store import Store

    settings = Settings(home=tmp_path)
    assert final_report(settings, "t") is None  # no store: never finalized (and no file is made)
    assert not (tmp_path / "evalserver.db").exists()
    store = Store(make_engine(settings.sqlite_url("evalserver")))
    store.append_finalization("t", final().model_dump(mode="json"), "cli", 1.0)
    later = final().model_copy(update={"last_seq": 9})
    store.append_finalization("t", later.model_dump(mode="json"), "cli", 2.0)
    got = final_report(settings, "t")
    assert got is not None and got.last_seq == 9 and final_report(settings, "other") is None


def test_released_se_pages_through_the_admin_audit_log() -> None:
    def record(seq: int) -> dict[str, Any]:
        return {"seq": seq, "id": f"s{seq}", "created_at": T0.isoformat(), "team": "t", "worker_id": "w1",
                "testbed": "tiny", "mechanism": "ladder", "pred_hash": "h", "n_items": 10,
                "released": {"mechanism": "ladder", "acc": {}, "pgr": {}, "improved": True},
                "team_released": {"mechanism": "ladder", "acc": {}, "pgr": {}, "improved": True},
                "true_public": scores(0.3, seq / 1000).model_dump(), "flags": [], "detect": {}, "state": {},
                "prev_hash": "", "row_hash": ""}

    asked: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer admin"
        params = dict(request.url.params)
        asked.append(params)
        start = int(params["after"])
        return httpx.Response(200, json=[record(k) for k in range(start + 1, min(start + 5000, 5001) + 1)])

    se = released_se("http://eval", "admin", "t", transport=httpx.MockTransport(handler))
    assert len(se) == 5001 and se["s7"] == 0.007 and [a["after"] for a in asked] == ["0", "5000"]
    assert json.loads(json.dumps(se))  # plain JSON
