"""Eval server throughput and latency: N concurrent async clients submitting full test-set predictions.

Starts a real eval server process (``python -m aar.evalserver``) over a fresh AAR_HOME holding a
synthetic binary testbed, with auth and the durable audit log on (SQLite WAL, synchronous=FULL), the
default Ladder mechanism and all detectors. Each client is one worker with its own token. Prints
submissions/s and p50 / p99 latency; afterwards checks that every acknowledged submission is in the log.

    .venv/bin/python benchmarks/bench_evalserver.py --clients 16 --items 1000 --seconds 10

Target (issue 3): >= 300 submissions/s and p99 <= 50 ms at 16 concurrent clients on 2 cores.

Measured (2-core dev VM shared with two other engineers' jobs, load average 2.5-3; 1000 items, 10 s):
16 clients 563-618 submissions/s, p50 27-28 ms, p99 34-45 ms; server CPU ~1.5 ms and client CPU
~0.6 ms per submission. 1 client: 225/s, p50 4 ms (each waits for its own fsync); 32 clients: 468/s,
p99 97 ms (closed loop: latency ~ clients / throughput). What mattered: group commit (one fsync for
all queued submissions), ``gc.freeze()`` after start-up in server *and* client (a full GC pass over
the imported modules took ~50 ms and set the p99), and popcount over packed hard labels in the
detectors. Before those: ~400/s with p99 ~90 ms.

After issue 8 (team-level hardened Ladder, withholding, revocation signal; same VM, load ~1.8, 6 s):
16 clients 489-495 submissions/s, p50 32 ms, p99 46-48 ms; main at the same moment 508/s, p99 44 ms.
An earlier variant that read the revocation counter from the database on every request measured
232/s with p99 ~1.1 s on a loaded run; a stat() of a signal file replaced it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from aar.auth import TokenStore
from aar.config import Settings
from aar.db import make_engine
from aar.evalserver.store import Store
from aar.labels.references import BaselinePredictions, save_baselines
from aar.labels.store import write_testbed
from aar.w2s.results import SE, BaselineReport, ModelAcc, SplitAcc
from aar.w2s.testbeds.base import Item, Split, Testbed


def build_testbed(settings: Settings, n_test: int, rng: np.random.Generator) -> dict[str, int]:
    """A binary testbed with ``n_test`` items per test split and stored baselines; returns test labels."""
    splits = {}
    for split, n in (("weak_train", 50), ("strong_train", 50), ("test_id", n_test), ("test_ood", n_test)):
        items = [Item(f"{split}-{k:06d}", f"q{k}", f"c{k}") for k in range(n)]
        splits[split] = Split(items, rng.integers(0, 2, n), ["all"] * n)
    write_testbed(Testbed("bench", "binary", splits), settings)
    labels = {it.id: int(y) for s in ("test_id", "test_ood")
              for it, y in zip(splits[s].items, splits[s].require_labels(), strict=True)}

    def model(acc: float) -> dict[str, float]:
        return {i: float(y if rng.random() < acc else 1 - y) * 0.8 + 0.1 for i, y in labels.items()}

    zero = SplitAcc(id=0.0, ood=0.0)
    report = BaselineReport(testbed="bench", seeds=3, weak=ModelAcc(acc=zero, se=SE(acc=zero)),
                            ceiling=ModelAcc(acc=zero, se=SE(acc=zero)))
    save_baselines(report, BaselinePredictions(testbed="bench", weak=[model(0.7) for _ in range(3)],
                                               ceiling=[model(0.9) for _ in range(3)]), settings)
    return labels


PROFILED = """
import cProfile, sys, time
from aar.evalserver.__main__ import main
prof = cProfile.Profile(time.thread_time)
prof.enable()
try:
    main(sys.argv[1:])
