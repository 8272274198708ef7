"""Settings shared by every part of aar: where AAR_HOME is and what lives in it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings, read from the environment (``AAR_HOME``, ``DATABASE_URL``)."""

    model_config = SettingsConfigDict(env_prefix="AAR_", extra="ignore")

    home: Path = Field(default=Path(".aar"), description="Root of all aar state on disk.")
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL; SQLite files under AAR_HOME when unset.",
    )

    @property
    def labels_dir(self) -> Path:
        """Admin-only label store (mode 0700); never mounted into a sandbox."""
        return self.home / "labels"

    @property
    def testbeds_dir(self) -> Path:
        """Label-free public splits, one folder per testbed."""
        return self.home / "testbeds"

    @property
    def cache_dir(self) -> Path:
        """Content-addressed cache of model features and trained artefacts."""
        return self.home / "cache"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    def sqlite_url(self, name: str) -> str:
        """The database URL for service ``name``: DATABASE_URL if set, else a SQLite file in AAR_HOME."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / f'{name}.db').resolve()}"


def get_settings() -> Settings:
    """Settings as the environment says now (not cached, so tests can change AAR_HOME)."""
    return Settings()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and restrict it to the owner (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
