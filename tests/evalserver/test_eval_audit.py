"""Audit log: append-only at the database, hash chain detects tampering, JSONL export shape and content."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from evalkit import LiveEval

from aar.db import make_engine
from aar.evalserver.audit import export_audit, verify_chain
from aar.evalserver.store import Store


@pytest.fixture
def audited(make_live) -> LiveEval:  # type: ignore[no-untyped-def]
    live: LiveEval = make_live()
    live.set_team("aud", mechanism="ladder", max_per_hour=500)
    client = live.client("a1", "aud")
    for p in (0.6, 0.7, 0.3):
        body = {"testbed": live.testbed.name, "predictions": dict.fromkeys(live.testbed.test_ids, p),
                "seed": 1, "note": "n", "snapshot_id": "a" * 64}
        assert client.post("/v1/submissions", json=body).status_code == 200
    assert live.client(admin=True).post("/v1/teams/aud/finalize").status_code == 200
    return live


def test_tables_refuse_update_and_delete(audited: LiveEval) -> None:
    db = audited.settings.home / "evalserver.db"
    with sqlite3.connect(db) as conn:
        for sql in ("UPDATE eval_submissions SET released = '{}'", "DELETE FROM eval_submissions",
                    "UPDATE eval_team_configs SET config = '{}'", "DELETE FROM eval_finalizations"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)


def test_hash_chain_detects_a_rewritten_row(audited: LiveEval, tmp_path: Path) -> None:
    db = audited.settings.home / "evalserver.db"
    assert verify_chain(Store(make_engine(f"sqlite:///{db}"))) == (3, None)
    copy = tmp_path / "tampered.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as conn:
        conn.execute("DROP TRIGGER eval_submissions_no_update")
        conn.execute("UPDATE eval_submissions SET note = 'rewritten' WHERE seq = 2")
    assert verify_chain(Store(make_engine(f"sqlite:///{copy}")))[1] == 2


def test_export_is_versioned_jsonl_without_predictions(audited: LiveEval) -> None:
    buf = io.StringIO()
    summary = export_audit(Store(make_engine(audited.settings.sqlite_url("evalserver"))), buf, team="aud")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert all(line["schema_version"] == 1 for line in lines)
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "summary"
    types = [line["type"] for line in lines[1:-1]]
    assert types == ["team_config", "submission", "submission", "submission", "finalization"]
    assert summary.submissions == 3 and summary.chain_ok and summary.finalizations == 1
    sub = lines[2]
    assert not any("predictions" in line for line in lines[1:-1] if line["type"] == "submission")
    for key in ("pred_hash", "worker_id", "team", "created_at", "released", "true_public", "flags",
                "row_hash"):
        assert key in sub
    assert sub["seed"] == 1 and sub["snapshot_id"] == "a" * 64
    assert len({line["pred_hash"] for line in lines if line["type"] == "submission"}) == 3
