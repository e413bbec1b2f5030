"""Small local training-data files in the real public formats (column names and nesting from the dataset cards),
each with one row copied from a benchmark so decontamination has something to drop. Used by test_training_data.py
and test_pipeline.py; never committed data (written to tmp dirs), and never GPQA text (see test_decontam.py)."""
from __future__ import annotations

import json
from pathlib import Path

DAPO_HEAD = ("Solve the following math problem step by step. The last line of your response should be of the form "
             "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n")
DAPO_TAIL = "\n\nRemember to put your answer on its own line after \"Answer:\"."

CLEAN = [
    ("A farmer has 17 sheep and buys 25 more at the market on Tuesday; how many sheep does he own now?", "42"),
    ("Find the sum of all positive divisors of the number 28 and report that sum as an integer value.", "56"),
    ("A rectangle has a perimeter of 30 units and its length is twice its width; what is its area?", "50"),
]


def benchmark_question(task: str, index: int = 0) -> tuple[str, str]:
    """(problem id, question) of a benchmark problem from the real data mirror."""
    from harness.task import get_task

    p = get_task(task).problems()[index]
    return p.id, p.question


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _trace(problem: str, answer: str) -> str:
    return f"<think>\nLet me work it out carefully for {problem[:20]}.\n</think>\n\nThe answer is $\\boxed{{{answer}}}$."


def write_math_train(d: Path) -> Path:
    rows = [{"problem": q, "level": "Level 2", "type": "Algebra",
             "solution": f"Work it out step by step. The answer is $\\boxed{{{a}}}$."} for q, a in CLEAN]
    _, q = benchmark_question("math500", 0)
    rows.append({"problem": q, "level": "Level 5", "type": "Precalculus", "solution": "So it is $\\boxed{x}$."})
    rows.append({"problem": "A problem whose worked solution never boxes its final answer at all.", "level": "Level 1",
                 "type": "Algebra", "solution": "It is five."})  # skipped: no \boxed{}
    return _jsonl(d / "math_train.jsonl", rows)


def write_gsm8k(d: Path) -> Path:
    rows = [{"question": q, "answer": f"Reason about it.\n<<2+2=4>>\n#### {int(a):,}"} for q, a in CLEAN]
    rows.append({"question": "Janet pays 1,250 dollars a month in rent; how much does she pay in a year?",
                 "answer": "12 * 1250 = 15000\n#### 15,000"})
    return _parquet(d / "gsm8k-train.parquet", rows)


def write_numina_cot(d: Path) -> Path:
    rows = []
    for q, a in CLEAN:
        sol = f"We compute it directly.\n\nThus the answer is $\\boxed{{{a}}}$."
        rows.append({"source": "synthetic_math", "problem": q, "solution": sol,
                     "messages": [{"content": q, "role": "user"}, {"content": sol, "role": "assistant"}]})
    _, q = benchmark_question("aime2024", 1)
    sol = "Answer: $\\boxed{1}$"
    rows.append({"source": "amc_aime", "problem": q, "solution": sol,
                 "messages": [{"content": q, "role": "user"}, {"content": sol, "role": "assistant"}]})
    return _parquet(d / "numina-cot.parquet", rows)


def write_dapo(d: Path) -> Path:
    rows = [{"data_source": "math_dapo", "prompt": [{"content": DAPO_HEAD + q + DAPO_TAIL, "role": "user"}],
             "ability": "MATH", "reward_model": {"ground_truth": a, "style": "rule-lighteval/MATH_v2"},
             "extra_info": {"index": f"dapo-{i}"}} for i, (q, a) in enumerate(CLEAN)]
    _, q = benchmark_question("aime2025", 2)
    rows.append({"data_source": "math_dapo", "prompt": [{"content": DAPO_HEAD + q + DAPO_TAIL, "role": "user"}],
                 "ability": "MATH", "reward_model": {"ground_truth": "1", "style": "rule-lighteval/MATH_v2"},
                 "extra_info": {"index": "dapo-aime"}})
    return _parquet(d / "dapo-math-17k.parquet", rows)


def write_openr1_math(d: Path) -> Path:
    rows = []
    for i, (q, a) in enumerate(CLEAN):
        gens = [f"<think>\nwrong path\n</think>\n\\boxed{{{int(a) + 1}}}", _trace(q, a)]
        rows.append({"problem": q, "solution": f"\\boxed{{{a}}}", "answer": a, "problem_type": "Algebra",
                     "question_type": "math-word-problem", "source": "olympiads", "uuid": f"uuid-{i}",
                     "is_reasoning_complete": [True, True], "generations": gens,
                     "correctness_math_verify": [False, True], "correctness_llama": None,
                     "finish_reasons": None, "correctness_count": 1,
                     "messages": [{"content": q, "role": "user"}, {"content": gens[1], "role": "assistant"}]})
    # no generation verified: skipped as a trace, kept as a prompt
    rows.append({**rows[0], "uuid": "uuid-none", "problem": "How many primes are there strictly between 10 and 20 "
                 "on the integer number line?", "answer": "4", "correctness_math_verify": [False, False]})
    _, q = benchmark_question("math500", 3)
    rows.append({**rows[1], "uuid": "uuid-bench", "problem": q})
    return _parquet(d / "openr1-math.parquet", rows)


