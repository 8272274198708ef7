"""Shared fixtures: a small word-sense testbed prepared once per session in a temporary AAR_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aar.config import Settings

os.environ.setdefault("AAR_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def small_cases() -> int:
    """Candidates per pool of the small test ``wordsense`` (a rebuild must use the same number)."""
    return 1000


@pytest.fixture(scope="session")
def small_home(tmp_path_factory: pytest.TempPathFactory, small_cases: int) -> Settings:
    """An AAR_HOME with a small prepared ``wordsense`` testbed (``small_cases`` per pool, a fixed salt)."""
    from aar.labels.prepare import prepare_testbed

    settings = Settings(home=tmp_path_factory.mktemp("aar_home"))
    shared = os.environ.get("AAR_TEST_CACHE")  # developers: reuse a feature cache across sessions
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        settings.cache_dir.symlink_to(Path(shared).resolve(), target_is_directory=True)
    prepare_testbed("wordsense", max_items=small_cases, settings=settings, salt="test-salt")
    return settings


@pytest.fixture()
def home_env(small_home: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point AAR_HOME at the small session home for code that reads settings from the environment."""
    monkeypatch.setenv("AAR_HOME", str(small_home.home))
    return small_home.home


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """A fresh, empty database: a SQLite file, or a new database on the PostgreSQL at AAR_TEST_PG_URL.

    PostgreSQL cases skip unless ``AAR_TEST_PG_URL`` is set (``eval "$(bash scripts/start_postgres.sh)"``).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = os.environ.get("AAR_TEST_PG_URL")
    if not base:
        pytest.skip("AAR_TEST_PG_URL is not set: run scripts/start_postgres.sh to test PostgreSQL")
    pytest.importorskip("psycopg", reason="PostgreSQL tests need the pg extra: pip install 'aar[pg]'")
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"aar_t_{secrets.token_hex(6)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
