"""The math verifier: Math-Verify's 268 labeled cases, reasoning-model reading rules, voting keys, and inputs built to
break it (none may raise or overrun its time limit by more than a second)."""
import json
import threading
import time

import pytest

from harness import metrics
from harness.verifiers import math as mv
from harness.verifiers.base import CORRECT, ERROR, INCORRECT, NO_ANSWER, STATUSES, TIMEOUT, TRUNCATED, Verdict

from conftest import DATA_DIR


# --- the 268 labeled cases ----------------------------------------------------------------------------------------
def _cases():
    path = DATA_DIR / "math_equivalence" / "math_verify_cases.jsonl" if DATA_DIR else None
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


CASES = _cases()


def _options(case):
    """The case's semantics (math_equivalence/SOURCE.md): compare_strings passes match types and options."""
    kw = case["harness_kwargs"] or {}
    if case["harness_helper"] == "verify":
        return {}
    return {"match": tuple(kw.get("match_types", ("latex", "expr"))), "precision": kw.get("precision", 6),
            "strict": kw.get("strict", True), "allow_set_relation_comp": kw.get("allow_set_relation_comp", False)}


def test_case_table_is_complete(data_dir):
    assert len(CASES) == 268
    assert sum(c["expected"] for c in CASES) == 230


@pytest.mark.parametrize("case", CASES, ids=[f"{c['source_file'].split('/')[-1]}::{c['test_function']}[{c['case_index']}]"
                                             for c in CASES])
def test_labeled_case(case):
    v = mv.verify(case["gold"], case["pred"], **_options(case))
    assert isinstance(v, Verdict) and v.status in STATUSES
    assert v.correct == bool(case["expected"]), (case["gold"][-200:], case["pred"][-200:], v)


# --- reading a reasoning model's completion -----------------------------------------------------------------------
THINK = "<think>\nLet me try 41. No: \\boxed{41} is wrong, it is 42.\n</think>\n\n"


@pytest.mark.parametrize("completion,finish,status,answer", [
    (THINK + "The answer is \\boxed{42}.", "stop", CORRECT, "42"),
    # the box inside the thinking never counts
    ("<think>\nSo \\boxed{42}.\n</think>\n\nI am not sure.", "stop", NO_ANSWER, None),
    ("<think>\nSo \\boxed{42}.\n</think>\n\nI am not sure.", "length", TRUNCATED, None),
    # never closed: ran out of tokens while thinking, whatever it wrote
    ("<think>\nthe answer is \\boxed{42}", "length", TRUNCATED, None),
    ("<think>\nthe answer is \\boxed{42}", "stop", TRUNCATED, None),
    # cut off after thinking, before answering
    (THINK + "To summarise, we computed 6 times", "length", TRUNCATED, None),
    # cut off after the answer: the answer stands
    (THINK + "\\boxed{42}. To double-check, 6 times", "length", CORRECT, "42"),
    # no think block at all: the whole text is the answer part
    ("Adding up gives \\boxed{42}.", "stop", CORRECT, "42"),
    ("Adding up gives \\boxed{43}.", "stop", INCORRECT, "43"),
    # the runner stores the forced "<think>\n" prefix, so a closed block is the usual shape
    ("<think>\n" + "x" * 5000 + "\n</think>\n\\boxed{42}", None, CORRECT, "42"),
    ("", "stop", NO_ANSWER, None),
    ("", "length", TRUNCATED, None),
    (THINK, "stop", NO_ANSWER, None),
])
def test_think_and_truncation(completion, finish, status, answer):
    v = mv.verify("42", completion, finish)
    assert (v.status, v.answer) == (status, answer), v
    if status in (TRUNCATED, NO_ANSWER):
        assert v.key is None


