"""Reading the audit log back: records, hash-chain verification and the JSONL export.

The export (``aar audit export``) is JSONL with a ``schema_version`` on every line: a header first,
then team configuration changes, submissions and finalisation reports in log order, and a summary
last that says whether the hash chain verified. It never holds predictions (their hash instead).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import BaseModel

from aar.evalserver.models import AuditRecord, Flag, Released, Scores
from aar.evalserver.store import CHAINED, GENESIS, Store, finalizations, row_hash, team_configs

SCHEMA_VERSION = 1


class ExportSummary(BaseModel):
    """The last line of an export, also returned to the CLI."""

    schema_version: int = SCHEMA_VERSION
    type: str = "summary"
    submissions: int
    team_configs: int
    finalizations: int
    chain_ok: bool
    chain_broken_at: int | None = None


def audit_record(row: Any) -> AuditRecord:
    """A stored submission row as an audit record (admin only: it holds the true public score)."""
    return AuditRecord(
        seq=row.seq, id=row.id, created_at=datetime.fromtimestamp(row.created_at, UTC), team=row.team,
        worker_id=row.worker_id, testbed=row.testbed, mechanism=row.mechanism, pred_hash=row.pred_hash,
        n_items=row.n_items, seed=row.seed, note=row.note, snapshot_id=row.snapshot_id,
        released=Released.model_validate_json(row.released),
        team_released=Released.model_validate_json(row.team_released),
        true_public=Scores.model_validate_json(row.true_public),
        flags=[Flag.model_validate(f) for f in json.loads(row.flags)], detect=json.loads(row.detect),
        state=json.loads(row.state), prev_hash=row.prev_hash, row_hash=row.row_hash)


def verify_chain(store: Store) -> tuple[int, int | None]:
    """Walk the whole log; returns (rows checked, seq of the first broken link or None)."""
    prev = GENESIS
    count = 0
    for row in store.iter_all():
        data = {k: getattr(row, k) for k in CHAINED}
        if row.prev_hash != prev or row_hash(data) != row.row_hash:
            return count, row.seq
        prev = row.row_hash
        count += 1
    return count, None


def _line(data: dict[str, Any]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **data}, sort_keys=False, default=str) + "\n"


def iter_export(store: Store, team: str | None = None) -> Iterator[str]:
    """The export's lines (see the module docstring)."""
    yield _line({"type": "header", "exported_at": datetime.now(UTC).isoformat(), "team": team})
    n_cfg = n_sub = n_fin = 0
    for row in store.iter_table(team_configs, team):
        n_cfg += 1
        yield _line({"type": "team_config", "seq": row.seq, "team": row.team,
                     "created_at": datetime.fromtimestamp(row.created_at, UTC).isoformat(),
                     "set_by": row.set_by, "config": json.loads(row.config)})
    for row in store.iter_all(team=team):
        n_sub += 1
        yield audit_record(row).model_dump_json() + "\n"
    for row in store.iter_table(finalizations, team):
        n_fin += 1
        yield _line({"type": "finalization", "seq": row.seq, "team": row.team, "by": row.by,
                     "created_at": datetime.fromtimestamp(row.created_at, UTC).isoformat(),
                     "report": json.loads(row.report)})
    _, broken = verify_chain(store)
    summary = ExportSummary(submissions=n_sub, team_configs=n_cfg, finalizations=n_fin,
                            chain_ok=broken is None, chain_broken_at=broken)
    yield summary.model_dump_json() + "\n"


def export_audit(store: Store, out: IO[str], team: str | None = None) -> ExportSummary:
    """Write the JSONL export to ``out``; returns its summary line."""
    last = ""
    for line in iter_export(store, team):
        out.write(line)
        last = line
    return ExportSummary.model_validate_json(last)
