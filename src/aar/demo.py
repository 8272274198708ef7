"""``aar demo``: one command from a fresh clone to a finished, finalized team and its leaderboard.

It prepares the default offline testbed (or keeps the one there), stores its baselines, starts the eval
server, hub and dashboard on loopback, launches a small directed ``evolve`` team with a progress line,
finalizes it (each selected idea replayed on the never-published private half), writes the team's report
and prints the leaderboard: every baseline's PGR on both halves, the team's best (public and private),
each with its SE, and the paired SE of "team best minus best baseline" on the private half, saying when a
gain is inside the noise. Nothing is left running unless ``keep_serving``.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aar.config import Settings, ensure_private_dir

Say = Callable[[str], None]
DEFAULT_PORTS = (8710, 8711, 8712)
#: A gain is called real only beyond this many paired SEs (about 95% one-sided: 1.96).
NOISE_SES = 2.0


@dataclass
class BoardLine:
    """One row of the demo's leaderboard: PGR (combined) with its SE on each half."""

    name: str
    public: float | None
    public_se: float | None
    private: float | None
    private_se: float | None
    note: str = ""


@dataclass
class DemoResult:
    team: str
    testbed: str
    lines: list[BoardLine]
    verdict: str
    report: Path | None
    dashboard_url: str
    admin_token_file: Path
    seconds: dict[str, float]


def _port(preferred: int) -> int:
    """``preferred`` when it is free on loopback, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free loopback port")


def ensure_testbed(name: str, settings: Settings, max_items: int | None, seeds: int, say: Say) -> None:
    """Prepare ``name`` unless this AAR_HOME has it (current layout), and store its baselines unless stored."""
    from aar.labels.baselines import run_baselines
    from aar.labels.prepare import prepare_testbed
    from aar.labels.references import load_baselines
    from aar.w2s.models.encoder import ENCODE_STATS, EncodeStats
    from aar.w2s.testbeds.base import TestbedError, load_testbed

    before = EncodeStats(ENCODE_STATS.texts, ENCODE_STATS.seconds)
    try:
        load_testbed(name, settings)
        say(f"testbed {name}: already prepared in {settings.home}")
    except TestbedError:
        size = "full size" if max_items is None else f"at most {max_items} items per pool"
        say(f"preparing testbed {name} ({size}): builds the items, trains the weak model, embeds the texts")
        prepare_testbed(name, max_items=max_items, settings=settings)
    try:
        load_baselines(name, settings)
        say(f"baselines of {name}: already stored")
    except TestbedError:
        say(f"running the shipped baselines on {name} ({seeds} seeds)")
        run_baselines(name, seeds=seeds, progress=True, settings=settings)
    say(ENCODE_STATS.since(before).summary())


def admin_token(settings: Settings) -> Path:
    """A fresh admin token for the dashboard login, in a 0600 file (the token is never printed)."""
    from aar.evalserver.admin import create_token

    info = create_token(settings, f"demo-{secrets.token_hex(3)}", "demo", True)
    folder = ensure_private_dir(settings.home / "demo")
    path = folder / "admin.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(info.token + "\n")
    return path


def watch_team(settings: Settings, team: str, limit_s: float, say: Say, every_s: float = 10.0) -> None:
    """Print a progress line every ``every_s`` until no worker runs (or ``limit_s`` passed: then stop it)."""
    from aar.orchestrator.status import team_status
    from aar.orchestrator.team import load_state, stop_team

    start = time.monotonic()
    while True:
        time.sleep(every_s)
        status = team_status(settings, team)
        best = "-" if status.best_released_pgr is None else f"{status.best_released_pgr:.3f}"
        workers = ", ".join(f"w{k + 1:02d} {w.phase} {w.submissions} subs" for k, w in enumerate(status.workers))
        say(f"[{(time.monotonic() - start) / 60:4.1f} min] {workers}; best released PGR {best}")
        if all(w.phase not in ("running", "backoff", "pending") for w in status.workers):
            return
        if time.monotonic() - start > limit_s:
            say("the team ran past its time: stopping it")
            stop_team(settings, team)
            return
        if load_state(settings, team).phase not in ("running", "stopping"):
            return


def leaderboard(settings: Settings, testbed: str, final: object) -> tuple[list[BoardLine], str]:
    """Baselines and the team's best on both halves (PGR ± SE), and the verdict on the private half."""
    from aar.evalserver.labels import load_labels
    from aar.evalserver.models import FinalReport
    from aar.w2s.scoring import bootstrap_se

    assert isinstance(final, FinalReport)
    tl = load_labels(testbed, settings)
    lines = []
    assert tl.weak_correct is not None and tl.ceiling_correct is not None
    for name, correct in sorted(tl.method_correct.items()):
        values: dict[str, tuple[float, float]] = {}
        for vis in ("public", "private"):
            idx = tl.part(vis, "combined")
            ref = tl.refs[(vis, "combined")]
            _, se = bootstrap_se(correct[idx], tl.weak_correct[idx], tl.ceiling_correct[idx])
            values[vis] = ((float(correct[idx].mean()) - ref.weak) / (ref.ceiling - ref.weak), se)
        lines.append(BoardLine(name, values["public"][0], values["public"][1], values["private"][0],
                               values["private"][1], "baseline"))
    best = next((e for e in final.team_best if e.testbed == testbed), None)
    if best is None:
        return lines, "the team made no submission"
    pse = best.public.pgr_se.combined if best.public.pgr_se else None
    private = best.private
    lines.append(BoardLine(f"team best ({best.worker_id})", best.public.pgr.combined, pse,
                           private.pgr.combined if private else None,
                           private.pgr_se.combined if private and private.pgr_se else None,
                           "replayed" if private else "not reproducible"))
    return lines, verdict(best)


