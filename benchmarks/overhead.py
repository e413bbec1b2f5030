"""End-to-end `r1 eval` time vs the bare backend generating the same requests (goal: ratio <= 1.03).

Both sides run as fresh processes that load the model, so the ratio measures what the harness adds: task loading,
prompt building, persisting (flush + fsync), scoring on a thread, aggregation and results. Runs alternate and the
minimum of each side is taken, since this machine is noisy.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def bare(task: str, limit: int, n: int, max_tokens: int) -> None:
    """Build exactly the requests `r1 eval` builds, and only generate them."""
    from harness.backends.base import GenRequest, make_backend
    from harness.config import GenerationConfig, THINK_PREFIX
    from harness.task import get_task, sample_seed

    gen = GenerationConfig(max_tokens=max_tokens)
    t = get_task(task)
    reqs = []
    for p in t.problems(None, limit):
        for i in range(n):
            seed = sample_seed(0, t.name, p.id, i)
            reqs.append(GenRequest(messages=t.prompt(p, seed).messages, max_tokens=gen.max_tokens,
                                   temperature=gen.temperature, top_p=gen.top_p, seed=seed, assistant_prefix=THINK_PREFIX,
                                   key=(t.name, p.id, i)))
    with make_backend("llamacpp", "embedded") as b:
        comps = b.generate(reqs)
    print(json.dumps({"tokens": sum(c.completion_tokens for c in comps)}))


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return time.perf_counter() - t0, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--task", default="arith")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("-n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    if a.bare:
        bare(a.task, a.limit, a.n, a.max_tokens)
        return
    common = ["--limit", str(a.limit), "-n", str(a.n), "--max-tokens", str(a.max_tokens)]
    bare_cmd = [sys.executable, __file__, "--bare", "--task", a.task, *common]
    ours_t, bare_t = [], []
    with tempfile.TemporaryDirectory() as d:
        for r in range(a.repeats):
            t, _ = timed(bare_cmd)
            bare_t.append(t)
            t, _ = timed([sys.executable, "-m", "harness.cli", "eval", "--task", a.task, *common, "--no-progress",
                          "--out", str(Path(d) / f"run{r}")])
            ours_t.append(t)
            print(f"repeat {r}: bare {bare_t[-1]:.2f}s  r1 eval {ours_t[-1]:.2f}s", file=sys.stderr)
    ratio = min(ours_t) / min(bare_t)
    print(json.dumps({"benchmark": "eval_overhead", "ratio": round(ratio, 4), "goal": "<= 1.03",
                      "r1_eval_s": [round(x, 2) for x in ours_t], "bare_backend_s": [round(x, 2) for x in bare_t],
                      "samples": a.limit * a.n, "max_tokens": a.max_tokens, "task": a.task}))


if __name__ == "__main__":
    main()