finally:
    prof.disable()
    prof.dump_stats({out!r})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def client_loop(url: str, token: str, bodies: list[bytes], start: float, stop: float,
                      latencies: list[float], errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:
        k = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            r = await c.post("/v1/submissions", content=bodies[k % len(bodies)])
            t1 = time.perf_counter()
            k += 1
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:100]}")
            elif t0 >= start:
                latencies.append(t1 - t0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, tokens: list[str], bodies: list[bytes], warmup: float, seconds: float,
                server_pid: int) -> tuple[list[float], list[str], float, float]:
    latencies: list[float] = []
    errors: list[str] = []
    now = time.perf_counter()
    start, stop = now + warmup, now + warmup + seconds

    async def measure_cpu() -> float:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        before = cpu_seconds(server_pid), time.process_time()
        await asyncio.sleep(max(0.0, stop - time.perf_counter()))
        return cpu_seconds(server_pid) - before[0], time.process_time() - before[1]

    cpu = asyncio.create_task(measure_cpu())
    # each worker cycles through every vector from its own offset (no worker repeats one within the window)
    await asyncio.gather(*(client_loop(url, t, bodies[k:] + bodies[:k], start, stop, latencies, errors)
                           for k, t in enumerate(tokens)))
    server_cpu, client_cpu = await cpu
    return latencies, errors, server_cpu, client_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--items", type=int, default=1000, help="test items in all (half ID, half OOD)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--vectors", type=int, default=64, help="distinct prediction vectors cycled through")
    parser.add_argument("--profile", type=Path, default=None, help="profile the server's CPU, stats here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="aar-bench-") as tmp:
        settings = Settings(home=Path(tmp))
        labels = build_testbed(settings, args.items // 2, rng)
        store = TokenStore(make_engine(settings.sqlite_url("auth")))
        admin = store.create("bench-admin", "ops", "admin")
        tokens = [store.create(f"w{k}", "bench") for k in range(args.clients)]
        bodies = []
        for _ in range(args.vectors):
            acc = rng.uniform(0.6, 0.9)
            preds = {i: float(np.clip((y if rng.random() < acc else 1 - y) + rng.normal(0, 0.3), 0, 1))
                     for i, y in labels.items()}
            bodies.append(json.dumps({"testbed": "bench", "predictions": preds}).encode())
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "AAR_HOME": tmp}
        env.pop("DATABASE_URL", None)
        argv = ["-m", "aar.evalserver", "--port", str(port)]
        if args.profile:  # the event loop thread's CPU time (not wall time, not the writer thread)
            argv = ["-c", PROFILED.format(out=str(args.profile)), "--port", str(port)]
        proc = subprocess.Popen([sys.executable, *argv], env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("eval server did not start") from None
                    time.sleep(0.1)
            r = httpx.put(f"{url}/v1/teams/bench/config", headers={"Authorization": f"Bearer {admin}"},
                          json={"max_per_hour": 10**7, "max_total": 10**7, "team_max_per_hour": None,
                                "team_max_total": None})
            r.raise_for_status()
            gc.collect()
            gc.freeze()  # the client's own GC pauses over imported modules would show up as latency
            latencies, errors, server_cpu, client_cpu = asyncio.run(
                drive(url, tokens, bodies, args.warmup, args.seconds, proc.pid))
        finally:
            proc.send_signal(signal.SIGINT)  # a clean stop (cProfile writes its stats)
            proc.wait(timeout=30)
        stored = Store(make_engine(settings.sqlite_url("evalserver"))).max_seq()
    lat = np.array(latencies) * 1000
    result = {
        "clients": args.clients, "items": args.items, "seconds": args.seconds, "submissions": len(lat),
        "submissions_per_s": round(len(lat) / args.seconds, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(float(lat.max()), 2), "errors": len(errors), "rows_in_audit_log": stored,
        "cpus": os.cpu_count(), "server_cpu_ms_per_submission": round(1000 * server_cpu / max(len(lat), 1), 3),
        "client_cpu_ms_per_submission": round(1000 * client_cpu / max(len(lat), 1), 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['clients']} clients x {result['items']} items, {args.seconds:.0f} s measured "
              f"({result['cpus']} CPUs, auth + durable audit log + ladder + detectors on)")
        print(f"  {result['submissions_per_s']} submissions/s  p50 {result['p50_ms']} ms  "
              f"p99 {result['p99_ms']} ms  max {result['max_ms']} ms  errors {result['errors']}  "
              f"audit rows {stored}")
        print(f"  CPU per submission: server {result['server_cpu_ms_per_submission']} ms, "
              f"client {result['client_cpu_ms_per_submission']} ms")
    if errors:
        print("first errors:", errors[:3], file=sys.stderr)


if __name__ == "__main__":
    main()