def verdict(best: object) -> str:
    """One sentence on the team's best against the best baseline, on the private half, with the paired SE."""
    from aar.evalserver.models import FinalEntry

    assert isinstance(best, FinalEntry)
    if best.private is None:
        why = best.replay.reason if best.replay else "it was not replayed"
        return f"the team's best has no private score: {why}"
    vs = best.vs_best_baseline
    if vs is None or vs.diff.combined is None or vs.paired_se.combined is None:
        return "no paired comparison with the baselines (none stored for these items)"
    d, se = vs.diff.combined, vs.paired_se.combined
    text = f"team best minus {vs.baseline} on the private half: {d:+.3f} ± {se:.3f} PGR (paired SE)"
    if abs(d) < NOISE_SES * se:
        return text + f": inside the noise (|diff| < {NOISE_SES:g} SE), no claim either way"
    return text + (": the team beats the best baseline" if d > 0 else ": the team is below the best baseline")


def run_demo(settings: Settings, say: Say, *, testbed: str, max_items: int | None = None, workers: int = 3,
             minutes: float = 4.0, submissions: int = 12, seeds: int = 3, sandbox: str = "bwrap",
             keep_serving: bool = False, wait_forever: Callable[[], None] | None = None) -> DemoResult:
    """The whole demo (see the module docstring); ``wait_forever`` blocks while ``keep_serving``."""
    from aar.agents.base import Budget
    from aar.analysis.report import build_report, gather, write_report
    from aar.analysis.rerun import idea_code
    from aar.evalserver import launch
    from aar.evalserver.admin import finalize
    from aar.labels.replay import replay_finalists
    from aar.orchestrator.team import TeamSpec, final_path, freeze_team
    from aar.orchestrator.team import launch as launch_team

    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    ensure_testbed(testbed, settings, max_items, seeds, say)
    seconds["testbed and baselines"] = time.monotonic() - t0
    eval_port, hub_port, dash_port = (_port(p) for p in DEFAULT_PORTS)
    services = launch.plan("127.0.0.1", eval_port, hub_port, None, True, dash_port)
    token_file = admin_token(settings)
    with launch.started(services):
        eval_url, hub_url, dash_url = (s.url for s in services)
        say(f"services: eval server {eval_url}, hub {hub_url}, dashboard {dash_url} "
            f"(log in with the admin token in {token_file})")
        t1 = time.monotonic()
        spec = TeamSpec(workers=workers, kind="evolve", mode="directed", testbed=testbed, sandbox=sandbox,
                        budget=Budget(wall_s=minutes * 60, submissions=submissions), hub_url=hub_url,
                        eval_url=eval_url)
        state = launch_team(spec, settings)
        team = state.team
        say(f"launched team {team}: {workers} directed evolve workers, {minutes:g} min each "
            f"(watch it live at {dash_url}/teams/{team})")
        watch_team(settings, team, limit_s=minutes * 60 + 180, say=say)
        seconds["team"] = time.monotonic() - t1
        t2 = time.monotonic()
        say("finalizing: each worker's best public submission is replayed on the private half (sandbox, "
            "fresh ids, no network)")
        report = finalize(settings, team)
        freeze_team(settings, team)
        report = replay_finalists(settings, report, lambda snap: idea_code(settings, team, snap, None),
                                  sandbox=sandbox, progress=say)
        path = final_path(settings, team)
        path.write_text(report.model_dump_json(indent=1))
        seconds["finalize"] = time.monotonic() - t2
        lines, text = leaderboard(settings, testbed, report)
        out_dir = settings.runs_dir / team / "report"
        try:
            write_report(build_report(gather(settings, team, min_workers=min(workers, 3))), out_dir)
        except Exception as exc:  # noqa: BLE001 - the leaderboard stands without the report
            say(f"the report could not be written: {exc}")
        result = DemoResult(team, testbed, lines, text, out_dir if (out_dir / "report.html").is_file() else None,
                            f"{dash_url}/teams/{team}", token_file, seconds)
        if keep_serving and wait_forever is not None:
            say(f"serving the dashboard at {dash_url} until Ctrl-C")
            wait_forever()
    return result


def format_pgr(value: float | None, se: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + ("" if se is None or not np.isfinite(se) else f" ± {se:.3f}")
