"""GRPO really learning on CPU: the cpu_demo recipe (embedded SmolLM2-135M, `arith`; a tiny cold start, then GRPO
with the R1 format reward + the math verifier's accuracy), the reward trajectory of the GRPO steps, and pass@1 on
held-out prompts (arith-0..N-1; GRPO trains on arith-100..) for the base model, the cold-start checkpoint and the
GRPO checkpoint.

    python benchmarks/grpo_demo.py [--steps 30] [--sft-steps 4] [--seed 0] [--eval-limit 50] [--out DIR]

A zero-weight probe reward (``__main__:length_probe``, always 0.0, so the summed reward and the advantages are
unchanged) records every completion's length, whether it ended in EOS and its accuracy verdict: it answers "how can
completions TRL reports as clipped (clipped_ratio 1.0) earn accuracy reward?" with counts, in the JSON line.

Prints the per-step rewards, then one JSON line: ratio = mean reward over the last 20% of GRPO steps / mean reward
over the first 20% (higher is better; goal >= 1.2), plus the held-out pass@1 (with 95% bootstrap CIs) and the probe.
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

_PROBE: list[dict] = []
_PROBE_SETTINGS: dict = {}


def length_probe(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """Record (length, EOS, accuracy verdict, where the answer is) per completion; reward 0.0 (no training effect)."""
    from harness.verifiers.base import THINK_CLOSE
    from training.rewards import accuracy_verdicts, completion_text, finish_reasons

    texts = [completion_text(c) for c in completions]
    limit, eos = _PROBE_SETTINGS.get("max_completion_length"), _PROBE_SETTINGS.get("eos_ids")
    reasons = finish_reasons(len(texts), completion_ids, limit, eos)
    verdicts = accuracy_verdicts(texts, kwargs, reasons)
    for i, (t, r, v) in enumerate(zip(texts, reasons, verdicts)):
        ids = list(completion_ids[i]) if completion_ids is not None else []
        _PROBE.append({"tokens": len(ids), "eos": bool(ids) and ids[-1] in (eos or set()), "finish": r,
                       "verdict": v.status, "closed_think": THINK_CLOSE in t,
                       "boxed_after_think": "\\boxed" in t.split(THINK_CLOSE, 1)[-1] if THINK_CLOSE in t else False})
    return [0.0] * len(texts)


def probe_summary(rows: list[dict]) -> dict:
    n = len(rows)
    if not n:
        return {}
    cut = [r for r in rows if r["finish"] == "length"]
    correct = [r for r in rows if r["verdict"] == "correct"]
    return {"completions": n, "no_eos_at_limit": len(cut), "correct": len(correct),
            "correct_and_cut": sum(r["finish"] == "length" for r in correct),
            "correct_with_answer_after_closed_think": sum(r["closed_think"] and r["boxed_after_think"] for r in correct),
            "correct_with_unclosed_think": sum(not r["closed_think"] for r in correct),
            "closed_think": sum(r["closed_think"] for r in rows)}


def held_out(run: Path) -> dict | None:
    p = run / "results.json"
    if not p.is_file():
        return None
    t = json.loads(p.read_text())["tasks"]["arith"]
    return {"pass@1": t["pass@1"], "ci": t.get("pass@1_ci"), "n": t.get("n_problems")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--sft-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="seed of both stages (recipe: 0)")
    ap.add_argument("--eval-limit", type=int, default=50, help="held-out problems arith-0..N-1 (0: no evaluation)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from training import pipeline
    from training.config import load_recipe
    from training.grpo import evaluate_model, load_tokenizer, model_dir

    out = args.out or tempfile.mkdtemp(prefix="grpo_demo_")
    recipe = load_recipe("cpu_demo")
    rewards = list(recipe.grpo.rewards) + ["__main__:length_probe"]
    overrides = {"out": out, "grpo.max_steps": args.steps, "sft.max_steps": args.sft_steps, "grpo.seed": args.seed,
                 "sft.seed": args.seed, "grpo.rewards": rewards,
                 # the held-out evaluation under the training budget: same prompt, same 48 tokens
                 "eval.enabled": args.eval_limit > 0, "eval.limit": args.eval_limit or None,
                 "eval.max_tokens": recipe.grpo.max_completion_length, "eval.n": 1}
    tok = load_tokenizer(model_dir(recipe.model))
    _PROBE_SETTINGS.update(max_completion_length=recipe.grpo.max_completion_length,
                           eos_ids={i for i in (tok.eos_token_id, tok.pad_token_id) if i is not None})
    t0 = time.perf_counter()
    res = pipeline.main("cpu_demo", overrides)
    seconds = time.perf_counter() - t0
    grpo = next(v for k, v in res["stages"].items() if k.endswith("_grpo"))
    cold = next((v for k, v in res["stages"].items() if k.endswith("_cold_start")), None)
    evals = {}
    if args.eval_limit > 0:
        evals["base"] = held_out(Path(out) / "eval_before")
        if cold is not None:  # what GRPO itself moved: its start (the cold-start checkpoint) against its result
            evaluate_model(cold["checkpoint"], load_recipe("cpu_demo", overrides).eval, Path(out) / "eval_cold_start",
                           "cpu")
            evals["cold_start"] = held_out(Path(out) / "eval_cold_start")
        evals["grpo"] = held_out(Path(out) / "eval_after")
    hist = grpo["rewards"]
    for h in hist:
        parts = " ".join(f"{k}={h[k]:.3f}" for k in h if k not in ("step", "loss", "kl", "length_probe")
                         and h[k] is not None)
        print(f"step {h['step']:3d}  {parts}")
    rewards_total = [h["reward"] for h in hist]
    k = max(1, round(0.2 * len(rewards_total)))
    first, last = sum(rewards_total[:k]) / k, sum(rewards_total[-k:]) / k
    ratio = last / first if first > 0 else (float("inf") if last > 0 else 1.0)
    acc = [h.get("accuracy") for h in hist]
    fmt = [h.get("format_think") for h in hist]
    print(json.dumps({"benchmark": "grpo_demo", "ratio": round(ratio, 3), "goal": ">= 1.2", "steps": len(hist),
                      "seconds": round(seconds, 1), "grpo_seconds": grpo["seconds"],
                      "seconds_per_step": round(grpo["seconds"] / max(1, len(hist)), 2),
                      "reward_first_20pct": round(first, 4), "reward_last_20pct": round(last, 4),
                      "accuracy_reward_per_step": [round(a, 4) if a is not None else None for a in acc],
                      "format_reward_per_step": [round(f, 4) if f is not None else None for f in fmt],
                      "held_out_pass@1": evals, "probe": probe_summary(_PROBE), "out": out}))


if __name__ == "__main__":
    main()