@pytest.mark.parametrize("final,answer,by", [
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),
    ("first \\boxed{3}. Then after checking everything again I get \\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt{2}}{2}", "boxed"),
    # latex2sympy2_extended's rule: boxes a little apart with a connective form one list answer
    ("first \\boxed{3}, and also \\boxed{4}", "3, 4", "boxed"),
    ("\\fbox{7}", "7", "boxed"),
    ("\\boxed{\\left\\{ \\frac{1}{2}, \\frac{3}{4} \\right\\}}", "\\left\\{ \\frac{1}{2}, \\frac{3}{4} \\right\\}", "boxed"),
    ("\\boxed{1} and \\boxed{2}", "1, 2", "boxed"),
    # a box outranks a later bare "answer is" phrase (was 6); math-verify's top form "final answer is $X$" after the
    # boxes still replaces them (its own labelled cases: intermediate boxes, then Minerva's closing sentence)
    ("\\boxed{5}\n\nThe answer is: 6", "5", "boxed"),
    ("\\boxed{5}. So the answer is 6.", "5", "boxed"),
    ("\\boxed{5}\n\nFinal Answer: The final answer is $6$. I hope it is correct.", "6", "final_answer"),
    ("The answer is: 6", "6", "final_answer"),
    # a model that doubts a boxed answer and boxes another: the later box replaces it (was the list "12, 14")
    ("So \\boxed{12}, wait, actually \\boxed{14}.", "14", "boxed"),
    ("The answer is \\boxed{12}. Wait, that is wrong: \\boxed{14}.", "14", "boxed"),
    ("\\boxed{12} hmm no \\boxed{14}", "14", "boxed"),
    ("\\boxed{12}, or rather \\boxed{14}", "14", "boxed"),
    ("\\boxed{12}. No, I made an error; \\boxed{14}", "14", "boxed"),
    # answers listed as such stay one list answer
    ("the solutions are \\boxed{1} and \\boxed{2}", "1, 2", "boxed"),
    ("x = \\boxed{-3}, \\boxed{5}", "-3, 5", "boxed"),
    ("The final answer is \\(\\frac{3}{4}\\).", "\\frac{3}{4}", "final_answer"),
    ("Final answer: \\[ x = 2 \\]", "x = 2", "final_answer"),
    ("So the answer is $\\$18.90$.", "\\$18.90", "final_answer"),
    ("<answer>\\frac{2}{3}</answer>", "\\frac{2}{3}", "answer_tag"),
    ("<answer>It is \\boxed{12} cm</answer>", "12", "answer_tag"),
    ("<answer> $ 12 $ </answer> trailing \\boxed{99}", "12", "answer_tag"),
])
def test_extraction(final, answer, by):
    assert mv.extract(THINK + final) == answer
    v = mv.verify("0", THINK + final)
    assert v.answer == answer and v.detail.get("by") == by


def test_extraction_falls_back_to_math_verify_without_anchor():
    assert mv.extract(THINK + "We find that the sum equals $17$.") == "17"
    v = mv.verify("17", THINK + "We find that the sum equals $17$.")
    assert v.correct and v.detail["by"] == "fallback"
    assert mv.extract(THINK + "We find that the sum equals $17$.", "length") is None
    assert mv.extract("<think>\nstill thinking") is None


@pytest.mark.parametrize("gold,pred,ok", [
    ("\\frac{1}{2}", "0.5", True), ("\\frac{1}{2}", "\\dfrac12", True), ("1/2", "\\tfrac{1}{2}", True),
    ("0.5", "\\frac{1}{2}", True), ("\\frac12", "0.50000001", True), ("\\frac13", "0.3333", False),
    ("1000", "1{,}000", True), ("1000", "1,\\!000", True), ("12000023", "12,000,023", True),
    ("25", "025", True), ("25", "x = 25", True), ("25", "25 \\text{ cm}", True), ("18.90", "\\$18.90", True),
    ("(3, -1)", "\\left( 3, -1 \\right)", True), ("(3, -1)", "(-1, 3)", False), ("[0, 1)", "(0, 1)", False),
    ("(-\\infty, 3]", "(-\\infty,3]", True), ("204_5", "204_5", True), ("52_8", "52_{11}", False),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{3}", False),
    ("x^2+2x+1", "(x+1)^2", True), ("x^2+2x+1", "(x-1)^2", False), ("\\text{Evelyn}", "Evelyn", True),
    ("90^\\circ", "90", True), ("28\\%", "28", True), ("3\\sqrt{13}", "\\sqrt{117}", True),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
])
def test_equivalence(gold, pred, ok):
    v = mv.verify(gold, THINK + "\\boxed{" + pred + "}")
    assert v.correct == ok, v


