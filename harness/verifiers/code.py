"""Code verifier: extract the final program from a completion, run it against tests in the sandbox, compare outputs.

Shared by evaluation (tasks/livecodebench.py, tasks/codeforces.py, tasks/humaneval.py) and RL rewards (training/):

    run_tests(program, tests, time_limit=..., memory_mb=...)  -> [TestResult]   one verdict per test
    score_code(completion, tests, ...)                       -> Verdict        correct iff every test passed
    score_many([CodeJob, ...], workers=None)                 -> [Verdict]      bounded pool, every core

Output comparison follows LiveCodeBench (lcb_runner/evaluation/testing_util.py): both texts stripped, split into
lines, each line stripped; a line matches if equal, or if both lines are whitespace-separated numbers that are equal
as decimals. On top of that (as Codeforces checkers do) a token whose reference is a floating-point literal matches
within 1e-6 absolute or relative error. Functional (LeetCode) problems compare the JSON of the return value with the
reference JSON, as Python values (LiveCodeBench turns tuples into lists first, and so do we).

Verdict mapping for a whole sample: no program extracted -> no_answer; think block never closed, or the generation
hit the token limit before a complete code block -> truncated; a sandbox failure on any test -> error (the judge
failed, not the program); otherwise correct iff every test passed, else incorrect. Verdict.detail holds the per-test
verdict counts and the first failure. Verdict.key is a hash of the normalised program: cons@k is not reported for
code (no majority vote over programs), the key only lets identical programs be recognised.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Sequence

from . import sandbox
from .base import CORRECT, ERROR, INCORRECT, NO_ANSWER, TRUNCATED, Verdict, split_think
from .sandbox import (
    MEMORY_LIMIT,
    PASSED,
    RUNTIME_ERROR,
    SANDBOX_ERROR,
    SYNTAX_ERROR,
    TIME_LIMIT,
    WRONG_ANSWER,
)

FLOAT_TOLERANCE = 1e-6
NOT_RUN = "not_run"  # tests after the first failure when stopping early (LiveCodeBench stops there too)

# LiveCodeBench prepends these imports to every program (its ``import_string``), so solutions may use e.g.
# ``List``, ``defaultdict`` or ``heappush`` without importing them.
LCB_IMPORT_MODULES = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
    "itertools", "functools", "operator", "io", "sys", "json",
)
LCB_PRELUDE = (
    "".join(f"from {m} import *\n" for m in LCB_IMPORT_MODULES + ("builtins", "typing"))
    + "".join(f"import {m}\n" for m in LCB_IMPORT_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)
LCB_PRELOAD = LCB_IMPORT_MODULES + ("typing",)

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon"}


@dataclass
class TestResult:
    verdict: str  # one of sandbox.TEST_VERDICTS, or NOT_RUN
    wall_s: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class CodeJob:
    """One completion to score: what ``score_code`` takes, as a value (for ``score_many``)."""

    completion: str
    tests: Sequence[dict]
    finish_reason: str | None = None
    mode: str = "stdin"
    func_name: str | None = None
    time_limit: float = sandbox.DEFAULT_TIME_LIMIT_S
    memory_mb: int = sandbox.DEFAULT_MEMORY_MB
    prelude: str = ""
    preload: Sequence[str] = ()
    stop_on_failure: bool = True
    # Builds the program to run from the extracted code (e.g. HumanEval wraps it with the prompt and the checks).
    assemble: Callable[[str], str] | None = None


# --- extraction -----------------------------------------------------------------------------------------------
def extract_program(completion: str | None) -> tuple[str | None, str | None]:
    """(program, None), or (None, reason) with reason ``truncated`` (think never closed) or ``no_code``.

    The program is the last fenced block after ``</think>`` that is Python or untagged (a ```text or ```cpp block
    is not the answer)."""
    _, final = split_think(completion or "")
    if final is None:
        return None, "truncated"
    blocks = [m.group(2) for m in _FENCE.finditer(final) if m.group(1).lower() in _PYTHON_TAGS]
    blocks = [b for b in blocks if b.strip()]
    if not blocks:
        return None, "no_code"
    return blocks[-1], None


def has_unclosed_fence(text: str) -> bool:
    return len(re.findall(r"^[ \t]*```", text, re.M)) % 2 == 1


def program_key(program: str) -> str:
    lines = [ln.rstrip() for ln in program.replace("\r\n", "\n").split("\n")]
    norm = "\n".join(ln for ln in lines if ln)
    # surrogatepass: a lone surrogate (JSON lets "\ud800" through from a server) must not crash the key
    return hashlib.sha256(norm.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --- comparison -----------------------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip().split("\n")]


def _is_float_literal(tok: str) -> bool:
    return any(c in tok for c in ".eE") and not tok.lower().lstrip("+-").startswith(("inf", "nan"))


def _tokens_match(got: str, want: str) -> bool:
    if got == want:
        return True
    try:
        g, w = Decimal(got), Decimal(want)
    except InvalidOperation:
        return False
    if not (g.is_finite() and w.is_finite()):
        return False
    if g == w:
        return True
    if _is_float_literal(want):
        gf, wf = float(g), float(w)
        return math.isfinite(gf) and abs(gf - wf) <= FLOAT_TOLERANCE * max(1.0, abs(wf))
    return False


def compare_stdout(output: str, expected: str) -> bool:
    got, want = _lines(output), _lines(expected)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if g == w:
            continue
        gt, wt = g.split(), w.split()
        if len(gt) != len(wt) or not all(_tokens_match(a, b) for a, b in zip(gt, wt)):
            return False
    return True


def compare_function(output: str, expected: str) -> bool:
    import json

    try:
        got = json.loads(output)
    except ValueError:
        return False
    try:
        want = json.loads(expected)
    except ValueError:
        want = expected  # a bare string reference (rare in LCB data)
    if isinstance(want, tuple):
        want = list(want)
    return got == want


# --- running --------------------------------------------------------------------------------------------------
def run_tests(
    program: str,
    tests: Sequence[dict],
    *,
    time_limit: float = sandbox.DEFAULT_TIME_LIMIT_S,
    memory_mb: int = sandbox.DEFAULT_MEMORY_MB,
    mode: str = "stdin",
    func_name: str | None = None,
    prelude: str = "",
    preload: Sequence[str] = (),
    stop_on_failure: bool = False,
) -> list[TestResult]:
    """One TestResult per test ({"input": str, "output": str}), in order. Script mode (HumanEval) takes tests
    without outputs: the program checks itself. With stop_on_failure, tests after the first failure are NOT_RUN."""
    tests = list(tests)
    if mode == "script" and not tests:
        tests = [{"input": ""}]
    results: list[TestResult] = []

    def judge(k: int, ex: sandbox.Execution) -> bool:
        results.append(_judge(ex, tests[k], mode))
        return not (stop_on_failure and results[-1].verdict != PASSED)

    # Outputs can be large (hidden tests): cap each at twice its reference, never below 1 MiB.
    ref_len = max((len(t.get("output") or "") for t in tests), default=0)
    executions = sandbox.execute(
        program, [t.get("input") or "" for t in tests], mode=mode, func_name=func_name, prelude=prelude,
        preload=preload, time_limit=time_limit, memory_mb=memory_mb,
        output_limit=max(1 << 20, 2 * ref_len + 4096), keep_going=judge,
    )
    # execute() calls judge for every execution it returns; anything beyond was never run.
    del executions
    results += [TestResult(NOT_RUN) for _ in range(len(tests) - len(results))]
    return results


def _judge(ex: sandbox.Execution, test: dict, mode: str) -> TestResult:
    detail: dict[str, Any] = {}
    if ex.status == sandbox.OK:
        if mode == "script":
            verdict = PASSED
        else:
            cmp = compare_function if mode == "function" else compare_stdout
            verdict = PASSED if cmp(ex.stdout, test.get("output") or "") else WRONG_ANSWER
    elif ex.status == sandbox.OUTPUT_LIMIT:
        verdict, detail["reason"] = WRONG_ANSWER, "output limit exceeded"
    else:
        verdict = ex.status
    if verdict != PASSED:
        if ex.stderr:
            detail["stderr"] = ex.stderr[-600:]
        if ex.detail.get("error"):
            detail["error"] = ex.detail["error"]
    return TestResult(verdict, wall_s=round(ex.wall_s, 4), detail=detail)


def score_code(
    completion: str,
    tests: Sequence[dict],
    *,
    finish_reason: str | None = None,
    mode: str = "stdin",
    func_name: str | None = None,
    time_limit: float = sandbox.DEFAULT_TIME_LIMIT_S,
    memory_mb: int = sandbox.DEFAULT_MEMORY_MB,
    prelude: str = "",
    preload: Sequence[str] = (),
    stop_on_failure: bool = True,
) -> Verdict:
    """Verdict of one completion. Never raises on model output."""
    try:
        return _score(CodeJob(completion, tests, finish_reason, mode, func_name, time_limit, memory_mb, prelude,
                              preload, stop_on_failure))
    except Exception as e:  # a bug or a broken machine must not take the run down; it shows as an error verdict
        return Verdict(ERROR, detail={"error": f"{type(e).__name__}: {e}"})


def _score(job: CodeJob) -> Verdict:
    program, reason = extract_program(job.completion)
    if program is None:
        _, final = split_think(job.completion or "")
        if reason == "truncated" or (job.finish_reason == "length" and final is not None and has_unclosed_fence(final)):
            return Verdict(TRUNCATED, detail={"reason": "think block not closed" if reason == "truncated" else
                                              "generation stopped inside a code block"})
        return Verdict(NO_ANSWER, detail={"reason": "no python code block after </think>"})
    key = program_key(program)
    if not job.tests and job.mode != "script":
        return Verdict(ERROR, answer=program, key=key, detail={"error": "problem has no tests"})
    runnable = job.assemble(program) if job.assemble else program
    results = run_tests(runnable, job.tests, time_limit=job.time_limit, memory_mb=job.memory_mb, mode=job.mode,
                        func_name=job.func_name, prelude=job.prelude, preload=job.preload,
                        stop_on_failure=job.stop_on_failure)
    counts = Counter(r.verdict for r in results)
    detail: dict[str, Any] = {"tests": dict(counts), "n_tests": len(results)}
    failure = next((r for r in results if r.verdict not in (PASSED, NOT_RUN)), None)
    if failure is not None:
        detail["first_failure"] = failure.verdict
        detail["first_failure_index"] = results.index(failure)
        detail.update({k: v for k, v in failure.detail.items() if k in ("stderr", "reason", "error")})
    if counts.get(SANDBOX_ERROR):
        return Verdict(ERROR, answer=program, key=key, detail=detail)
    status = CORRECT if counts.get(PASSED, 0) == len(results) else INCORRECT
    return Verdict(status, answer=program, key=key, detail=detail)


def score_many(jobs: Sequence[CodeJob], workers: int | None = None) -> list[Verdict]:
    """Score many completions at once, one sandbox per completion, ``workers`` at a time (default: every core).

    Threads are enough: each worker only waits on its sandbox process and compares outputs."""
    jobs = list(jobs)
    if not jobs:
        return []
    n = max(1, min(workers or sandbox.default_workers(), len(jobs)))
    if n == 1:
        return [_safe_score(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="r1-code") as pool:
        return list(pool.map(_safe_score, jobs))


def _safe_score(job: CodeJob) -> Verdict:
    try:
        return _score(job)
    except Exception as e:
        return Verdict(ERROR, detail={"error": f"{type(e).__name__}: {e}"})


__all__ = [
    "CodeJob", "TestResult", "extract_program", "compare_stdout", "compare_function", "run_tests", "score_code",
    "score_many", "LCB_PRELUDE", "LCB_PRELOAD", "NOT_RUN", "PASSED", "WRONG_ANSWER", "RUNTIME_ERROR", "TIME_LIMIT",
    "MEMORY_LIMIT", "SYNTAX_ERROR", "SANDBOX_ERROR",
]
