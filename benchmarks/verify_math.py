"""The math verifier against plain math-verify: accuracy on the 268 labeled cases, throughput on >= 10,000 pairs.

1. Accuracy. ``shared/data/math_equivalence/math_verify_cases.jsonl`` holds Math-Verify's own regression cases with
   their labels (see its SOURCE.md). Each case is judged by both sides under the case's semantics: math-verify as its
   test helper does (``parse`` both strings with the case's match types, ``verify`` with the case's precision /
   strict / allow_set_relation_comp), ours as ``verify(gold, pred, ...)`` with the same options.
2. Throughput. (gold, completion) pairs built from MATH-500: the dataset's worked solution as the ``<think>`` block
   (it contains its own ``\\boxed{}``, a trap for extractors that ignore thinking), then a final part with the gold
   answer in several formats, or a perturbed / foreign wrong answer, a plain "So the answer is $X$." sentence, or a
   completion cut off while thinking (finish_reason "length"). Plain math-verify = ``parse(gold)``, ``parse(completion)``, ``verify``
   per pair, library defaults, one process. Ours = ``verify_many`` over all pairs in one call (as ``r1 score`` and
   ``r1 import`` do), on fresh workers started before the clock; also without result memoisation
   (``ratio_no_memo``: memoisation is the default, many samples share an answer) and in batches of 32 (the runner's
   scoring thread, ``ratio_batches_of_32``). ``ratio`` = math-verify's time / ours for the same pairs.
   Ours uses every core for the checks sympy must settle, math-verify one: when other work occupies a core the ratio
   drops with it (on this 2-core box: ~6x idle, ~3x with one core busy), so the JSON line records the load average.
   ``agreement_with_math_verify_on_final_text`` compares against math-verify given only the text after ``</think>``,
   which isolates equivalence differences from reading the reasoning.

Ends with one JSON line: {"benchmark": "verify_math", "ratio": ours/math-verify throughput, "goal": ">= 5", ...}.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def data_dir() -> Path:
    d = os.environ.get("R1_DATA_DIR")
    return Path(d) if d else REPO.parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------------------------
# 1. The 268 labeled cases
# ---------------------------------------------------------------------------------------------------------------
def load_cases() -> list[dict]:
    path = data_dir() / "math_equivalence" / "math_verify_cases.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def case_options(case: dict) -> dict:
    """The case's semantics as keyword options (SOURCE.md: compare_strings vs verify helper)."""
    kw = case.get("harness_kwargs") or {}
    if case["harness_helper"] == "verify":
        return {"match": ("latex", "expr"), "precision": 6, "strict": True, "allow_set_relation_comp": False}
    return {"match": tuple(kw.get("match_types", ("latex", "expr"))), "precision": int(kw.get("precision", 6)),
            "strict": bool(kw.get("strict", True)), "allow_set_relation_comp": bool(kw.get("allow_set_relation_comp", False))}


def math_verify_case(case: dict) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    if case["harness_helper"] == "verify":
        return bool(verify(parse(case["gold"]), parse(case["pred"])))
    o = case_options(case)
    cfg = [LatexExtractionConfig(boxed_match_priority=0) if m == "latex" else ExprExtractionConfig() for m in o["match"]]
    return bool(verify(parse(case["gold"], cfg), parse(case["pred"], cfg), float_rounding=o["precision"],
                       strict=o["strict"], allow_set_relation_comp=o["allow_set_relation_comp"]))


def ours_case(case: dict) -> bool:
    from harness.verifiers.math import verify

    return verify(case["gold"], case["pred"], **case_options(case)).correct


def accuracy() -> dict:
    cases = load_cases()
    ref_ok = ours_ok = 0
    disagreements = []
    for c in cases:
        exp = bool(c["expected"])
        r, o = math_verify_case(c), ours_case(c)
        ref_ok += r == exp
        ours_ok += o == exp
        if o != exp:
            disagreements.append(f"{c['source_file']}::{c['test_function']}[{c['case_index']}] expected {int(exp)}")
    return {"n_cases": len(cases), "accuracy_ours": ours_ok / len(cases), "accuracy_math_verify": ref_ok / len(cases),
            "ours_wrong": disagreements}


