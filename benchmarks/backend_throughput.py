"""Total tokens/s of the llamacpp backend: one sequence at a time in one process (the reference, all cores) against
worker processes, llama.cpp parallel slots, and both (the default), on the embedded model.

    python benchmarks/backend_throughput.py [--requests 16] [--max-tokens 128] [--all]

Prints one JSON line: ratio = default configuration's tokens/s / reference tokens/s (goal >= 1.5).
``--all`` also measures processes-only and slots-only (what the default was chosen from).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.backends.base import GenRequest, make_backend  # noqa: E402
from harness.models import usable_cpus  # noqa: E402


def requests(n: int, max_tokens: int) -> list[GenRequest]:
    return [
        GenRequest(
            messages=({"role": "user", "content": f"Write a short story about robot number {i}."},),
            max_tokens=max_tokens, temperature=0.6, top_p=0.95, seed=1000 + i,
        )
        for i in range(n)
    ]


def measure(options: dict, reqs: list[GenRequest]) -> dict:
    with make_backend("llamacpp", "embedded", **options) as backend:
        backend.generate(reqs[:1])  # start the workers and load the model outside the timed part
        t = time.perf_counter()
        out = backend.generate(reqs)
        dt = time.perf_counter() - t
    tokens = sum(c.completion_tokens for c in out)
    return {"options": options, "tokens": tokens, "seconds": round(dt, 3), "tok_s": round(tokens / dt, 1),
            "texts": [c.text for c in out]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--all", action="store_true", help="also measure processes-only and slots-only")
    args = ap.parse_args(argv)
    cpus = usable_cpus()
    reqs = requests(args.requests, args.max_tokens)
    configs = {"reference_single": {"workers": 1, "threads": cpus, "batch_size": 1}}
    if args.all:
        configs["processes"] = {"workers": cpus, "threads": 1, "batch_size": 1}
        configs["slots"] = {"workers": 1, "threads": cpus, "batch_size": args.requests}
    configs["default"] = {}
    results = {name: measure(opts, reqs) for name, opts in configs.items()}
    ref, ours = results["reference_single"], results["default"]
    # Same seeds, same prompts: every configuration must produce the same texts (batch-invariant decoding).
    same = all(r["texts"] == ref["texts"] for r in results.values())
    line = {
        "benchmark": "llamacpp_parallel",
        "ratio": round(ours["tok_s"] / ref["tok_s"], 3),
        "goal": ">= 1.5",
        "cpus": cpus,
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other load on the box skews every number here
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "same_texts_across_configs": same,
        **{f"{name}_tok_s": r["tok_s"] for name, r in results.items()},
        "configs": {name: r["options"] for name, r in results.items()},
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
