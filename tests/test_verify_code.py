"""The code verifier: extraction, LiveCodeBench-style comparison, per-test verdicts, sample verdicts, the pool."""
from __future__ import annotations

import time

import pytest

from harness.verifiers import code
from harness.verifiers.base import CORRECT, ERROR, INCORRECT, NO_ANSWER, TRUNCATED
from harness.verifiers.code import (
    MEMORY_LIMIT,
    NOT_RUN,
    PASSED,
    RUNTIME_ERROR,
    SANDBOX_ERROR,
    SYNTAX_ERROR,
    TIME_LIMIT,
    WRONG_ANSWER,
    CodeJob,
    compare_function,
    compare_stdout,
    extract_program,
    run_tests,
    score_code,
    score_many,
)

pytestmark = pytest.mark.timeout(120)

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"
ADD_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "-5 5\n", "output": "0"}, {"input": "10 20", "output": "30\n"}]


def fenced(body: str, tag: str = "python") -> str:
    return f"```{tag}\n{body if body.endswith(chr(10)) else body + chr(10)}```"


# --- extraction -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("completion, program, reason", [
    (f"<think>x</think>Here:\n{fenced(ADD)}", ADD, None),
    # the last python block after </think> wins; blocks inside the reasoning do not count
    (f"<think>{fenced('print(0)')}</think>{fenced('print(1)')}\ntext\n{fenced('print(2)')}", "print(2)\n", None),
    (f"<think>a</think>{fenced('print(1)')}\n{fenced('1 2 3', 'text')}", "print(1)\n", None),
    (f"<think>a</think>{fenced('print(1)', '')}", "print(1)\n", None),
    (f"<think>a</think>{fenced('print(1)', 'Python3')}", "print(1)\n", None),
    (f"<think>a</think>{fenced('int main() {}', 'cpp')}", None, "no_code"),
    ("<think>a</think>just prose, print(1)", None, "no_code"),
    (f"<think>still thinking {fenced('print(1)')}", None, "truncated"),
    (fenced(ADD), ADD, None),  # no think block at all: everything is the answer
    ("", None, "no_code"),
])
def test_extract_program(completion, program, reason):
    assert extract_program(completion) == (program, reason)


# --- comparison (LiveCodeBench semantics + float tolerance) -----------------------------------------------------
@pytest.mark.parametrize("got, want, same", [
    ("3\n", "3", True),
    ("  3  \n\n", "3\n", True),  # whole text and each line stripped
    ("1 2 3\n", "1  2\t3", True),  # token-wise
    ("1\n2\n", "1 2", False),  # line structure matters
    ("1\n\n2", "1\n2", False),  # inner blank lines count (as in LiveCodeBench)
    ("3.0", "3", True),  # equal as decimals
    ("003", "3", True),
    ("0.3333333", "0.333333333", True),  # float reference: 1e-6 tolerance
    ("0.3334", "0.333333333", False),
    ("1000000.5", "1000000.0", True),  # relative tolerance for large values
    ("4", "5", False),  # integer reference: exact
    ("Yes", "yes", False),
    ("YES", "YES", True),
    ("nan", "nan", True),  # identical strings are equal even when not numbers
    ("inf", "1e400", False),
    ("1e-7", "0.0", True),
    ("", "", True),
    ("", "0", False),
])
def test_compare_stdout(got, want, same):
    assert compare_stdout(got, want) is same


@pytest.mark.parametrize("got, want, same", [
    ("[1, 2]", "[1,2]", True),
    ("2.0", "2", True),
    ("true", "true", True),
    ('"abc"', '"abc"', True),
    ("[1, 2]", "[2, 1]", False),
    ("not json", "1", False),
    ('{"__unserializable__": "{1}"}', "[1]", False),
])
def test_compare_function(got, want, same):
    assert compare_function(got, want) is same


# --- per-test verdicts ---------------------------------------------------------------------------------------------
def test_run_tests_verdict_per_test():
    prog = ("import sys, time\nx = int(input())\n"
            "if x == 1: print(1)\nelif x == 2: print(3)\nelif x == 3: raise RuntimeError('x')\n"
            "elif x == 4: time.sleep(30)\nelif x == 5: y = bytearray(10 ** 10)\n")
    tests = [{"input": str(i), "output": str(i)} for i in range(1, 6)]
    res = run_tests(prog, tests, time_limit=1, memory_mb=256)
    assert [r.verdict for r in res] == [PASSED, WRONG_ANSWER, RUNTIME_ERROR, TIME_LIMIT, MEMORY_LIMIT]
    assert "RuntimeError" in res[2].detail["stderr"]