# ---------------------------------------------------------------------------------------------------------------
# 2. Throughput pairs from MATH-500
# ---------------------------------------------------------------------------------------------------------------
_SIMPLE_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")


def _decimal(ans: str) -> str | None:
    m = _SIMPLE_FRAC.match(ans)
    if not m:
        return None
    num, den = int(m.group(2)), int(m.group(3))
    d = den
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None  # not a terminating decimal
    return m.group(1) + repr(num / den)


def correct_form(gold: str, j: int) -> str:
    """The j-th way of writing the gold answer in a final summary."""
    dec = _decimal(gold)
    forms = [
        f"The answer is $\\boxed{{{gold}}}$.",
        f"Therefore, the final answer is \\boxed{{{gold}}}",
        f"Final Answer: The final answer is ${gold}$. I hope it is correct.",
        f"So we get \\boxed{{{gold.replace(chr(92) + 'frac', chr(92) + 'dfrac').replace(' ', '')}}}.",
        f"Hence \\boxed{{{dec}}}." if dec else f"Hence \\[\\boxed{{ {gold} }}\\]",
        f"<answer>{gold}</answer>",
        f"**Final Answer**\n\\[\n\\boxed{{{gold}}}\n\\]",
        f"The result is \\boxed{{{gold}\\text{{ units}}}}." if re.fullmatch(r"-?\d+", gold) else f"\\boxed{{{gold}}}",
    ]
    return forms[j % len(forms)]


def perturb(gold: str, rng: random.Random, others: list[str]) -> str:
    ints = list(re.finditer(r"\d+", gold))
    if ints and rng.random() < 0.75:
        m = rng.choice(ints)
        new = str(int(m.group()) + rng.choice((1, 2, 3, 9)))
        return gold[:m.start()] + new + gold[m.end():]
    for _ in range(10):
        o = rng.choice(others)
        if o != gold:
            return o
    return gold + "+1"


