"""Cold and warm wall time of one vanilla W2S experiment on a testbed, the default unless told (2-core
CPU targets: warm experiment <= 30 s).

Cold = prepare the testbed from WordNet in an empty AAR_HOME (embedding everything once with MPNet
and MiniLM) and run one vanilla experiment; warm = the same experiment again with features cached.
``--home`` reuses an AAR_HOME (its feature cache makes "cold" a rebuild from cached embeddings).

    .venv/bin/python benchmarks/bench_experiment.py [--home DIR] [--testbed NAME]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AAR_QUIET", "1")


def one_experiment(settings, testbed: str) -> float:  # type: ignore[no-untyped-def]
    from aar.labels.store import load_labelled
    from aar.w2s.experiment import run_experiment
    from aar.w2s.scoring import accuracy

    out = run_experiment("vanilla", testbed, settings=settings)  # the public view, as an agent runs it
    labels = load_labelled(testbed, settings)["test_id"].require_labels()  # scoring: trusted side
    return accuracy(out.test_probs["test_id"], labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="AAR_HOME to use (default: a fresh temp dir)")
    parser.add_argument("--testbed", default=None, help="built-in testbed (default: the default testbed)")
    args = parser.parse_args()
    from aar.config import Settings
    from aar.labels.prepare import prepare_testbed
    from aar.w2s.testbeds import DEFAULT_TESTBED

    testbed = args.testbed or DEFAULT_TESTBED
    home = args.home or Path(tempfile.mkdtemp(prefix="aar-bench-"))
    settings = Settings(home=home)
    t0 = time.perf_counter()
    prepare_testbed(testbed, settings=settings)
    t_prepare = time.perf_counter() - t0
    acc_cold = one_experiment(settings, testbed)
    t_cold = time.perf_counter() - t0
    t1 = time.perf_counter()
    acc_warm = one_experiment(settings, testbed)
    t_warm = time.perf_counter() - t1
    print(f"testbed prepare (cold):       {t_prepare:7.1f} s")
    print(f"prepare + vanilla (cold):     {t_cold:7.1f} s   acc_id={acc_cold:.3f}")
    print(f"vanilla experiment (warm):    {t_warm:7.1f} s   (target <= 30 s)    acc_id={acc_warm:.3f}")


if __name__ == "__main__":
    main()
