"""Property-based fuzzing of every verifier with model-output-shaped garbage (hypothesis).

Over 10,000 generated outputs in total go through math (verify_many, verify, extract), choice, code extraction and
output comparison, format and language checks. Properties: no exception escapes, no verifier bug hides as an
``error`` verdict, no call exceeds its time limit (math: the pool's hard deadline per check plus dispatch; the
in-process verifiers: ``INPROC_LIMIT_S``, which a catastrophic regex would blow), and the same input gives the same
verdict (math: batched vs alone, memo off; the others: called twice). Strategies are adversarial: nested and
unbalanced braces, unclosed think tags, huge exponents, unicode of many scripts, control characters, lone
surrogates, LaTeX fragments and answer phrases, not only random text. Derandomized, so CI runs the same cases.

The test module prints (``-s``) and writes nothing; ``test_zz_totals`` asserts the case count and reports the
slowest call per verifier.
"""
from __future__ import annotations

import json
import math as pymath
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from harness.config import MATH_VERIFY_TIMEOUT_S, THINK_PREFIX
from harness.verifiers import choice, code, format as fmt, language
from harness.verifiers import math as mathv
from harness.verifiers.base import ERROR, STATUSES, Verdict

INPROC_LIMIT_S = 0.5  # regex/str work on a few KB (plus 2 us per character): more is a backtracking bug
MATH_BATCH = 20
MATH_SLACK_S = 1.5  # dispatch to the worker pool and a worker restart after a killed check

STATS: dict[str, dict] = {}
DONE: set[str] = set()
FUZZ_TESTS = {"math", "choice", "code", "compare", "format", "language"}


def _note(verifier: str, n: int, slowest: float, what: str = "") -> None:
    s = STATS.setdefault(verifier, {"cases": 0, "slowest_s": 0.0, "slowest_input": "", "t0": time.monotonic()})
    s["cases"] += n
    s["wall_s"] = round(time.monotonic() - s["t0"], 1)
    if slowest > s["slowest_s"]:
        s["slowest_s"], s["slowest_input"] = slowest, what[:120]


def _settings(n: int, shrink: bool = True):
    from hypothesis import Phase

    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck), phases=phases)


# ---------------------------------------------------------------------------------------------- strategies
LATEX = ["\\boxed{", "\\fbox{", "\\framebox{", "}", "{", "}}", "{{", "\\frac{", "\\dfrac", "\\sqrt{", "\\sqrt[3]{",
         "^{", "_{", "^", "\\left(", "\\right)", "\\left[", "\\right]", "\\{", "\\}", "\\text{", "\\mathrm{",
         "\\begin{pmatrix}", "\\end{pmatrix}", "\\\\", "&", "\\cdot", "\\times", "\\pm", "\\infty", "-\\infty",
         "\\pi", "\\cup", "\\cap", "\\in", "\\le", "\\ge", "\\neq", "=", "\\approx", "\\%", "%", "^\\circ", "\\$",
         "\\log_2", "\\sin", "\\overline{", "!", "\\binom{", "\\sum_{k=1}^{n}", "\\int_0^1", "\\,", "\\!", "~",
         "\\mathbf{", "\\operatorname{", "\\lfloor", "\\rfloor", "\\textbf{", "\\\\[", "\\]", "\\(", "\\)", "$",
         "$$", "\\"]
HUGE = ["10^{10^{10^{10}}}", "2^{2^{2^{2^{2^{100}}}}}", "9^{9^{9^{9}}}", "1e999999999", "10**10**10", "99999999999!",
        "(10^{100})!", "\\underbrace{", "0.\\overline{9}" * 20, "1" * 5000, "9" * 400 + "/" + "7" * 400,
        "\\frac{1}{0}", "0^0", "\\sqrt{-1}", "\\infty-\\infty", "x^{x^{x^{x^{x}}}}", "e^{e^{e^{e^{100}}}}",
        "\\prod_{k=1}^{10^{9}} k", "10^{-10^{10}}", "1/0", "nan", "NaN", "inf", "-0", "+-0.0"]