def build_pairs(n_target: int, seed: int = 0) -> list[tuple[str, str, str, bool]]:
    """(gold, completion, finish_reason, expected_correct) tuples, 20 per MATH-500 problem (10,000 in all)."""
    rows = [json.loads(line) for line in (data_dir() / "math500" / "test.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    rng = random.Random(seed)
    answers = [r["answer"] for r in rows]
    # Whole cycles of the 20 kinds below for every problem; a smaller target is an even sample of them.
    per = 20 * max(1, -(-n_target // (20 * len(rows))))
    pairs = []
    for r in rows:
        gold, think = r["answer"], r["solution"]
        for j in range(per):
            kind = j % 10
            if kind in (0, 1, 2, 3):
                final, fr, exp = correct_form(gold, j), "stop", True
            elif kind in (4, 5, 6, 7):
                wrong = perturb(gold, rng, answers)
                final, fr, exp = correct_form(wrong, j), "stop", False
            elif kind == 8 and j % 20 == 8:
                cut = rng.randint(len(think) // 2, len(think))
                pairs.append((gold, "<think>\n" + think[:cut], "length", False))
                continue
            else:
                plain = gold if j % 20 == 9 else perturb(gold, rng, answers)
                final, fr, exp = f"So the answer is ${plain}$.", "stop", plain == gold
            pairs.append((gold, f"<think>\n{think}\n</think>\n\n{final}", fr, exp))
    if n_target < len(pairs):
        keep = sorted(random.Random(seed + 1).sample(range(len(pairs)), n_target))
        pairs = [pairs[i] for i in keep]
    return pairs


def run_math_verify(pairs) -> tuple[float, list[bool]]:
    from math_verify import parse, verify

    verify(parse("$1$"), parse("$1$"))  # imports and grammar loading outside the timed region
    out = []
    t0 = time.perf_counter()
    for gold, comp, _fr, _exp in pairs:
        out.append(bool(verify(parse("$" + gold + "$"), parse(comp))))
    return time.perf_counter() - t0, out


def math_verify_on_final_text(pairs) -> list[bool]:
    """math-verify given only what follows </think> (nothing for an unclosed think): separates equivalence
    differences from the reasoning-awareness differences."""
    from math_verify import parse, verify

    from harness.verifiers.base import split_think

    out = []
    for gold, comp, _fr, _exp in pairs:
        final = split_think(comp)[1]
        out.append(bool(final) and bool(verify(parse("$" + gold + "$"), parse(final))))
    return out


def run_ours(pairs, memo: bool, batch: int | None) -> tuple[float, list]:
    """``batch=None``: one call over everything, as ``r1 score`` / ``r1 import`` do; else the runner's batches."""
    from harness.verifiers import _pool, math as mv

    _pool.close_all()  # fresh workers: no gold parsed by an earlier run
    mv.set_memo(memo)
    mv._canon.cache_clear()
    mv.verify("1", "\\boxed{1+0}")  # workers up before the clock starts, as in a running eval
    size = batch or len(pairs)
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(pairs), size):
        chunk = pairs[i:i + size]
        out.extend(mv.verify_many([p[0] for p in chunk], [p[1] for p in chunk], [p[2] for p in chunk]))
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=10_000, help="throughput pairs (default 10,000)")
    ap.add_argument("--skip-accuracy", action="store_true")
    a = ap.parse_args()
    logging.disable(logging.WARNING)  # math-verify warns on every timeout it handles itself

    from harness.verifiers import math as mv

    mv.verify("1", "\\boxed{1+0}")  # start the worker pool outside the timed region, as in a running eval
    result: dict = {"benchmark": "verify_math"}
    if not a.skip_accuracy:
        acc = accuracy()
        print(f"accuracy on {acc['n_cases']} labeled cases: ours {acc['accuracy_ours']:.4f}  "
              f"math-verify {acc['accuracy_math_verify']:.4f}")
        for w in acc["ours_wrong"]:
            print("  ours wrong:", w)
        result.update(acc)

    pairs = build_pairs(a.pairs)
    print(f"throughput on {len(pairs)} (gold, completion) pairs from MATH-500 ...", flush=True)
    t_ours, v_ours = run_ours(pairs, memo=True, batch=None)
    t_cold, v_cold = run_ours(pairs, memo=False, batch=None)
    t_b32, _ = run_ours(pairs, memo=True, batch=32)
    mv.set_memo(True)
    t_ref, v_ref = run_math_verify(pairs)
    v_ref_final = math_verify_on_final_text(pairs)
    n = len(pairs)
    exp = [p[3] for p in pairs]
    ours_correct = [v.correct for v in v_ours]
    paths: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for v in v_ours:
        k = v.detail.get("path", v.status)
        paths[k] = paths.get(k, 0) + 1
        statuses[v.status] = statuses.get(v.status, 0) + 1
    result.update({
        "n_pairs": n,
        "pairs_per_s_ours": n / t_ours,
        "pairs_per_s_math_verify": n / t_ref,
        "ratio": t_ref / t_ours,
        "goal": ">= 5",
        "ratio_no_memo": t_ref / t_cold,
        "ratio_batches_of_32": t_ref / t_b32,
        "agreement_with_math_verify": sum(x == y for x, y in zip(ours_correct, v_ref)) / n,
        "agreement_with_math_verify_on_final_text": sum(x == y for x, y in zip(ours_correct, v_ref_final)) / n,
        "label_accuracy_ours": sum(x == y for x, y in zip(ours_correct, exp)) / n,
        "label_accuracy_math_verify": sum(x == y for x, y in zip(v_ref, exp)) / n,
        "memo_vs_no_memo_agreement": sum(x.status == y.status for x, y in zip(v_ours, v_cold)) / n,
        "ours_paths": paths,
        "ours_verdicts": statuses,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_1min": os.getloadavg()[0],
    })
    print(f"ours {n / t_ours:.0f} pairs/s (no memo {n / t_cold:.0f}, batches of 32 {n / t_b32:.0f}), "
          f"math-verify {n / t_ref:.0f} pairs/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
