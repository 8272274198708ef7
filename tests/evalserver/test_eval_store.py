"""The eval server's store on SQLite and PostgreSQL: append-only log, chain, restart state, one server per DB."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from evalkit import ThreadServer, make_testbed, noisy_predictions, start_live
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from aar.auth import Principal
from aar.config import Settings
from aar.db import make_engine
from aar.evalserver.app import create_app
from aar.evalserver.audit import verify_chain
from aar.evalserver.config import EvalServerConfig
from aar.evalserver.service import EvalService
from aar.evalserver.store import Store


def test_log_chain_budgets_and_restart(db_url: str, tmp_path: Path) -> None:
    server, live = start_live(tmp_path / "a", database_url=db_url)
    tb = live.testbed
    try:
        live.set_team("st", max_per_hour=100, team_max_per_hour=100)
        a, b = live.client("a", "st"), live.client("b", "st")
        rng = np.random.default_rng(0)
        for k, c in enumerate((a, b, a, b, a)):
            body = {"testbed": tb.name, "predictions": noisy_predictions(tb.labels, 0.8 + 0.03 * k, rng)}
            assert c.post("/v1/submissions", json=body).status_code == 200
        assert live.client(admin=True).post("/v1/teams/st/finalize").status_code == 200
        released = a.get("/v1/submissions").json()["submissions"][-1]["team_best"]
    finally:
        server.__exit__()
    store = Store(make_engine(db_url))
    checked, broken = verify_chain(store)
    assert checked == 5 and broken is None
    with store.engine.begin() as c, pytest.raises(DBAPIError, match="append-only"):
        c.execute(text("UPDATE eval_submissions SET released = '{}'"))
    with store.engine.begin() as c, pytest.raises(DBAPIError, match="append-only"):
        c.execute(text("DELETE FROM eval_finalizations"))
    # a new server on the same database resumes budgets and the team's release state
    server2 = ThreadServer(create_app(live.settings, EvalServerConfig()))
    server2.__enter__()
    try:
        live.url = server2.url
        again = live.client("a", "st").post("/v1/submissions", json={
            "testbed": tb.name, "predictions": noisy_predictions(tb.labels, 0.7, np.random.default_rng(9))})
        out = again.json()
        assert out["budget"]["team_used_total"] == 6 and out["budget"]["used_total"] == 4
        assert out["team_best"]["acc"] == released["acc"]
    finally:
        server2.__exit__()
    assert verify_chain(store) == (6, None)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_second_server_on_one_database_is_refused(db_url: str, tmp_path: Path) -> None:
    """Two servers (different AAR_HOMEs) on one database: the second refuses to start."""
    first, live = start_live(tmp_path / "a", database_url=db_url)
    try:
        other = Settings(home=tmp_path / "b", database_url=live.settings.database_url)
        make_testbed(other)
        second = ThreadServer(create_app(other, EvalServerConfig()))
        with pytest.raises(RuntimeError, match="did not start"):
            second.__enter__()
        second.__exit__()
    finally:
        first.__exit__()


def test_without_the_lock_two_servers_fork_the_chain(db_url: str, tmp_path: Path) -> None:
    """Control: why the lock exists. Two services on one database, bypassing it, fork the audit chain."""
    settings = Settings(home=tmp_path / "h", database_url=db_url if db_url.startswith("postgres") else None)
    tb = make_testbed(settings)
    services = [EvalService(settings, EvalServerConfig()) for _ in range(2)]
    body = json.dumps({"testbed": tb.name, "predictions": noisy_predictions(tb.labels, 0.8,
                                                                           np.random.default_rng(1))}).encode()

    async def both() -> None:
        for k, svc in enumerate(services):
            svc.loop = asyncio.get_running_loop()
            await svc.submit(Principal(f"w{k}", "fork", "worker"), body, "application/json")

    try:
        asyncio.run(both())
        checked, broken = verify_chain(services[0].store)
        assert broken is not None  # both rows link to the same predecessor
    finally:
        for svc in services:
            svc.close()
