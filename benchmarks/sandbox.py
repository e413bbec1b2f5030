"""Per-test cost of a sandboxed run against a bare ``subprocess.run([python, "-c", code])`` (goal: ratio <= 1.5), and
scoring throughput with 1 vs 2 workers.

    python benchmarks/sandbox.py [--rounds 40] [--programs 24] [--tests 4]

Reference: one bare interpreter per test, the cheapest way to run a program on an input at all (no isolation, no
limits). Ours: one sandbox per program (namespaces, read-only mounts, uid drop, rlimits), one fork per test.
The headline ratio is the worst case for us, programs with a single test; programs with several tests are reported
beside it. Runs alternate and medians are taken, since a shared machine is noisy.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.verifiers import code, sandbox  # noqa: E402

PROGRAM = "import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(nums), max(nums))\n"
INPUT = "3\n1 2 3 4 5 6 7 8 9 10\n"


def bare(n_tests: int) -> float:
    t = time.perf_counter()
    for _ in range(n_tests):
        subprocess.run([sys.executable, "-c", PROGRAM], input=INPUT.encode(), capture_output=True, check=True)
    return time.perf_counter() - t


def ours(n_tests: int) -> float:
    t = time.perf_counter()
    exs = sandbox.execute(PROGRAM, [INPUT] * n_tests)
    dt = time.perf_counter() - t
    assert all(e.status == sandbox.OK and e.stdout == "58 10\n" for e in exs), exs
    return dt


def throughput(workers: int, programs: int, tests: int) -> float:
    completion = f"<think>x</think>\n```python\n{PROGRAM}```"
    jobs = [code.CodeJob(completion, [{"input": INPUT, "output": "58 10"}] * tests) for _ in range(programs)]
    t = time.perf_counter()
    verdicts = code.score_many(jobs, workers=workers)
    dt = time.perf_counter() - t
    assert all(v.correct for v in verdicts)
    return programs / dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--programs", type=int, default=24)
    ap.add_argument("--tests", type=int, default=4, help="tests per program in the multi-test and throughput runs")
    args = ap.parse_args(argv)

    info = sandbox.isolation()
    ours(1), bare(1)  # warm caches
    b1, o1, bn, on = [], [], [], []
    for _ in range(args.rounds):
        b1.append(bare(1))
        o1.append(ours(1))
        bn.append(bare(args.tests) / args.tests)
        on.append(ours(args.tests) / args.tests)
    med = statistics.median
    ratio = med(o1) / med(b1)

    thr = {}
    for w in (1, 2, 1, 2):  # interleaved, best of two each
        thr[w] = max(thr.get(w, 0.0), throughput(w, args.programs, args.tests))

    print(json.dumps({
        "benchmark": "sandbox",
        "ratio": round(ratio, 3),
        "goal": "<= 1.5",
        "per_test_ms": {"bare_1_test": round(1000 * med(b1), 2), "sandbox_1_test": round(1000 * med(o1), 2),
                        f"bare_{args.tests}_tests": round(1000 * med(bn), 2),
                        f"sandbox_{args.tests}_tests": round(1000 * med(on), 2)},
        "ratio_multi_test": round(med(on) / med(bn), 3),
        "throughput_programs_per_s": {"1_worker": round(thr[1], 2), "2_workers": round(thr[2], 2)},
        "throughput_ratio_2_vs_1": round(thr[2] / thr[1], 3),
        "cores": sandbox.default_workers(),
        "isolation": info,
        "rounds": args.rounds,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