def _sharegpt_value(answer: str) -> str:
    return ("<|begin_of_thought|>\n\nOkay, let me think this through step by step.\n\n<|end_of_thought|>\n\n"
            f"<|begin_of_solution|>\n\nThe answer is $\\boxed{{{answer}}}$.\n\n<|end_of_solution|>")


def _sharegpt_rows(question_from: tuple[str, int]) -> list[dict]:
    system = "Your role as an assistant involves thoroughly exploring questions through a systematic long thinking process"
    rows = [{"system": system, "conversations": [{"from": "user", "value": q},
                                                 {"from": "assistant", "value": _sharegpt_value(a)}]}
            for q, a in CLEAN]
    _, q = benchmark_question(*question_from)
    rows.append({"system": system, "conversations": [{"from": "user", "value": q},
                                                     {"from": "assistant", "value": _sharegpt_value("0")}]})
    return rows


def write_bespoke_stratos(d: Path) -> Path:
    return _jsonl(d / "bespoke-stratos-17k.jsonl", _sharegpt_rows(("livecodebench", 0)))


def write_openthoughts(d: Path) -> Path:
    p = d / "openthoughts-114k.json"  # a JSON array file
    p.write_text(json.dumps(_sharegpt_rows(("humaneval", 0))), encoding="utf-8")
    return p


def write_mixture_of_thoughts(d: Path) -> Path:
    rows = [{"messages": [{"content": q, "role": "user"}, {"content": _trace(q, a), "role": "assistant"}],
             "num_tokens": 120, "source": "open-r1/OpenR1-Math-220k"} for q, a in CLEAN]
    _, q = benchmark_question("codeforces", 0)
    rows.append({"messages": [{"content": q, "role": "user"}, {"content": _trace("code", "0"), "role": "assistant"}],
                 "num_tokens": 300, "source": "open-r1/codeforces-cots"})
    return _jsonl(d / "mixture-of-thoughts-math.jsonl", rows)


def write_smoltalk(d: Path) -> Path:
    rows = [{"messages": [{"content": "Write a haiku about autumn leaves falling on a quiet pond.", "role": "user"},
                          {"content": "Leaves drift, turning gold\nsettling on the still water\nripples fade to calm",
                           "role": "assistant"}], "source": "smol-rewrite"},
            {"messages": [{"content": "Translate 'good morning, how are you today' into French please.",
                           "role": "user"},
                          {"content": "Bonjour, comment allez-vous aujourd'hui ?", "role": "assistant"}],
             "source": "smol-constraints"}]
    return _jsonl(d / "smoltalk.jsonl", rows)


# format name, kind, writer, hub id, rows read, rows skipped by the mapping, rows dropped by decontamination
FORMAT_CASES = [
    ("math", "prompt", write_math_train, "EleutherAI/hendrycks_math", 5, 1, {"math500": 1}),
    ("gsm8k", "prompt", write_gsm8k, "openai/gsm8k", 4, 0, {}),
    ("numina_cot", "prompt", write_numina_cot, "AI-MO/NuminaMath-CoT", 4, 0, {"aime2024": 1}),
    ("numina_cot", "trace", write_numina_cot, "AI-MO/NuminaMath-CoT", 4, 0, {"aime2024": 1}),
    ("dapo_math", "prompt", write_dapo, "BytedTsinghua-SIA/DAPO-Math-17k", 4, 0, {"aime2025": 1}),
    ("openr1_math", "prompt", write_openr1_math, "open-r1/OpenR1-Math-220k", 5, 0, {"math500": 1}),
    ("openr1_math", "trace", write_openr1_math, "open-r1/OpenR1-Math-220k", 5, 1, {"math500": 1}),
    ("sharegpt", "trace", write_bespoke_stratos, "bespokelabs/Bespoke-Stratos-17k", 4, 0, {"livecodebench": 1}),
    ("sharegpt", "trace", write_openthoughts, "open-thoughts/OpenThoughts-114k", 4, 0, {"humaneval": 1}),
    ("messages", "trace", write_mixture_of_thoughts, "open-r1/Mixture-of-Thoughts", 4, 0, {"codeforces": 1}),
]