# --- the fast path never contradicts math-verify ------------------------------------------------------------------
def test_fast_path_agrees_with_math_verify(data_dir):
    """Every decision the in-process fast path makes on MATH-500 golds vs. correct, reformatted and perturbed answers
    is the decision math-verify reaches on the same pair."""
    import random
    import re

    rows = [json.loads(x) for x in (data_dir / "math500" / "test.jsonl").read_text().splitlines()]
    rng = random.Random(7)
    pairs = []
    for r in rows:
        g = r["answer"]
        pairs.append((g, g.replace("\\frac", "\\dfrac")))
        nums = list(re.finditer(r"\d+", g))
        if nums:
            m = rng.choice(nums)
            pairs.append((g, g[:m.start()] + str(int(m.group()) + rng.choice((1, 2, 10))) + g[m.end():]))
        pairs.append((g, rng.choice(rows)["answer"]))
    decided = []
    o = mv._Opts()
    for g, p in pairs:
        d = mv._fast(mv._canon(g), mv._canon(p), o.precision)
        if d is not None:
            decided.append((g, p, d))
    assert len(decided) > 600
    jobs = [("check", (mv._gold_text(g, o.match), "\\boxed{" + p + "}", o.match, o.precision, True, False))
            for g, p, _ in decided]
    outs = mv.pool().map(mv._work, jobs, timeout=30)
    disagree = [(g, p, d, out.value) for (g, p, d), out in zip(decided, outs)
                if out.ok and (out.value[0] == "correct") != d]
    # "52_8" vs "52_11": latex2sympy drops the base subscript; numerals in different bases are not equal
    disagree = [x for x in disagree if not re.fullmatch(r"\w+_\{?\d+\}?", x[0])]
    assert not disagree, disagree[:10]


EQUAL_BUT_DIFFERENT_TEXT = [
    ("x^2+2x+1", "(x+1)^2"), ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"), ("1", "\\sin^2 x + \\cos^2 x"),
    ("\\cos 2x", "2\\cos^2 x - 1"), ("3", "\\log_2 8"), ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}"), ("\\tan^2 y + 1", "\\sec^2 y"), ("0.333333", "\\frac{1}{3}"),
    ("\\frac{a^2-b^2}{a-b}", "a+b"), ("\\binom{5}{2}", "10"), ("\\sqrt{x^2}", "|x|"),
]


def test_probe_prefilter_never_hides_an_equality(data_dir):
    """The worker skips math-verify's simplify when the two sides differ at a probe point. That must never turn an
    equality math-verify finds into "incorrect": on perturbed MATH-500 answers, whenever the prefilter says
    different, math-verify says different too; on equal answers written differently it never fires."""
    import random
    import re

    from math_verify import parse, verify

    cfg = mv._configs(mv.MATCH_TYPES)
    rows = [json.loads(x) for x in (data_dir / "math500" / "test.jsonl").read_text().splitlines()]
    rng = random.Random(3)
    pairs = list(EQUAL_BUT_DIFFERENT_TEXT)
    for r in rng.sample(rows, 150):
        g = r["answer"]
        nums = list(re.finditer(r"\\d+", g))
        if nums:
            m = rng.choice(nums)
            pairs.append((g, g[:m.start()] + str(int(m.group()) + 1) + g[m.end():]))
        pairs.append((g, rng.choice(rows)["answer"]))
    fired = 0
    for g, p in pairs:
        gp, pp = parse("\\boxed{" + g + "}", cfg), parse("\\boxed{" + p + "}", cfg)
        if not gp or not pp or not mv._clearly_different(gp, pp, 6, True):
            continue
        fired += 1
        assert (g, p) not in EQUAL_BUT_DIFFERENT_TEXT
        assert not verify(gp, pp, timeout_seconds=None), (g, p)
    assert fired > 100
    for g, p in EQUAL_BUT_DIFFERENT_TEXT[:-1]:  # |x| vs sqrt(x^2): equal only for real x, math-verify's call
        assert mv.verify(g, "\\boxed{" + p + "}").correct, (g, p)


# --- voting keys --------------------------------------------------------------------------------------------------
def test_answer_key_puts_equivalent_answers_in_one_vote():
    keys = {mv.answer_key(a) for a in ("1/2", "0.5", "\\frac{1}{2}", "\\dfrac12", "\\tfrac{1}{2}", "$\\frac{1}{2}$")}
    assert keys == {"num:1/2"}
    assert mv.answer_key("\\frac{\\sqrt{3}}{2}") == mv.answer_key("\\frac{1}{2}\\sqrt{3}") != mv.answer_key("\\sqrt{3}")
    assert mv.answer_key("x+1") == mv.answer_key("1+x")
    assert mv.answer_key("(1, 2)") == mv.answer_key("\\left( 1,2 \\right)") != mv.answer_key("(2, 1)")
    assert mv.answer_key("") is None and mv.answer_key(None) is None
    k, dt = _timed(mv.answer_key, "10^{10^{10}}", timeout=1)
    assert k == "huge:10^{10^{10}}" and dt < 2  # keyed without evaluating the power
    json.dumps([mv.answer_key("\\sqrt{2}")])


