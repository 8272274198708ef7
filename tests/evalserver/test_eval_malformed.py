"""Every kind of malformed submission gets a 4xx with a clear message, and nothing is stored or counted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from evalkit import LiveEval

JSON = {"Content-Type": "application/json"}


def body(live: LiveEval, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"testbed": live.testbed.name,
                            "predictions": dict.fromkeys(live.testbed.test_ids, 0.6)}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def raw_with_value(live: LiveEval, token: str) -> bytes:
    """A valid body whose first prediction's value is the raw JSON text ``token``."""
    ids = live.testbed.test_ids
    preds = ", ".join(f'"{i}": {token if k == 0 else "0.6"}' for k, i in enumerate(ids))
    return f'{{"testbed": "{live.testbed.name}", "predictions": {{{preds}}}}}'.encode()


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


Case = tuple[Callable[[LiveEval], bytes], dict[str, str], int, str]

CASES: dict[str, Case] = {
    "wrong_content_type": (lambda lv: dumps(body(lv)), {"Content-Type": "text/plain"}, 415, "content type"),
    "form_content_type": (lambda lv: b"testbed=tiny", {"Content-Type": "application/x-www-form-urlencoded"},
                          415, "content type"),
    "no_content_type": (lambda lv: dumps(body(lv)), {}, 415, "content type"),
    "empty_body": (lambda lv: b"", JSON, 400, "empty"),
    "bad_json": (lambda lv: b'{"testbed": "tiny", "predictions": {', JSON, 400, "not valid JSON"),
    "not_utf8": (lambda lv: b'{"testbed": "\xff\xfe"}', JSON, 400, "UTF-8"),
    "nested_too_deep": (lambda lv: b"[" * 50_000 + b"]" * 50_000, JSON, 400, "nested"),
    "body_is_list": (lambda lv: b"[0.5, 0.5]", JSON, 422, "JSON object"),
    "body_is_string": (lambda lv: b'"hello"', JSON, 422, "JSON object"),
    "missing_testbed": (lambda lv: dumps(body(lv, testbed=...)), JSON, 422, "testbed"),
    "unknown_testbed": (lambda lv: dumps(body(lv, testbed="nope")), JSON, 422, "unknown testbed"),
    "testbed_path_traversal": (lambda lv: dumps(body(lv, testbed="../labels")), JSON, 422, "testbed"),
    "testbed_not_string": (lambda lv: dumps(body(lv, testbed=5)), JSON, 422, "testbed"),
    "missing_predictions": (lambda lv: dumps(body(lv, predictions=...)), JSON, 422, "predictions"),
    "predictions_list": (lambda lv: dumps(body(lv, predictions=[0.5] * 200)), JSON, 422, "object"),
    "predictions_empty": (lambda lv: dumps(body(lv, predictions={})), JSON, 422, "empty"),
    "missing_ids": (lambda lv: dumps(body(lv, predictions=dict.fromkeys(lv.testbed.test_ids[3:], 0.6))),
                    JSON, 422, "3 missing"),
    "unknown_ids": (lambda lv: dumps(body(lv, predictions={**dict.fromkeys(lv.testbed.test_ids, 0.6),
                                                           "x1": 0.5, "x2": 0.5})), JSON, 422, "2 unknown"),
    "training_pool_ids": (lambda lv: dumps(body(lv, predictions=dict.fromkeys(lv.testbed.strong_train_ids,
                                                                               0.6))), JSON, 422, "unknown"),
    "duplicate_ids": (lambda lv: raw_with_value(lv, "0.5").replace(b"}}", b', "%s": 0.7}}'
                                                                  % lv.testbed.test_ids[0].encode()),
                      JSON, 422, "duplicate"),
    "nan": (lambda lv: raw_with_value(lv, "NaN"), JSON, 422, "NaN"),
    "infinity": (lambda lv: raw_with_value(lv, "Infinity"), JSON, 422, "Infinity"),
    "minus_infinity": (lambda lv: raw_with_value(lv, "-Infinity"), JSON, 422, "Infinity"),
    "huge_exponent": (lambda lv: raw_with_value(lv, "1e999"), JSON, 422, "outside [0, 1]"),
    "huge_integer": (lambda lv: raw_with_value(lv, "1" + "0" * 400), JSON, 422, "outside [0, 1]"),
    "integer_over_4300_digits": (lambda lv: raw_with_value(lv, "1" * 5000), JSON, 422, "number"),  # was 500
    "seed_over_4300_digits": (lambda lv: dumps(body(lv))[:-1] + b', "seed": ' + b"9" * 5000 + b"}", JSON, 422,
                              "number"),
    "above_one": (lambda lv: raw_with_value(lv, "1.5"), JSON, 422, "outside [0, 1]"),
    "below_zero": (lambda lv: raw_with_value(lv, "-0.1"), JSON, 422, "outside [0, 1]"),
    "string_value": (lambda lv: raw_with_value(lv, '"0.5"'), JSON, 422, "not numbers"),
    "bool_value": (lambda lv: raw_with_value(lv, "true"), JSON, 422, "not numbers"),
    "null_value": (lambda lv: raw_with_value(lv, "null"), JSON, 422, "not numbers"),
    "nested_junk": (lambda lv: raw_with_value(lv, '{"a": [1, {"b": null}]}'), JSON, 422, "not numbers"),
    "list_value": (lambda lv: raw_with_value(lv, "[0.5]"), JSON, 422, "not numbers"),
    "unknown_field": (lambda lv: dumps(body(lv, extra=1)), JSON, 422, "unknown field"),
    "seed_string": (lambda lv: dumps(body(lv, seed="1")), JSON, 422, "seed"),
    "seed_negative": (lambda lv: dumps(body(lv, seed=-1)), JSON, 422, "seed"),
    "seed_bool": (lambda lv: dumps(body(lv, seed=True)), JSON, 422, "seed"),
    "note_too_long": (lambda lv: dumps(body(lv, note="x" * 5000)), JSON, 422, "note"),
    "bad_snapshot_id": (lambda lv: dumps(body(lv, snapshot_id="../x y")), JSON, 422, "snapshot_id"),
    "id_too_long": (lambda lv: dumps(body(lv, predictions={"i" * 1000: 0.5})), JSON, 422, "longer than"),
    "huge_payload": (lambda lv: dumps(body(lv, note="x" * 600_000)), JSON, 413, "limit"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_submission_is_refused(live: LiveEval, case: str) -> None:
    make, headers, status, needle = CASES[case]
    team = f"malformed-{case}"
    client = live.client("m", team)
    r = client.post("/v1/submissions", content=make(live), headers=headers)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and needle.lower() in detail.lower()
    # nothing stored, nothing counted: the worker's list is empty and its next good submission is its first
    assert client.get("/v1/submissions").json()["submissions"] == []
    assert live.client(admin=True).get("/v1/audit", params={"team": team}).json() == []
    ok = client.post("/v1/submissions", json=body(live))
    assert ok.status_code == 200, ok.text
    assert ok.json()["budget"]["used_total"] == 1


def test_chunked_body_over_the_limit_is_refused(live: LiveEval) -> None:
    """A body without Content-Length is still cut off at the limit."""
    client = live.client("m", "malformed-chunked")

    def chunks() -> Any:
        for _ in range(64):
            yield b" " * 16_384

    r = client.post("/v1/submissions", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert client.get("/v1/submissions").json()["submissions"] == []


def test_large_bodies_are_parsed_off_the_event_loop(make_live) -> None:  # type: ignore[no-untyped-def]
    """Four concurrent ~9 MB valid-JSON bodies: /healthz stays fast (parsing on the loop: over 1 s)."""
    import threading
    import time

    import httpx

    from aar.evalserver.config import EvalServerConfig

    live = make_live(EvalServerConfig(max_body_bytes=64 * 2**20))
    preds = ", ".join(f'"junk-{k:07d}": 0.5' for k in range(500_000))
    big = f'{{"testbed": "{live.testbed.name}", "predictions": {{{preds}}}}}'.encode()
    clients = [live.client(f"b{k}", "big") for k in range(4)]
    done: list[int] = []

    def send(c: httpx.Client) -> None:
        done.append(c.post("/v1/submissions", content=big, headers=JSON).status_code)

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    worst = 0.0
    while any(t.is_alive() for t in threads):
        t0 = time.perf_counter()
        assert httpx.get(f"{live.url}/healthz", timeout=30).status_code == 200
        worst = max(worst, time.perf_counter() - t0)
    for t in threads:
        t.join()
    assert done == [422] * 4  # refused: more entries than any body may hold
    assert worst < 0.5, worst
