"""Dashboard page times on a worker with a long trajectory (default 50,000 lines): prints measured numbers.

Builds a throwaway AAR_HOME with one team whose worker has N trajectory lines (messages, tool calls and
results with long outputs, submissions), logs in, and times: the worker page (cold and warm), the live
"lines after" poll, "earlier" paging, one line in full, a search over the whole file, the team page
(cold: every step parsed once; warm: the incremental cache) and the "what changed" poll (304).

    .venv/bin/python benchmarks/bench_dashboard.py [--lines 50000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))

from dashkit import admin_token, dash_client, fake_team, home, login, trajectory  # noqa: E402


def build(settings, team: str, worker: str, n: int) -> Path:  # type: ignore[no-untyped-def]
    tr = trajectory(settings, team, worker)
    tr.max_bytes = 1 << 40
    tr.append("run_start", kind="llm", budget={}, prior={})
    tr.append("session_start")
    for k in range(n - 2):
        m = k % 4
        if m == 0:
            tr.append("message", tokens=1200, cost_usd=0.004, role="assistant", text=f"step {k}: thinking " * 20)
        elif m == 1:
            tr.append("tool_call", name="shell", arguments={"cmd": f"python run.py --seed {k}"})
        elif m == 2:
            tr.append("tool_result", name="shell", ok=True, result="output line\n" * 300)
        else:
            tr.append("submission", submission_id=f"sub-{k}", released_pgr={"combined": 0.1 + k / n / 2})
    return tr.path


def timed(client, url: str, repeat: int = 3, **kw) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    best, status = 1e9, 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url, **kw)
        best, status = min(best, time.perf_counter() - t), r.status_code
    return best, status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=50_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = home(Path(tmp))
        state = fake_team(settings, "bench", workers=1)
        worker = next(iter(state.workers))
        t = time.perf_counter()
        path = build(settings, "bench", worker, args.lines)
        print(f"built {args.lines} lines ({path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t:.1f}s")
        client = dash_client(settings)
        login(client, admin_token(settings))
        base = f"/teams/bench/workers/{worker}"
        size = path.stat().st_size
        cold, _ = timed(client, base, repeat=1)
        print(f"worker page, first request (cold; its header parses every step once): {cold * 1000:.0f} ms")
        rows = [("worker page (warm)", base), ("live poll, nothing new", f"/api{base}/lines?after={size}"),
                ("earlier page (200 lines) from the middle", f"/api{base}/lines?before={size // 2}"),
                ("one line in full", f"/api{base}/line?offset=0"),
                ("search the whole file (phrase in every 4th line)", f"{base}?q=step%2049999"),
                ("team page (warm)", "/teams/bench")]
        for label, url in rows:
            dt, status = timed(client, url)
            print(f"{label}: {dt * 1000:.0f} ms (HTTP {status})")
        import resource

        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        tag = client.get("/api/version?team=bench").headers["etag"]
        dt, status = timed(client, "/api/version?team=bench", headers={"If-None-Match": tag})
        print(f"what-changed poll: {dt * 1000:.1f} ms (HTTP {status})")


if __name__ == "__main__":
    main()
