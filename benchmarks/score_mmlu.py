"""Scoring all 14,042 MMLU responses (goal: under 10 s on this machine; ratio = seconds / 10).

The responses are generated here, not by a model: R1-shaped completions (a few KB of reasoning in a think block,
then a short final answer) in the answer formats the verifier handles, plus cut-off thinking and answerless ones,
seeded so every run scores the same text. The timed part is what `r1 import` + `r1 score` do with them: read the
generic jsonl, write a run dir, score every sample with the task's verifier, aggregate (bootstrap CI, breakdowns,
micro/macro accuracy) and write results.json. ``score_seconds`` is the verifier alone (Task.score_many).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL_SECONDS = 10.0
_WORDS = ("the", "option", "energy", "because", "so", "therefore", "consider", "wait", "check", "value", "is",
          "not", "which", "means", "first", "then", "compare", "with", "answer", "reaction", "law", "court")


def reasoning(rng: random.Random, n_words: int) -> str:
    lines, line = [], []
    for _ in range(n_words):
        line.append(rng.choice(_WORDS))
        if len(line) >= 14:
            lines.append(" ".join(line) + ".")
            line = []
    return "\n".join(lines)


def response(rng: random.Random, gold: str) -> tuple[str, str]:
    """(completion, finish_reason) in one of the shapes the verifier meets."""
    letter = gold if rng.random() < 0.7 else rng.choice("ABCD")
    think = "<think>\n" + reasoning(rng, rng.randint(200, 900))
    shape = rng.random()
    if shape < 0.04:
        return think, "length"  # ran out of tokens while thinking
    final = reasoning(rng, rng.randint(10, 60))
    if shape < 0.70:
        tail = f"\n\nAnswer: {letter}"
    elif shape < 0.80:
        tail = f"\n\n**Answer:** {letter}"
    elif shape < 0.88:
        tail = f"\n\nThe final answer is $\\boxed{{{letter}}}$."
    elif shape < 0.92:
        tail = f"\n\nSo the answer is ({letter})."
    elif shape < 0.94:
        tail = f"\n<answer>{letter}</answer>"
    elif shape < 0.97:
        tail = f"\n\n**{letter}**"
    else:
        tail = "\n\nI cannot decide."
    return f"{think}\n</think>\n\n{final}{tail}", "stop"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("R1_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging_quiet()

    from harness.importing import import_run
    from harness.task import ScoreItem, get_task

    task = get_task("mmlu")
    problems = task.problems(args.data_dir)
    rng = random.Random(args.seed)
    lines, items = [], []
    for p in problems:
        comp, fr = response(rng, p.gold)
        lines.append(json.dumps({"problem_id": p.id, "completions": [comp], "finish_reasons": [fr]}))
        items.append(ScoreItem(p, comp, fr, {}))

    t0 = time.perf_counter()
    verdicts = task.score_many(items)
    score_seconds = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "responses.jsonl"
        src.write_text("\n".join(lines) + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        results = import_run("jsonl", "mmlu", src, Path(tmp) / "run", "synthetic", data_dir=args.data_dir)
        seconds = time.perf_counter() - t0
    res = results["tasks"]["mmlu"]
    n_correct = sum(v.correct for v in verdicts)
    if res["n_samples"] != len(problems) or abs(res["pass@1"] - n_correct / len(problems)) > 1e-12:
        raise SystemExit(f"score_mmlu: the run's pass@1 {res['pass@1']} disagrees with the verifier's "
                         f"{n_correct}/{len(problems)}")
    print(json.dumps({"benchmark": "score_mmlu", "ratio": round(seconds / GOAL_SECONDS, 4), "goal": "<= 1.0",
                      "seconds": round(seconds, 3), "score_seconds": round(score_seconds, 3),
                      "n_responses": len(problems), "response_mb": round(sum(map(len, lines)) / 1e6, 1),
                      "pass@1": res["pass@1"], "extraction": res.get("extraction")}))


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)


if __name__ == "__main__":
    main()