@pytest.mark.parametrize("same", [
    ("\\frac{1}{2}", "0.5", "1/2", "\\dfrac12", "2^{-1}"), ("2\\sqrt{2}", "\\sqrt{8}"),
    ("x^2+2x+1", "(x+1)^2"),  # were two keys (sympy trees differ): a cons@k vote split between them
    ("\\frac{1}{\\sqrt{2}-1}", "\\sqrt{2}+1"),  # were two keys too
    ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}"), ("\\frac{\\pi}{2}", "\\pi/2"), ("\\sqrt{2}", "2^{1/2}"),
])
def test_equal_symbolic_answers_share_a_key(same):
    keys = {mv.answer_key(a) for a in same}
    assert len(keys) == 1 and None not in keys, keys


@pytest.mark.parametrize("apart", [
    ("2x", "2y"),  # same shape, other variable
    ("\\sqrt{x^2}", "x"),  # equal for x > 0 only: the negative probe point keeps them apart
    ("x^2+2x+1", "x^2+2x+1.000001"),
    ("\\frac{1}{3}", "0.333333"),  # a rounded decimal is its own answer; equality under rounding is not transitive
])
def test_different_answers_keep_their_own_keys(apart):
    a, b = (mv.answer_key(x) for x in apart)
    assert a and b and a != b


def test_cons_vote_is_equivalence_aware():
    # 3 samples say 1/2 in three spellings, 2 say 3/4 in one spelling: a string vote would pick 3/4.
    finals = ["\\boxed{0.5}", "\\boxed{\\frac{3}{4}}", "\\boxed{\\dfrac12}", "\\boxed{\\frac{3}{4}}", "\\boxed{1/2}"]
    vs = mv.verify_many(["\\frac{1}{2}"] * 5, [THINK + f for f in finals])
    assert [v.status for v in vs] == [CORRECT, INCORRECT, CORRECT, INCORRECT, CORRECT]
    assert metrics.cons_at_k([v.key for v in vs], [v.correct for v in vs]) == 1.0
    assert metrics.cons_at_k([v.answer for v in vs], [v.correct for v in vs]) == 0.0


def test_keys_are_the_same_on_fast_and_slow_paths():
    fast = mv.verify("\\frac{1}{2}", "\\boxed{0.5}")
    slow = mv.verify("2^{-1}", "\\boxed{0.5}")  # gold only sympy understands: the pair goes to the pool
    assert fast.detail["path"] == "fast" and slow.detail["path"] == "sympy"
    assert fast.key == slow.key == "num:1/2" and fast.correct and slow.correct


# --- inputs that must not break it --------------------------------------------------------------------------------
def _timed(fn, *a, **kw):
    t0 = time.monotonic()
    out = fn(*a, **kw)
    return out, time.monotonic() - t0


@pytest.mark.parametrize("completion", [
    "\\boxed{10^{10^{10}}}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
    "\\boxed{\\int_0^\\infty e^{-x^{x^x}} \\sin(x^{100}) dx}",
], ids=["10^10^10", "power_tower", "deep_parens", "hard_integral"])
def test_expensive_answers_end_within_the_time_limit(completion):
    mv.verify("2", "\\boxed{x^2+1}")  # the worker pool is up: its start-up is not the check's time
    v, dt = _timed(mv.verify, "1", completion, timeout=1.0)
    assert v.status in (INCORRECT, TIMEOUT, ERROR, NO_ANSWER)
    assert dt < 1.0 + 1.0, dt
    assert mv.verify("1", "\\boxed{1}").correct  # the pool recovered


@pytest.mark.parametrize("answer,digits", [
    ("10^{10^{10}}", 1e10), ("9^{9^{9^9}}", float("inf")), ("7^{99999999}", 8.45e7), ("(10^{100})!", 9.96e101),
    ("2^{10^7}", 3.01e6),
])
def test_huge_towers_are_settled_without_sympy(answer, digits):
    """A power tower or factorial with millions of digits is no plain number: decided in-process (sympy would try to
    write it out and use the whole deadline); the same text still equals itself and votes with itself."""
    h = mv._huge(answer)
    assert h is not None and (h.log10 == digits or abs(h.log10 / digits - 1) < 0.01)
    v, dt = _timed(mv.verify, "3", THINK + f"\\boxed{{{answer}}}", timeout=5.0)
    assert v.status == INCORRECT and v.detail["path"] == "fast" and dt < 0.5, (v, dt)
    assert mv.verify("\\infty", THINK + f"\\boxed{{{answer}}}").status == INCORRECT
    same = mv.verify(answer, THINK + f"\\boxed{{{answer}}}")
    assert same.status == CORRECT and same.key == v.key == "huge:" + answer


