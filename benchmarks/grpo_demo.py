"""GRPO really learning on CPU: the cpu_demo recipe (embedded SmolLM2-135M, `arith`; a tiny cold start, then GRPO
with the R1 format reward + the math verifier's accuracy), and the reward trajectory of the GRPO steps.

    python benchmarks/grpo_demo.py [--steps 30] [--sft-steps 4] [--seed 0] [--out DIR]

Prints the per-step rewards, then one JSON line: ratio = mean reward over the last 20% of GRPO steps / mean reward
over the first 20% (higher is better; goal >= 1.2).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--sft-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="seed of both stages (recipe: 0)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from training import pipeline

    out = args.out or tempfile.mkdtemp(prefix="grpo_demo_")
    overrides = {"out": out, "grpo.max_steps": args.steps, "sft.max_steps": args.sft_steps, "grpo.seed": args.seed,
                 "sft.seed": args.seed}
    t0 = time.perf_counter()
    res = pipeline.main("cpu_demo", overrides)
    seconds = time.perf_counter() - t0
    grpo = next(v for k, v in res["stages"].items() if k.endswith("_grpo"))
    hist = grpo["rewards"]
    for h in hist:
        parts = " ".join(f"{k}={h[k]:.3f}" for k in h if k not in ("step", "loss", "kl") and h[k] is not None)
        print(f"step {h['step']:3d}  {parts}")
    rewards = [h["reward"] for h in hist]
    k = max(1, round(0.2 * len(rewards)))
    first, last = sum(rewards[:k]) / k, sum(rewards[-k:]) / k
    ratio = last / first if first > 0 else (float("inf") if last > 0 else 1.0)
    print(json.dumps({"benchmark": "grpo_demo", "ratio": round(ratio, 3), "goal": ">= 1.2", "steps": len(rewards),
                      "seconds": round(seconds, 1), "grpo_seconds": grpo["seconds"],
                      "seconds_per_step": round(grpo["seconds"] / max(1, len(rewards)), 2),
                      "reward_first_20pct": round(first, 4), "reward_last_20pct": round(last, 4),
                      "out": out}))


if __name__ == "__main__":
    main()
