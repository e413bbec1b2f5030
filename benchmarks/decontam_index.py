"""Decontamination index: building the 8-gram index of every benchmark (the reference) against loading it from the
disk cache keyed by the data hashes (what every training run after the first does), and the check of training rows.

    python benchmarks/decontam_index.py [--rows 20000] [--data-dir ../shared/data]

Prints one JSON line: ratio = cached load seconds / build seconds (goal <= 0.5), with the per-row check rate.
Both paths read the benchmark problems (the cache key hashes them); only the n-gram build differs.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000, help="synthetic training rows to check")
    ap.add_argument("--data-dir", default=os.environ.get("R1_DATA_DIR") or str(Path(__file__).resolve().parents[2]
                                                                              / "shared" / "data"))
    a = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="r1-decontam-bench-")
    os.environ["R1_CACHE_DIR"] = cache  # a cold cache, then a warm one
    try:
        run(a)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def run(a) -> None:
    from training import decontam as dc

    dc._task_problems(None, a.data_dir)  # read the benchmarks once: both timings below start from loaded problems
    t0 = time.perf_counter()
    built = dc.benchmark_index(data_dir=a.data_dir)
    build_s = time.perf_counter() - t0
    dc._MEMO.clear()
    t0 = time.perf_counter()
    cached = dc.benchmark_index(data_dir=a.data_dir)
    load_s = time.perf_counter() - t0
    assert cached.cached and cached.key == built.key and len(cached.ngrams) == len(built.ngrams)

    rng = random.Random(0)
    vocab = "the of a number sum find let integer prime triangle area value positive real how many".split()
    rows = [{"id": str(i), "problem": " ".join(rng.choice(vocab) for _ in range(40))} for i in range(a.rows)]
    t0 = time.perf_counter()
    _, rep = dc.decontaminate(rows, index=cached)
    check_s = time.perf_counter() - t0
    print(json.dumps({"benchmark": "decontam_index", "ratio": round(load_s / build_s, 3), "goal": "<= 0.5",
                      "build_s": round(build_s, 2), "cached_load_s": round(load_s, 2),
                      "benchmarks": len(built.tasks), "ngrams": len(built.ngrams),
                      "rows_checked": a.rows, "rows_per_s": round(a.rows / check_s), "dropped": rep["dropped"]}))


if __name__ == "__main__":
    main()
