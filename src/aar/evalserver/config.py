"""Eval server settings: the server's own options and the per-team release, budget and detector options.

``EvalServerConfig`` loads from a TOML file (``aar serve --config FILE``) plus flags; the running
server writes the effective configuration to ``AAR_HOME/evalserver/config.json``. ``TeamConfig`` is
the part an admin may change per team at run time (``PUT /v1/teams/{team}/config``); every change is
appended to the audit log.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aar.evalserver.models import FlagKind

Mechanism = Literal["ladder", "thresholdout", "exact"]
MECHANISMS: tuple[str, ...] = ("ladder", "thresholdout", "exact")
DEFAULT_WITHHOLD: tuple[FlagKind, ...] = ("label_probing",)


class ThresholdoutConfig(BaseModel):
    """Thresholdout (Dwork et al. 2015) parameters; ``None`` means "scaled to the public set size n"."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(default=None, gt=0, le=1, description="T; default 1/sqrt(n).")
    sigma: float | None = Field(default=None, gt=0, le=1, description="Laplace scale; default 0.25/sqrt(n).")
    budget: int = Field(default=100, ge=1, le=1_000_000, description="Above-threshold answers per scope.")


class LadderConfig(BaseModel):
    """The hardened Ladder's release rule (see ``guard.Ladder``); the defaults meet the guarantee in ``guard``."""

    model_config = ConfigDict(extra="forbid")

    hard_labels: bool = Field(default=True, description="Score releases on hard labels (0.5 earns nothing).")
    min_improvement: float | None = Field(
        default=None, ge=0, le=1, description="Least gain in public accuracy released; default 1 SE, 0.5/sqrt(n).")
    noise: float = Field(default=0.25, ge=0, le=2,
                         description="Laplace noise on the release threshold, as a share of min_improvement.")
    weak_floor: bool = Field(default=True,
                             description="Release only gains over the better of the team best and W.")


class DetectorConfig(BaseModel):
    """Thresholds of the hacking detectors (they flag and record; listed kinds also withhold the release)."""

    model_config = ConfigDict(extra="forbid")

    probe_max_items: int = Field(default=10, ge=1,
                                 description="Label probing: at most this many changed items.")
    least_confident_overlap: float = Field(
        default=0.8, gt=0, le=1, description="Probing: share of edits on the least-confident items.")
    edit_max_fraction: float = Field(
        default=0.5, gt=0, lt=1, description="An 'edit' changes at most this share of the probabilities.")
    rerun_agreement: float = Field(
        default=0.97, gt=0.5, le=1, description="Cherry-picking: label agreement of a near-identical rerun.")
    rerun_count: int = Field(default=5, ge=2, description="Cherry-picking: this many near-identical vectors.")
    boosting_z: float = Field(default=3.0, gt=0,
                              description="Near-random: agreement with W within z SE of 1/2.")
    boosting_edit_count: int = Field(default=5, ge=2,
                                     description="Boosting: this many random edits by a worker.")
    window: int = Field(default=256, ge=8, le=4096, description="Earlier team submissions compared against.")
    withhold_within: int = Field(
        default=10, ge=0, description="Withhold a submission whose hard labels differ from an earlier team "
                                      "submission on at most this many items (0: never).")
    withhold: list[FlagKind] = Field(
        default_factory=lambda: list(DEFAULT_WITHHOLD),
        description="Flags that withhold the release (the submission is recorded but cannot move it).")


class TeamConfig(BaseModel):
    """Release mechanism, budgets and detector thresholds of one team."""

    model_config = ConfigDict(extra="forbid")

    mechanism: Mechanism = Field(default="ladder",
                                 description="ladder (default) | thresholdout | exact (trusted).")
    ladder_step: float | None = Field(default=None, gt=0, le=0.5,
                                      description="Rounding of released accuracies; default ~0.5/sqrt(n).")
    ladder: LadderConfig = Field(default_factory=LadderConfig)
    release_scope: Literal["team", "worker"] = Field(
        default="team", description="One release state per team (default) or per worker (K workers: K x info).")
    thresholdout: ThresholdoutConfig = Field(default_factory=ThresholdoutConfig)
    max_per_hour: int = Field(default=30, ge=1, description="Submissions per worker per rolling hour (its share).")
    max_total: int = Field(default=1000, ge=1, description="Submissions per worker in total (its share).")
    team_max_per_hour: int | None = Field(default=60, ge=1, description="Submissions per team per rolling hour.")
    team_max_total: int | None = Field(default=2000, ge=1, description="Submissions per team in total.")
    detectors: DetectorConfig = Field(default_factory=DetectorConfig)


class EvalServerConfig(BaseModel):
    """Options of one eval server process."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8710, ge=0, le=65535)
    max_body_bytes: int = Field(default=32 * 2**20, ge=1024, description="Largest accepted request body.")
    max_items: int = Field(default=100_000, ge=1, description="Most predictions in one body: bounds the time "
                                                             "a parse can hold the interpreter.")
    token_cache_s: float = Field(
        default=30.0, gt=0, description="Unused: a revocation applies on the next request (kept so older "
                                        "config files load).")
    commit_batch: int = Field(default=256, ge=1, description="Most submissions committed in one transaction.")
    team_defaults: TeamConfig = Field(default_factory=TeamConfig)


def load_config(path: Path | None = None, **overrides: object) -> EvalServerConfig:
    """Read a TOML file (top-level keys, or an ``[evalserver]`` table) and apply non-None overrides."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
        section = raw.get("evalserver", raw)
        if not isinstance(section, dict):
            raise ValueError(f"{path}: [evalserver] must be a table")
        data.update(section)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return EvalServerConfig.model_validate(data)