@pytest.mark.parametrize("answer", ["2^{2024}", "2^{10^{6}}", "1000!", "1^{10^{100}}", "0^{10^{10}}", "10^{10^{10}}-1",
                                    "-10^{10^{10}}", "x^{10^{10}}", "2^{10}^{10}"])
def test_towers_that_sympy_can_or_must_handle_stay_on_the_rules(answer):
    assert mv._huge(answer) is None


@pytest.mark.parametrize("completion", [
    "x" * (1 << 20),  # 1 MB, no answer
    "<think>" + "a" * (1 << 20) + "</think> \\boxed{7}",
    "\\boxed{" * 100_000,  # unclosed, deeply nested
    "{" * 200_000 + "\\boxed{7}" + "}" * 200_000,
    "\\boxed{" + "{" * 100_000 + "7" + "}" * 100_000 + "}",
    "$" * 100_000 + "\\boxed{7}",
    "The final answer is " + "$" * 50_000,
    "The answer is" + " " * (1 << 20) + "7",
    "The answer is " + "7" * (1 << 20),
    "<answer>" * 10_000,
    "\\boxed{\\frac{1}{0}}", "\\boxed{\\frac{}{}}", "\\boxed{\\left(}", "\\boxed{}}}}", "\\boxed{\\begin{pmatrix}1 & 2}",
    b"\\boxed{7} \xff\xfe \xc3\x28",  # not UTF-8
    "\\boxed{7} \udcff\udcfe",  # lone surrogates (surrogateescape-decoded bytes)
    "\x00\\boxed{7}\x00",
    "", None, 7, "   \n\t ",
], ids=lambda c: repr(c)[:30])
def test_hostile_inputs_never_raise_and_stay_fast(completion):
    v, dt = _timed(mv.verify, "7", completion, timeout=2.0)
    assert isinstance(v, Verdict) and v.status in STATUSES
    assert dt < 2.0 + 1.0, dt
    json.dumps(v.to_dict())  # storable as a sample record
    mv.extract(completion)
    mv.answer_key(completion if isinstance(completion, str) else None, timeout=2.0)


def test_hostile_gold_is_an_error_verdict_not_an_exception():
    assert mv.verify("", "\\boxed{1}").status == ERROR
    assert mv.verify(None, "\\boxed{1}").status == ERROR
    assert mv.verify("\\left(", "\\boxed{1}").status in (ERROR, INCORRECT)


def test_length_mismatch_is_a_programming_error():
    with pytest.raises(ValueError):
        mv.verify_many(["1"], ["a", "b"])


# --- batch, threads, memo -----------------------------------------------------------------------------------------
def test_verify_many_from_background_threads_matches_serial():
    golds = ["\\frac{\\sqrt{3}}{2}", "x^2-1", "(1,2)", "7", "\\pi"] * 4
    comps = [THINK + "\\boxed{" + p + "}" for p in ("\\frac{1}{2}\\sqrt{3}", "(x-1)(x+1)", "(2,1)", "7.0", "3.14")] * 4
    serial = [v.status for v in mv.verify_many(golds, comps)]
    assert serial == [CORRECT, CORRECT, INCORRECT, CORRECT, INCORRECT] * 4
    results, errors = {}, []

    def run(k):
        try:
            results[k] = [v.status for v in mv.verify_many(golds, comps)]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and all(r == serial for r in results.values()) and len(results) == 3


def test_memo_does_not_change_verdicts():
    golds = ["x^2-1", "\\frac{\\pi}{3}", "\\{1,2\\}"] * 2
    comps = [THINK + "\\boxed{" + p + "}" for p in ("(x-1)(x+1)", "60^\\circ", "\\{2,1\\}")] * 2
    try:
        mv.set_memo(False)
        cold = [(v.status, v.key) for v in mv.verify_many(golds, comps)]
    finally:
        mv.set_memo(True)
    warm = [(v.status, v.key) for v in mv.verify_many(golds, comps)]
    again = [(v.status, v.key) for v in mv.verify_many(golds, comps)]
    assert cold == warm == again


def test_timeout_is_a_verdict_and_memoised():
    v, dt = _timed(mv.verify, "5", THINK + "\\boxed{2^{2^{2^{2^{2^{10}}}}}-1}", timeout=1.0)
    assert v.status == TIMEOUT and v.answer == "2^{2^{2^{2^{2^{10}}}}}-1" and v.detail["timeout_s"] == 1.0
    assert dt < 2.0
    v2, dt2 = _timed(mv.verify, "5", THINK + "\\boxed{2^{2^{2^{2^{2^{10}}}}}-1}", timeout=1.0)
    assert v2.status == TIMEOUT and dt2 < 0.5  # 64 samples repeating it cost one timeout, not 64