def test_run_tests_stop_on_failure_and_syntax_error():
    res = run_tests(ADD, [ADD_TESTS[0], {"input": "1 1", "output": "3"}, ADD_TESTS[2]], stop_on_failure=True)
    assert [r.verdict for r in res] == [PASSED, WRONG_ANSWER, NOT_RUN]
    assert [r.verdict for r in run_tests("print(", ADD_TESTS)] == [SYNTAX_ERROR] * 3


def test_run_tests_function_mode_with_lcb_prelude():
    prog = ("class Solution:\n    def top(self, nums: List[int], k: int) -> List[int]:\n"
            "        return [x for x, _ in Counter(nums).most_common(k)]\n")
    tests = [{"input": "[1,1,2,2,2,3]\n2", "output": "[2, 1]"}, {"input": "[5]\n1", "output": "[5]"}]
    res = run_tests(prog, tests, mode="function", func_name="top", prelude=code.LCB_PRELUDE,
                    preload=code.LCB_PRELOAD)
    assert [r.verdict for r in res] == [PASSED, PASSED]
    res = run_tests(prog, tests, mode="function", func_name="missing", prelude=code.LCB_PRELUDE)
    assert res[0].verdict == RUNTIME_ERROR


def test_output_limit_is_a_wrong_answer():
    [r] = run_tests("print('x' * (50 << 20))", [{"input": "", "output": "x"}])
    assert r.verdict == WRONG_ANSWER and r.detail["reason"] == "output limit exceeded"


# --- sample verdicts -----------------------------------------------------------------------------------------------
def test_score_code_statuses():
    good = f"<think>easy</think>\n{fenced(ADD)}"
    v = score_code(good, ADD_TESTS)
    assert v.status == CORRECT and v.correct and v.reward == 1.0
    assert v.answer == ADD and v.key == code.program_key(ADD)
    assert v.detail["tests"] == {PASSED: 3}

    wrong = f"<think>x</think>{fenced('print(3)')}"
    v = score_code(wrong, ADD_TESTS)
    assert v.status == INCORRECT and v.detail["first_failure"] == WRONG_ANSWER
    assert v.detail["tests"] == {PASSED: 1, WRONG_ANSWER: 1, NOT_RUN: 1}

    v = score_code(wrong, ADD_TESTS, stop_on_failure=False)
    assert v.detail["tests"] == {PASSED: 1, WRONG_ANSWER: 2}

    assert score_code("<think>no end", ADD_TESTS).status == TRUNCATED
    assert score_code("<think>x</think>\n```python\nprint(1", ADD_TESTS, finish_reason="length").status == TRUNCATED
    assert score_code("<think>x</think>I don't know.", ADD_TESTS).status == NO_ANSWER
    assert score_code(good, []).status == ERROR  # nothing to judge against
    assert score_code(None, ADD_TESTS).status == NO_ANSWER  # never raises on model output


def test_same_program_same_key_despite_whitespace():
    assert code.program_key("print(1)\n\n") == code.program_key("print(1)   \r\n")
    assert code.program_key("print(1)") != code.program_key("print(2)")


def test_sandbox_failure_is_error_not_incorrect(monkeypatch):
    from harness.verifiers import sandbox

    monkeypatch.setattr(sandbox.sys, "executable", "/nonexistent/python")
    v = score_code(f"<think>x</think>{fenced(ADD)}", ADD_TESTS)
    assert v.status == ERROR and v.detail["first_failure"] == SANDBOX_ERROR


def test_score_many_uses_parallel_workers():
    sleeper = f"<think>x</think>{fenced('import time; time.sleep(1.0); print(3)')}"
    jobs = [CodeJob(sleeper, [{"input": "", "output": "3"}]) for _ in range(4)]
    t = time.monotonic()
    verdicts = score_many(jobs, workers=2)
    elapsed = time.monotonic() - t
    assert [v.status for v in verdicts] == [CORRECT] * 4
    assert elapsed < 3.5, f"4 x 1 s sleeps on 2 workers took {elapsed:.1f} s"
    mixed = [CodeJob(f"<think>x</think>{fenced(ADD)}", ADD_TESTS), CodeJob("no code", ADD_TESTS),
             CodeJob(f"<think>x</think>{fenced('print(0)')}", ADD_TESTS)]
    assert [v.status for v in score_many(mixed)] == [CORRECT, NO_ANSWER, INCORRECT]  # order kept