PHRASES = ["<think>", "</think>", "<think>\n", "<answer>", "</answer>", "Answer: ", "Answer:", "answer: b",
           "The final answer is ", "the answer is (C)", "**Answer:** ", "Final Answer: $", "Option ", "(D)",
           "\\boxed{C}", "```python\n", "```", "```py\n", "```cpp\n", "\n```\n", "print(", "def f(x):\n    return x",
           "import sys\n", "A", "B", "C", "D", "E", "J", "x = ", "y=", "therefore ", "so ", "=", "\n", "\n\n", " ",
           "\t", "\r\n"]
UNICODE = ["π", "√2", "½", "²", "٣", "٤٥", "४२", "一二三", "答案是", "ответ", "αβγ", "λ", "ℵ₀", "𝟙𝟚", "Ⅻ", "ﬁ",
           "é", "é", "\u200b", "\u200f", "\u202e", "\ufeff", "\ufffd", "🙂", "👨‍👩‍👧", "한국어", "ひらがな", "カタカナ",
           "ไทย", "עברית", "عربى", "Ελληνικά", "\U0001d400", "Ａｎｓｗｅｒ：Ｂ"]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029",
           "\ud800", "\udfff", "\udc80"]  # lone surrogates: json.loads lets them through from a server

frag = st.one_of(
    st.sampled_from(LATEX), st.sampled_from(HUGE), st.sampled_from(PHRASES), st.sampled_from(UNICODE),
    st.sampled_from(CONTROL), st.integers(-10 ** 30, 10 ** 30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12),
)
soup = st.lists(frag, max_size=40).map("".join)


def _nest(depth_text):
    depth, inner, closes = depth_text
    return "\\boxed{" + "{" * depth + inner + "}" * closes


nested = st.tuples(st.integers(0, 60), soup, st.integers(0, 80)).map(_nest)
deep = st.integers(1, 3000).map(lambda d: "\\boxed{" + "{" * d + "1" + "}" * d + "}")
answerish = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(str), st.sampled_from(HUGE), soup, nested,
                      st.fractions().map(lambda f: f"\\frac{{{f.numerator}}}{{{f.denominator}}}"))


