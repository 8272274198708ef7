"""A team: its spec (``team.toml`` + flags), its persisted state, and launch / stop.

``launch`` issues one token per worker (kept beside each workspace, mode 0600, outside every
sandbox) and an admin token for the team's supervisor, sets the team's release mechanism and
submission budgets on the eval server, registers the workers with the hub, exports the testbed's
feature store once, writes each worker's config, and starts the supervisor as a detached process; it
returns at once with the team id. The state lives in ``AAR_HOME/runs/<team>/team.json`` (written
atomically by the supervisor), so a restarted supervisor resumes the same team.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aar.agents.base import Budget
from aar.agents.claude import ClaudeConfig
from aar.agents.evolve import EvolveConfig
from aar.agents.llm import LlmConfig
from aar.agents.worker import NAME, WorkerConfig, worker_dir
from aar.config import Settings, ensure_private_dir, get_settings
from aar.orchestrator.directions import directions_for
from aar.w2s.testbeds import DEFAULT_TESTBED

STATE_VERSION = 1
WorkerPhase = Literal["pending", "running", "backoff", "finished", "stopped", "failed"]
TeamPhase = Literal["running", "stopping", "stopped", "finished", "finalized"]


class TeamBudget(BaseModel):
    """Limits over the whole team (``None``: unlimited); reaching one stops every worker."""

    model_config = ConfigDict(extra="forbid")

    wall_s: float | None = Field(default=None, gt=0, description="Wall-clock seconds since launch.")
    worker_hours: float | None = Field(default=None, gt=0, description="Sum of the workers' research hours.")
    dollars: float | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, gt=0)
    submissions: int | None = Field(default=None, gt=0, description="Also set on the eval server.")


class TeamSpec(BaseModel):
    """Everything that defines a team (saved verbatim as ``team.json``'s ``spec``)."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = Field(default=None, pattern=NAME.pattern, description="Default: a fresh id.")
    workers: int = Field(default=3, ge=1, le=256)
    kind: Literal["evolve", "llm", "claude"] = "evolve"
    mode: Literal["directed", "undirected"] = "directed"
    directions: list[str] | None = Field(default=None, description="Default: the package's list.")
    testbed: str = Field(default=DEFAULT_TESTBED, pattern=NAME.pattern)
    budget: Budget = Field(default_factory=Budget, description="Per worker.")
    team_budget: TeamBudget = Field(default_factory=TeamBudget)
    sandbox: str = "bwrap"
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(default=None, description="An existing Ray cluster; default: start a local one.")
    concurrency: int | None = Field(default=None, ge=1, description="Workers running at once (default: all).")
    gpus: list[int] = Field(default_factory=list, description="GPU indices this team may use (local backend).")
    gpus_per_worker: int = Field(default=0, ge=0)
    cpus_per_worker: float = Field(default=1.0, gt=0, description="Ray resource request per worker.")
    mechanism: Literal["ladder", "thresholdout", "exact"] = "ladder"
    hub_url: str = "http://127.0.0.1:8711"
    eval_url: str = "http://127.0.0.1:8710"
    max_restarts: int = Field(default=5, ge=0)
    backoff_s: float = Field(default=5.0, gt=0, description="First restart delay; doubles per restart (max 5 min).")
    evolve: EvolveConfig = Field(default_factory=EvolveConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    claude: ClaudeConfig = Field(default_factory=ClaudeConfig)


class WorkerState(BaseModel):
    worker: str
    direction: str | None = None
    phase: WorkerPhase = "pending"
    pid: int | None = None
    pid_start: int | None = Field(default=None, description="Process start time (guards against PID reuse).")
    restarts: int = 0
    next_start: float | None = Field(default=None, description="Unix time of the next (re)start.")
    last_exit: int | None = None
    gpus: list[int] = Field(default_factory=list)


class TeamState(BaseModel):
    schema_version: int = STATE_VERSION
    team: str
    spec: TeamSpec
    created_at: datetime
    phase: TeamPhase = "running"
    reason: str | None = None
    supervisor_pid: int | None = None
    supervisor_start: int | None = None
    workers: dict[str, WorkerState]


def team_dir(settings: Settings, team: str) -> Path:
    return settings.runs_dir / team


def final_path(settings: Settings, team: str) -> Path:
    """Where ``aar team finalize`` saves the team's final report (selection, replays, private scores)."""
    return team_dir(settings, team) / "final.json"


def load_state(settings: Settings, team: str) -> TeamState:
    path = team_dir(settings, team) / "team.json"
    if not path.exists():
        raise ValueError(f"no team {team!r} under {settings.runs_dir}")
    return TeamState.model_validate_json(path.read_text())


def save_state(settings: Settings, state: TeamState) -> None:
    path = team_dir(settings, state.team) / "team.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(state.model_dump_json(indent=1))
    tmp.replace(path)


def request_stop(settings: Settings, team: str, reason: str = "stopped by the user") -> None:
    """Ask the supervisor to stop the team gracefully (a file it polls; works across processes)."""
    (team_dir(settings, team) / "STOP").write_text(reason)


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (None if it does not exist or is a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int | None, start: int | None) -> bool:
    """True when ``pid`` runs and is the same process (same start time) as recorded."""
    return pid is not None and start is not None and process_start(pid) == start


def worker_config(spec: TeamSpec, team: str, worker: str, direction: str | None, gpus: list[int]) -> WorkerConfig:
    return WorkerConfig(kind=spec.kind, team=team, worker=worker, testbed=spec.testbed, direction=direction,
                        budget=spec.budget, sandbox=spec.sandbox, hub_url=spec.hub_url, eval_url=spec.eval_url,
                        evolve=spec.evolve, llm=spec.llm, claude=spec.claude,
                        gpus=gpus)


def launch(spec: TeamSpec, settings: Settings | None = None, start_supervisor: bool = True) -> TeamState:
    """Create the team (tokens, eval-server budgets, hub registration, configs) and start its supervisor."""
    from aar.auth import TokenStore
    from aar.db import make_engine
    from aar.w2s.features import export_features

    settings = settings or get_settings()
    team = spec.team or f"team-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    root = team_dir(settings, team)
    if (root / "team.json").exists():
        raise ValueError(f"team {team!r} already exists (use `aar team status {team}`)")
    root.mkdir(parents=True)
    spec = spec.model_copy(update={"team": team})
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    admin = tokens.create(f"orchestrator-{team}", team, "admin")
    _secret(root / "admin.token", admin)
    _set_eval_budgets(spec, team, admin)
    export_features(spec.testbed, settings=settings)  # once, before N workers need it
    names = [f"{team}-w{k + 1:02d}" for k in range(spec.workers)]  # worker ids are global (tokens, hub)
    gpu_sets = _gpu_sets(spec)
    workers: dict[str, WorkerState] = {}
    for name, direction, gpus in zip(names, directions_for(spec.workers, spec.mode, spec.directions), gpu_sets,
                                     strict=True):
        wdir = worker_dir(settings, team, name)
        wdir.mkdir(parents=True)
        _secret(wdir / "token", tokens.create(name, team))
        (wdir / "worker.json").write_text(worker_config(spec, team, name, direction, gpus).model_dump_json(indent=2))
        workers[name] = WorkerState(worker=name, direction=direction, gpus=gpus)
    _register(spec, team, admin, workers)
    state = TeamState(team=team, spec=spec, created_at=datetime.now(UTC), workers=workers)
    save_state(settings, state)
    if start_supervisor:
        start_supervisor_process(settings, team)
    return state


def start_supervisor_process(settings: Settings, team: str) -> int:
    """Start ``aar team supervise TEAM`` detached (own session); returns its pid."""
    from aar.agents.tools import aar_command

    log = (team_dir(settings, team) / "supervisor.log").open("a")
    env = {**os.environ, "AAR_HOME": str(settings.home.resolve())}
    proc = subprocess.Popen([aar_command(), "team", "supervise", team], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        if load_state(settings, team).supervisor_pid == proc.pid:
            break
        time.sleep(0.1)
    return proc.pid


def _secret(path: Path, value: str) -> None:
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)


def _gpu_sets(spec: TeamSpec) -> list[list[int]]:
    k = spec.gpus_per_worker
    if k == 0:
        return [[] for _ in range(spec.workers)]
    if len(spec.gpus) < k * min(spec.workers, spec.concurrency or spec.workers):
        raise ValueError(f"{spec.workers} workers x {k} GPUs need more than the GPUs given ({spec.gpus})")
    slots = len(spec.gpus) // k
    return [spec.gpus[(i % slots) * k:(i % slots + 1) * k] for i in range(spec.workers)]


def _set_eval_budgets(spec: TeamSpec, team: str, admin: str) -> None:
    """The team's release mechanism and submission budgets on the eval server (admin PUT)."""
    import httpx

    from aar.httpclient import ServiceError, error_reason

    cfg: dict[str, object] = {"mechanism": spec.mechanism}
    if spec.budget.submissions is not None:
        cfg["max_total"] = spec.budget.submissions
    if spec.team_budget.submissions is not None:
        cfg["team_max_total"] = spec.team_budget.submissions
    try:
        r = httpx.put(f"{spec.eval_url.rstrip('/')}/v1/teams/{team}/config", json=cfg,
                      headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise ServiceError(0, f"eval server at {spec.eval_url} unreachable: {exc} (start it: aar serve)") from None
    if r.status_code != 200:
        raise ServiceError(r.status_code, f"eval server refused the team config: {error_reason(r)}")


def _register(spec: TeamSpec, team: str, admin: str, workers: dict[str, WorkerState]) -> None:
    from aar.hub.client import HubClient

    with HubClient(spec.hub_url, admin) as hub:
        for w in workers.values():
            hub.register({"kind": spec.kind, "direction": w.direction, "testbed": spec.testbed},
                         worker_id=w.worker, team=team)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def stop_team(settings: Settings, team: str, wait_s: float = 120.0) -> TeamState:
    """Stop every worker gracefully, through the supervisor when it runs, else directly; returns the state."""
    from aar.orchestrator.supervisor import Supervisor

    state = load_state(settings, team)
    if state.phase in ("stopped", "finished", "finalized"):
        return state
    request_stop(settings, team)
    if not alive(state.supervisor_pid, state.supervisor_start):
        sup = Supervisor(settings, team)
        sup.state.phase, sup.state.reason = "stopping", "stopped by the user"
        sup.run()
        return load_state(settings, team)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        state = load_state(settings, team)
        if state.phase in ("stopped", "finished"):
            break
        time.sleep(0.5)
    return state


def resume_team(settings: Settings, team: str) -> TeamState:
    """Start a new supervisor for a team whose supervisor died; it adopts the running workers."""
    state = load_state(settings, team)
    if alive(state.supervisor_pid, state.supervisor_start):
        raise ValueError(f"team {team!r} still has a running supervisor (pid {state.supervisor_pid})")
    if state.phase != "running":
        raise ValueError(f"team {team!r} is {state.phase}; only a running team can be resumed")
    start_supervisor_process(settings, team)
    return load_state(settings, team)


def freeze_team(settings: Settings, team: str) -> TeamState | None:
    """After finalize: stop the team if it runs, revoke every worker token, mark it ``finalized``.

    Returns None when ``team`` was not launched from this AAR_HOME (nothing to freeze here).
    """
    from aar.auth import TokenStore
    from aar.db import make_engine

    if not (team_dir(settings, team) / "team.json").exists():
        return None
    state = stop_team(settings, team)
    tokens = TokenStore(make_engine(settings.sqlite_url("auth")))
    for worker in state.workers:
        tokens.revoke_worker(worker)
    state = load_state(settings, team)
    state.phase, state.reason = "finalized", "finalized: scores are final, worker tokens revoked"
    save_state(settings, state)
    return state
