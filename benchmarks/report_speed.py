"""How long `r1 report` takes on a full-size run: 64 samples x 30 problems x 3 tasks (the AIME-sized protocol).

Goal: under 10 s for the command as a user runs it (`r1 report RUN --out R` in a fresh process: interpreter start,
imports, loading, plots, writing); the in-process write_report time is printed beside it. The run dir is synthetic (tests/test_reports.make_run: records with the contract's fields,
results.json from the runner's aggregate_task) with completions of realistic size, so JSON loading is part of the cost.
Prints one JSON line: {"benchmark": "report_speed", "ratio": seconds / 10, "goal": "<= 1.0", ...}.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from reports.report import write_report  # noqa: E402
from test_reports import make_run  # noqa: E402

BUDGET_S = 10.0
SHAPE = {"aime2024": (30, 64), "math500": (30, 64), "gpqa_diamond": (30, 64)}
COMPLETION_CHARS = 6000  # ~1.5k tokens of text per sample: 35 MB of samples.jsonl in all


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = make_run(Path(tmp) / "run", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", SHAPE, seed=3,
                       max_tokens=32768, completion_chars=COMPLETION_CHARS)
        build_s = time.perf_counter() - t0
        size_mb = (run / "samples.jsonl").stat().st_size / 1e6
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run), "--out", str(Path(tmp) / "cli")],
                       cwd=REPO, check=True, capture_output=True)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        paths = write_report([run], Path(tmp) / "report")
        in_process = time.perf_counter() - t0
        n_plots = sum(1 for k in paths if k.startswith("plot:"))
    print(json.dumps({"benchmark": "report_speed", "ratio": round(seconds / BUDGET_S, 4), "goal": "<= 1.0",
                      "seconds": round(seconds, 3), "write_report_s": round(in_process, 3), "budget_s": BUDGET_S,
                      "samples": 64 * 30 * 3,
                      "samples_mb": round(size_mb, 1), "plots": n_plots, "fixture_build_s": round(build_s, 2)}))


if __name__ == "__main__":
    main()