@st.composite
def completion(draw):
    """A reasoning-model-shaped output: maybe a think block (maybe unclosed), then a final part with answer
    anchors of every kind, or plain soup; sometimes megabytes."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.text(max_size=400))
    if shape == 1:
        return draw(soup)
    think = draw(soup)
    final = draw(st.one_of(
        answerish.map(lambda a: f"So the answer is \\boxed{{{a}}}."),
        answerish.map(lambda a: f"<answer>{a}</answer>"),
        answerish.map(lambda a: f"The final answer is ${a}$"),
        st.sampled_from("ABCDabcdEJ").map(lambda c: f"Answer: {c}"),
        soup.map(lambda s: f"```python\n{s}\n```"),
        nested, deep, soup,
    ))
    opened = draw(st.sampled_from(["<think>", "<think>\n", "", "<think><think>"]))
    closed = draw(st.sampled_from(["</think>", "</think>\n\n", "", "</think></think>"]))
    text = f"{opened}{think}{closed}{final}{draw(soup)}"
    if shape == 9:
        text = text * draw(st.integers(5, 60))  # long outputs (tens of KB)
    return text


finish = st.sampled_from(["stop", "length", None, "abort"])
# Gold answers are data, not model output: the shapes benchmark golds have (an unparseable or empty gold is the
# task's error, by design, and not what is fuzzed here).
gold = st.one_of(st.sampled_from(["42", "\\frac{1}{2}", "x^2+1", "(1,2)", "\\sqrt{3}", "[-2, 7)", "204_5", "10^{100}",
                                  "\\text{(C)}", "0", "-7", "3\\sqrt{13}", "\\{1, 2, 3\\}", "90^\\circ", "0.25"]),
                 st.integers(-10 ** 6, 10 ** 6).map(str),
                 st.fractions().map(lambda f: f"\\frac{{{f.numerator}}}{{{f.denominator}}}"))


def _v_tuple(v: Verdict):
    return v.status, v.answer, v.key


# ---------------------------------------------------------------------------------------------- math
@pytest.fixture(scope="module", autouse=True)
def _memo_off():
    """Determinism must come from the checks, not from a cache that answers the second call."""
    mathv.set_memo(False)
    yield
    mathv.set_memo(True)


@_settings(20, shrink=False)  # each example costs seconds: report it as found
@given(st.lists(st.tuples(gold, completion(), finish), min_size=MATH_BATCH, max_size=MATH_BATCH))
def test_math_verify_and_extract(batch):
    golds, comps, frs = zip(*batch)
    t0 = time.perf_counter()
    many = mathv.verify_many(golds, comps, frs)
    wall = time.perf_counter() - t0
    assert len(many) == len(batch)
    # Every check on the pool has a hard deadline; a batch runs on all workers, at worst one check after another.
    assert wall <= len(batch) * (MATH_VERIFY_TIMEOUT_S + MATH_SLACK_S), wall
    slowest, slow_in = 0.0, ""
    for (g, c, f), v in zip(batch, many):
        assert isinstance(v, Verdict) and v.status in STATUSES
        assert v.status != ERROR, (v.detail, repr(c[:300]))
        if v.status == "timeout":  # the deadline held in the batch; a second 5 s wait shows nothing more
            STATS.setdefault("math_timeouts", {"cases": 0, "slowest_s": 0.0, "slowest_input": "", "wall_s": 0})
            STATS["math_timeouts"]["cases"] += 1
            STATS["math_timeouts"]["slowest_input"] = repr(c[:120])
            continue
        t = time.perf_counter()
        alone = mathv.verify(g, c, f)
        dt = time.perf_counter() - t
        # at most one pool check, with its deadline
        assert dt <= MATH_VERIFY_TIMEOUT_S + MATH_SLACK_S, (dt, repr(c[:300]))
        if alone.status != "timeout":  # a deadline depends on the machine's load
            assert _v_tuple(alone) == _v_tuple(v), repr(c[:300])
        if dt > slowest:
            slowest, slow_in = dt, repr(c[:120])
    _note("math_verify", len(batch), slowest, slow_in)
    _note("math_batch", len(batch), wall)


@_settings(60, shrink=False)
@given(st.lists(st.tuples(completion(), finish), min_size=4, max_size=4), st.lists(answerish, min_size=4, max_size=4))
def test_math_extract_and_answer_key(outputs, answers):
    slowest, slow_in = 0.0, ""
    for c, f in outputs:
        t = time.perf_counter()
        ext = mathv.extract(c, f)
        dt = time.perf_counter() - t
        assert dt <= MATH_VERIFY_TIMEOUT_S + MATH_SLACK_S, (dt, repr(c[:300]))
        assert ext is None or isinstance(ext, str)
        if dt > slowest:
            slowest, slow_in = dt, repr(c[:120])
    _note("math_extract", len(outputs), slowest, slow_in)
    slowest = 0.0
    for a in answers:
        t = time.perf_counter()
        k1 = mathv.answer_key(a)
        dt = time.perf_counter() - t
        assert dt <= MATH_VERIFY_TIMEOUT_S + MATH_SLACK_S, repr(a[:200])
        assert k1 is None or isinstance(k1, str)
        if k1 is not None and not k1.startswith("tex:"):  # tex: is the timeout fallback
            assert mathv.answer_key(a) == k1
        slowest = max(slowest, dt)
    _note("math_answer_key", len(answers), slowest)
    DONE.add("math")


# ---------------------------------------------------------------------------------------------- in-process verifiers
def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t
    # linear work on a long output is fine; anything super-linear (a backtracking regex) blows this
    assert dt <= INPROC_LIMIT_S + 2e-6 * len(str(args[0])), (fn.__name__, dt, len(str(args[0])), repr(str(args[0])[:300]))
    return out, dt


BATCH = 40


@_settings(70)
@given(st.lists(st.tuples(st.sampled_from(list(choice.LETTERS)), completion(), finish), min_size=BATCH,
                max_size=BATCH))
def test_choice(batch):
    slowest = 0.0
    for g, c, f in batch:
        v, dt = _timed(choice.verify, g, c, f or "stop")
        assert v.status in STATUSES and v.status != ERROR
        assert v.answer is None or v.answer in choice.LETTERS
        assert _v_tuple(choice.verify(g, c, f or "stop")) == _v_tuple(v)
        letter, dt2 = _timed(choice.extract, c)
        assert letter == choice.extract(c)
        slowest = max(slowest, dt, dt2)
    many = choice.verify_many([g for g, _, _ in batch], [c for _, c, _ in batch], [f or "stop" for _, _, f in batch])
    assert [_v_tuple(v) for v in many] == [_v_tuple(choice.verify(g, c, f or "stop")) for g, c, f in batch]
    _note("choice", len(batch), slowest)
    DONE.add("choice")


@_settings(50)
@given(st.lists(completion(), min_size=BATCH, max_size=BATCH))
def test_code_extraction(batch):
    slowest = 0.0
    for c in batch:
        (prog, why), dt = _timed(code.extract_program, c)
        assert (prog is None) != (why is None) and why in (None, "truncated", "no_code")
        assert code.extract_program(c) == (prog, why)
        _, dt2 = _timed(code.has_unclosed_fence, c)
        if prog is not None:
            key, dt3 = _timed(code.program_key, prog)
            assert key == code.program_key(prog) and len(key) == 16
            dt2 += dt3
        slowest = max(slowest, dt, dt2)
    _note("code_extraction", len(batch), slowest)
    DONE.add("code")


json_like = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                         lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=4), ch, max_size=3),
                         max_leaves=12).map(lambda x: json.dumps(x))
output = st.one_of(soup, json_like, st.lists(st.floats(allow_nan=True).map(repr) | st.integers().map(str),
                                             max_size=20).map(" ".join))


@_settings(40)
@given(st.lists(st.tuples(output, output), min_size=BATCH, max_size=BATCH))
def test_output_comparison(pairs):
    slowest = 0.0
    for got, want in pairs:
        a, dt = _timed(code.compare_stdout, got, want)
        b, dt2 = _timed(code.compare_function, got, want)
        assert isinstance(a, bool) and isinstance(b, bool)
        assert (a, b) == (code.compare_stdout(got, want), code.compare_function(got, want))
        assert code.compare_stdout(got, got)  # an output always matches itself
        slowest = max(slowest, dt, dt2)
    _note("code_compare", len(pairs), slowest)
    DONE.add("compare")


@_settings(50)
@given(st.lists(st.tuples(completion(), st.sampled_from([None, THINK_PREFIX, "<think>"])), min_size=BATCH,
                max_size=BATCH))
def test_format(batch):
    slowest = 0.0
    for c, prefix in batch:
        for template in fmt.TEMPLATES:
            ok, dt = _timed(fmt.format_ok, c, template, prefix)
            assert ok == fmt.format_ok(c, template, prefix)
            assert fmt.format_reward(c, template, prefix) == (1.0 if ok else 0.0)
            slowest = max(slowest, dt)
        s, dt = _timed(fmt.tag_score, c, prefix)
        assert s in (0.0, 0.25, 0.5, 0.75, 1.0) and s == fmt.tag_score(c, prefix)
        slowest = max(slowest, dt)
    _note("format", len(batch), slowest)
    DONE.add("format")


@_settings(40)
@given(st.lists(st.tuples(completion(), st.sampled_from(sorted(language.SCRIPTS))), min_size=BATCH, max_size=BATCH))
def test_language(batch):
    slowest = 0.0
    for c, target in batch:
        share, dt = _timed(language.language_consistency, c, target)
        assert 0.0 <= share <= 1.0 and not pymath.isnan(share)
        assert share == language.language_consistency(c, target)
        mixed, dt2 = _timed(language.is_mixed_language, c, target)
        assert mixed == language.is_mixed_language(c, target)
        hit, total = language.language_counts(c, target)
        assert 0 <= hit <= total and (mixed == (total > 0 and hit / total < language.DEFAULT_MIXED_THRESHOLD))
        slowest = max(slowest, dt, dt2)
    _note("language", len(batch), slowest)
    DONE.add("language")


def test_zz_totals():
    """Runs last in this module: the case count over all verifiers (>= 10,000) and the slowest calls."""
    if DONE != FUZZ_TESTS:
        pytest.skip("only some fuzz tests ran")
    total = sum(s["cases"] for k, s in STATS.items() if k not in ("math_batch", "math_timeouts"))  # outputs generated, not calls
    print("\nfuzz:", json.dumps({"total_cases": total, **{k: {"cases": s["cases"], "slowest_s": round(s["slowest_s"], 4),
                                                              "wall_s": s["wall_s"], "slowest_input": s["slowest_input"]}
                                                          for k, s in STATS.items()}}, ensure_ascii=True))
    assert total >= 10_000, STATS
