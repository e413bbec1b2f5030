"""The math answer verifier: one copy, shared by evaluation (tasks/aime.py, tasks/math500.py), GRPO rewards
(training/rewards.py) and distillation filters (distill/).

API (in the spirit of Math-Verify's ``parse`` / ``verify``)::

    extract(completion, finish_reason=None) -> str | None       the final answer as text
    verify(gold, completion, finish_reason=None) -> Verdict     correct | incorrect | no_answer | truncated | timeout | error
    verify_many(golds, completions, finish_reasons=None) -> list[Verdict]     the same for a batch, on all cores
    answer_key(answer) -> str | None                            voting key: equivalent answers share it (cons@k)

How a completion is read (reasoning-model aware):
  1. Only text after the last ``</think>`` counts (``split_think``). A ``<think>`` never closed means the model ran
     out of tokens while thinking: ``truncated``, whatever the reasoning contains.
  2. The answer is, in this order: the content of the last ``<answer>...</answer>`` (R1-Zero template; the steps below
     then run inside it); a "final answer is $X$" / "Final Answer: $X$" written after the last box (X in ``$..$`` /
     ``\\(..\\)`` / ``\\[..\\]``: math-verify's top-priority form, e.g. Minerva's closing sentence after intermediate
     boxes); the last ``\\boxed{}`` / ``\\fbox{}`` / ``\\framebox{}`` (nested braces; a run of boxes separated by a
     connective, e.g. ``\\boxed{1} and \\boxed{2}``, is one list answer, with the same separator rule as
     latex2sympy2_extended, except that words of doubt between two boxes, ``\\boxed{12}, wait, actually \\boxed{14}``,
     make the later box replace the earlier one); and only when there is no box, a bare "answer is X" / "answer: X"
     (a box outranks a later bare phrase). Without any of these anchors, Math-Verify's own extraction (answer words,
     last LaTeX environment, last number) runs on the final text.
  3. ``finish_reason == "length"`` and no anchored answer: ``truncated`` (a number picked out of text cut off
     mid-sentence is not an answer the model gave).

How two answers are compared:
  * Fast path, in-process, no sympy: after normalisation (wrappers, ``\\left``/``\\right``, spacing, ``\\dfrac``, thousands
    separators, trailing text units, ``x =`` prefixes) identical strings are equal; integers, fractions, decimals,
    ``\\pm\\infty``, numerals in a base (``204_5``) and tuples / intervals of these compare exactly, decimals with
    Math-Verify's rounding rule (equal when exactly equal, different when further apart than 10^-precision, otherwise
    undecided). Anything undecided goes on.
  * Slow path: math-verify ``parse`` + ``verify`` (latex2sympy2_extended + sympy), run in a worker process of
    ``_pool.WorkerPool`` with a hard deadline; on the deadline the worker is killed and replaced and the verdict is
    ``timeout``. Results are memoised per (gold, answer, options), so the 64 samples of an AIME problem that agree
    cost one check. Before sympy's ``simplify``, plain expressions (no relation, set, percent or undefined function)
    are evaluated at probe points for their variables: values far apart there cannot simplify to equal, so
    math-verify's "not equal" is returned without the slowest step it has.

Voting keys (cons@k): numbers (integers, fractions, decimals) key on their exact value (``num:1/2`` for ``0.5``,
``1/2``, ``\\frac{1}{2}``); other expressions that sympy can evaluate key on their values at two fixed probe points to
12 significant digits (``val:...``), so ``(x+1)^2`` and ``x^2+2x+1``, ``2\\sqrt{2}`` and ``\\sqrt{8}``,
``\\frac{1}{\\sqrt2-1}`` and ``\\sqrt2+1`` each share one vote without a simplify; the rest keys on the sympy tree or
the normalised text. A rounded decimal (``0.333333``) keeps its own key apart from ``\\frac13``: equality up to
rounding is not transitive, so it cannot define vote groups.

Nothing here raises on model output: bytes, lone surrogates, megabyte strings, unbalanced braces and absurd exponents
all end as a verdict. The parent process never imports sympy.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Sequence

from ..config import MATH_VERIFY_TIMEOUT_S
from . import _pool
from .base import CORRECT, ERROR, INCORRECT, NO_ANSWER, TIMEOUT, TRUNCATED, Verdict, split_think

log = logging.getLogger("r1.verifiers.math")

DEFAULT_PRECISION = 6  # decimal places floats are rounded to before comparing (math-verify's float_rounding)
MATCH_TYPES = ("latex", "expr")  # math-verify extraction targets for the slow path
# Math-Verify's own extraction is regex-based over the whole text; beyond this many trailing characters of the
# final text a completion has long stopped being an answer.
FALLBACK_MAX_CHARS = 20_000
FAST_MAX_CHARS = 2_000  # longer answers skip the in-process canonicaliser (its regexes stay linear, but why bother)
KEY_MAX_CHARS = 10_000  # answer_key of anything longer is a hash of its text: no answer is that long
MEMO_SIZE = 200_000
POOL_MEMORY_MB = 4096  # per worker: 10^{10^{10}} should die of MemoryError, not take the machine with it


# ---------------------------------------------------------------------------------------------------------------
# Text hygiene
# ---------------------------------------------------------------------------------------------------------------
def _text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).decode("utf-8", "replace")
    if not isinstance(x, str):
        x = str(x)
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (surrogateescape-decoded bytes) would break every JSON writer later
        x = x.encode("utf-8", "replace").decode("utf-8")
    return x


# ---------------------------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------------------------
_BOX_CMD = re.compile(r"\\(?:boxed|fbox|framebox)\b")
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.S)
_BOX_SEPARATOR = re.compile(r"\b(?:and|or)\b|,|;")
# Between two boxes, words of a model doubting its answer: the later box replaces the earlier one instead of joining
# it in a list ("\boxed{12}, wait, actually \boxed{14}" reads 14; "\boxed{1} and \boxed{2}" stays "1, 2").
_CORRECTION = re.compile(
    r"\b(?:wait|actually|hmm+|oops|sorry|correction|rather|instead|mistakes?|mistaken|wrong|incorrect|error|"
    r"re-?check(?:ing|ed)?|double[- ]check(?:ing|ed)?|re-?evaluat\w*|reconsider\w*|scratch that|let me|"
    r"i made|miscalculat\w*)\b|\bno\b\s*[,.:;!]", re.I)
_ANSWER_OPEN = "<answer>"
_ANSWER_CLOSE = "</answer>"
_FINAL_ANSWER = re.compile(r"\banswer\s*(?:is|:)\s*:?", re.I)
_FINAL_WORD = re.compile(r"\bfinal\s*$", re.I)
_HOPE = re.compile(r"\.?\s*I hope it is correct\.?\s*$", re.I)
_ENV_START = re.compile(r"\s*(\$\$|\$|\\\(|\\\[)")
_ENV_END = {"$$": re.compile(r"(?<!\\)\$\$"), "$": re.compile(r"(?<!\\)\$"), "\\(": re.compile(r"\\\)"),
            "\\[": re.compile(r"\\\]")}
# A bare "answer is X" counts when X looks like an answer: has a digit or a command, or is one letter ("B", "(C)").
_SIMPLE_TOKEN = re.compile(r"[^\s$]{0,60}[\d\\][^\s$]{0,60}|\(?[A-Za-z]\)?")
_MAX_BOX_SCAN = 8  # boxes looked at from the end; keeps adversarial inputs linear


@dataclass(frozen=True)
class _Extraction:
    answer: str  # the answer text (box content, tag content, ...)
    by: str  # boxed | answer_tag | final_answer
    pred_text: str  # what the slow path parses


def _match_brace(text: str, open_pos: int, limit: int) -> int | None:
    """Index of the brace closing the one at ``open_pos`` (escaped ``\\{``, ``\\}`` do not count), or None."""
    depth = 0
    for m in _BRACE_TOKEN.finditer(text, open_pos, limit):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """The trailing run of boxes as (start, end, content), last box last; empty when there is none."""
    starts = [m for m in _BOX_CMD.finditer(text)][-_MAX_BOX_SCAN:]
    found: list[tuple[int, int, str]] = []
    limit = len(text)
    for m in reversed(starts):
        if m.start() >= limit:  # nested inside a box already taken
            continue
        i = m.end()
        while i < limit and text[i] in " \t":
            i += 1
        if i < limit and text[i] == "{":
            close = _match_brace(text, i, limit)
            if close is None:
                if found or "\n" in text[i:limit] or limit - i > 200:
                    continue  # an unclosed box: cut-off text, or a stray command in prose
                content, end = text[i + 1:limit].strip().rstrip("$").strip(), limit
            else:
                content, end = text[i + 1:close].strip(), close + 1
        else:  # "\boxed 5"
            tok = re.match(r"[^\s${}]+", text[i:limit])
            if not tok or i == m.end():
                continue
            content, end = tok.group(), i + tok.end()
        if not content:
            continue
        if found:
            between = text[end:found[-1][0]]
            if _CORRECTION.search(between):
                break  # the model took this answer back
            # latex2sympy2_extended's rule: boxes close together, or a little apart with a connective, form a list.
            if not (len(between) < 10 or (content != found[-1][2] and len(between) < 70 and _BOX_SEPARATOR.search(between))):
                break
        found.append((m.start(), end, content))
        limit = m.start()
    found.reverse()
    return found


def _unwrap_env(s: str) -> str | None:
    """Content of the math environment that starts ``s`` ($..$, $$..$$, \\(..\\), \\[..\\]), or None."""
    m = _ENV_START.match(s)
    if not m:
        return None
    close = _ENV_END[m.group(1)].search(s, m.end())
    if close is None:
        return None
    inner = s[m.end():close.start()].strip()
    return inner or None


def _final_answer(text: str, after: int) -> tuple[int, str, bool] | None:
    """(start, answer, final) of the last "answer is X" phrase after ``after``; ``final`` when it reads "final answer
    is" / "Final Answer:" with X in a math environment, math-verify's own top-priority form."""
    last = None
    for m in _FINAL_ANSWER.finditer(text, after):
        last = m
    if last is None:
        return None
    line_end = text.find("\n", last.end())
    # Capped: an answer is short, and the regexes below must not meet a megabyte of whitespace.
    rest = text[last.end(): min(line_end if line_end >= 0 else len(text), last.end() + 1000)]
    rest = _HOPE.sub("", rest).strip()
    inner = _unwrap_env(rest)
    final = bool(_FINAL_WORD.search(text, max(0, last.start() - 12), last.start()))
    if inner is not None:
        return last.start(), inner, final
    rest = rest.rstrip(".").strip()
    if _SIMPLE_TOKEN.fullmatch(rest):
        return last.start(), rest, False
    return None


def _anchored(text: str) -> _Extraction | None:
    boxes = _boxes(text)
    fa = _final_answer(text, boxes[-1][1] if boxes else 0)
    # A box outranks a later bare "the answer is: X" (the instruction asks for \boxed{}, and math-verify reads it so);
    # only math-verify's own top form, "final answer is $X$" (Minerva's "Final Answer: The final answer is $X$. I hope
    # it is correct."), written after the boxes, replaces them.
    if fa is not None and (fa[2] or not boxes):
        return _Extraction(fa[1], "final_answer", "\\boxed{" + fa[1] + "}")
    if not boxes:
        return None
    contents: list[str] = []
    for _, _, c in boxes:
        if not contents or contents[-1] != c:
            contents.append(c)
    answer = ", ".join(contents)
    pred = ", ".join("\\boxed{" + c + "}" for c in contents)
    return _Extraction(answer, "boxed", pred)


def _answer_region(final: str) -> tuple[str, bool] | None:
    """(content of the last <answer> tag, closed?) or None when there is no tag."""
    open_at = final.rfind(_ANSWER_OPEN)
    if open_at < 0:
        return None
    start = open_at + len(_ANSWER_OPEN)
    close = final.find(_ANSWER_CLOSE, start)
    if close < 0:
        return final[start:], False
    return final[start:close], True


def _extract(final: str, finish_reason: str | None) -> tuple[_Extraction | None, str | None]:
    """(anchored extraction, text for Math-Verify's fallback extraction). Both None: nothing to look at."""
    region = _answer_region(final)
    if region is not None:
        content, closed = region
        if not closed and finish_reason == "length":
            return None, None
        ext = _anchored(content)
        if ext is not None:
            return _Extraction(ext.answer, "answer_tag", ext.pred_text), None
        inner = content.strip()
        inner = _unwrap_env(inner) or inner
        if inner and len(inner) <= 200 and "\n" not in inner and not re.search(r"[A-Za-z]{4,}\s+[A-Za-z]{2,}", inner):
            return _Extraction(inner, "answer_tag", "\\boxed{" + inner + "}"), None
        return None, (content if content.strip() else None)
    ext = _anchored(final)
    if ext is not None:
        return ext, None
    return None, (final if final.strip() else None)


# ---------------------------------------------------------------------------------------------------------------
# Fast path: canonical values without sympy
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Num:
    value: Fraction
    exact: bool  # False for decimals: math-verify compares those after rounding

    @property
    def key(self) -> str:
        return f"num:{self.value}"


@dataclass(frozen=True)
class _Based:
    """A numeral with an explicit base (``204_5``): latex2sympy reads the subscript as a variable index and would
    equate ``52_8`` with ``52_11``; two such numerals are equal only as the same digits in the same base."""

    digits: str
    base: int

    @property
    def key(self) -> str:
        return f"base:{self.digits}_{self.base}"


@dataclass(frozen=True)
class _Inf:
    sign: int

    @property
    def key(self) -> str:
        return "num:inf" if self.sign > 0 else "num:-inf"


@dataclass(frozen=True)
class _Seq:
    open: str
    close: str
    items: tuple

    @property
    def key(self) -> str:
        return "seq:" + self.open + ",".join(i.key for i in self.items) + self.close


@dataclass(frozen=True)
class _Huge:
    """An integer power tower or factorial too large to write out (``10^{10^{10}}``, ``7^{99999999}``,
    ``(10^{100})!``): sympy would try to and hit the deadline. ``log10`` is its size in digits (inf beyond floats);
    it can equal no plain number, so against one it is settled here."""

    text: str
    log10: float

    @property
    def key(self) -> str:
        return "huge:" + self.text


@dataclass(frozen=True)
class _Canon:
    norm: str  # normalised text ("" when unusable)
    value: Any  # _Num | _Inf | _Seq | _Huge | None
    assignment: bool = False  # "x = 5": math-verify treats gold equations differently, so gold ones stay slow

    @property
    def key(self) -> str | None:
        return self.value.key if self.value is not None else None


_WRAPPERS = [re.compile(r"^\$\$(.*)\$\$$", re.S), re.compile(r"^\$(.*)\$$", re.S),
             re.compile(r"^\\\((.*)\\\)$", re.S), re.compile(r"^\\\[(.*)\\\]$", re.S)]
_NORM_DROP = re.compile(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\displaystyle|\\[!,;:> ]|~|\\\$|\s+")
_FRAC_VARIANT = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_UNIT_TAIL = re.compile(r"^(.*?[\d}])\\(?:text|textnormal|textrm|mbox|mathrm)\{[A-Za-z.]*\}(?:\^\{?\d\}?)?$")
_ASSIGN = re.compile(r"^([A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?)=([^=<>]+)$")
_INT = re.compile(r"[+-]?\d{1,60}")
_THOUSANDS = re.compile(r"([+-]?[1-9]\d{0,2}(?:,\d{3})+)(\.\d{1,30})?")
_DECIMAL = re.compile(r"[+-]?\d{0,40}\.\d{1,40}")
_FRACS = [
    re.compile(r"([+-]?)\\frac\{([+-]?\d{1,40})\}\{([+-]?\d{1,40})\}"),
    re.compile(r"([+-]?)\\frac(\d)(\d)"),
    re.compile(r"([+-]?)\\frac\{([+-]?\d{1,40})\}(\d)"),
    re.compile(r"([+-]?)\\frac(\d)\{([+-]?\d{1,40})\}"),
    re.compile(r"([+-]?)(\d{1,40})/(\d{1,40})"),
]
_INFTY = re.compile(r"([+-]?)\\infty")
_BASED = re.compile(r"([0-9A-Za-z]{1,40})_\{?(\d{1,2})\}?")
_SIG_DIGITS_FLOAT = 15  # sympy Floats carry ~15 significant digits; beyond that rounding decides, not us


def _strip_wrappers(s: str) -> str:
    for _ in range(4):
        before = s
        s = s.strip()
        for rx in _WRAPPERS:
            m = rx.match(s)
            if m and m.group(1).strip():
                s = m.group(1)
        m = _BOX_CMD.match(s)
        if m:
            i = m.end()
            while i < len(s) and s[i] in " \t":
                i += 1
            if i < len(s) and s[i] == "{" and _match_brace(s, i, len(s)) == len(s) - 1:
                s = s[i + 1:-1]
        if s == before:
            break
    return s.strip()


def _normalise(s: str) -> str:
    s = _strip_wrappers(s)
    s = _NORM_DROP.sub("", s)
    s = _FRAC_VARIANT.sub(r"\\frac", s)
    s = s.replace("{,}", ",")
    s = s.rstrip(".")
    return s


def _num(t: str) -> Any:
    while len(t) > 2 and t[0] == "(" and t[-1] == ")" and "," not in t:  # "(5)" is 5 to latex2sympy too
        t = t[1:-1]
    if _INT.fullmatch(t):
        return _Num(Fraction(int(t)), True)
    m = _THOUSANDS.fullmatch(t)
    if m:
        whole = m.group(1).replace(",", "")
        if m.group(2):
            return _Num(Fraction(whole + m.group(2)), False)
        return _Num(Fraction(int(whole)), True)
    if _DECIMAL.fullmatch(t):
        if len(t.strip("+-.0").replace(".", "")) > _SIG_DIGITS_FLOAT:
            return None
        return _Num(Fraction(t), False)
    for rx in _FRACS:
        m = rx.fullmatch(t)
        if m:
            num, den = int(m.group(2)), int(m.group(3))
            if den == 0:
                return None  # zoo: math-verify refuses to compare it
            v = Fraction(num, den)
            return _Num(-v if m.group(1) == "-" else v, True)
    m = _INFTY.fullmatch(t)
    if m:
        return _Inf(-1 if m.group(1) == "-" else 1)
    m = _BASED.fullmatch(t)
    if m and 2 <= int(m.group(2)) <= 36:
        digits, base = m.group(1).upper().lstrip("0") or "0", int(m.group(2))
        try:
            int(digits, base)
        except ValueError:
            return None
        return _Based(digits, base)
    return None


def _split_top(s: str) -> list[str] | None:
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return None
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        return None
    parts.append("".join(cur))
    return parts


def _value(t: str) -> Any:
    v = _num(t)
    if v is not None:
        return v
    if len(t) >= 5 and t[0] in "([" and t[-1] in ")]":
        parts = _split_top(t[1:-1])
        if not parts or len(parts) < 2:
            return None
        if (t[0] == "[" or t[-1] == "]") and len(parts) != 2:
            return None  # [1,2,3] is a list/matrix to latex2sympy, not something we can settle here
        items = tuple(_num(p) for p in parts)
        if any(i is None for i in items):
            return None
        return _Seq(t[0], t[-1], items)
    return None


HUGE_LOG10 = 1e6  # a million digits: sympy still writes 2^{10^6} out in milliseconds, 7^{10^8} it cannot
_LOG10_E = 0.4342944819032518
_DIGITS = re.compile(r"\d{1,400}")


def _tower_log10(t: str) -> float | None:
    """log10 of a positive integer written with digits, ``^{...}`` (or one-digit ``^d``), ``!``, parentheses and
    braces only; None for anything else. inf when the size itself overflows a float."""
    pos = 0

    def atom() -> float | None:
        nonlocal pos
        if pos < len(t) and t[pos] in "({":
            close = ")" if t[pos] == "(" else "}"
            pos += 1
            v = expr()
            if v is None or pos >= len(t) or t[pos] != close:
                return None
            pos += 1
        else:
            m = _DIGITS.match(t, pos)
            if not m or int(m.group()) == 0:
                return None  # 0 and 0^x are not huge; leave them to the rules
            pos = m.end()
            v = math.log10(int(m.group()))
        while pos < len(t) and t[pos] == "!":
            pos += 1
            if v < 2.2:  # n! for n < ~160 is small enough to compute
                return None
            v = 10 ** v * (v - _LOG10_E) if v < 300 else math.inf  # Stirling: log10 n! ~ n (log10 n - log10 e)
        return v

    def expr() -> float | None:
        nonlocal pos
        base = atom()
        if base is None:
            return None
        if pos < len(t) and t[pos] == "^":
            pos += 1
            if pos < len(t) and t[pos].isdigit():
                e_log = math.log10(int(t[pos])) if t[pos] != "0" else None
                pos += 1
            elif pos < len(t) and t[pos] == "{":
                e_log = atom()
            else:
                return None
            if e_log is None or base == 0.0:
                return None  # x^0 and 1^x are 1
            if e_log >= 300:
                return math.inf
            return base * 10 ** e_log
        return base

    if len(t) > 200 or not t or t[0] in "+-":
        return None
    try:
        v = expr()
    except (OverflowError, ValueError):
        return None
    return v if pos == len(t) else None


def _huge(t: str) -> _Huge | None:
    if "^" not in t and "!" not in t:
        return None
    size = _tower_log10(t)
    return _Huge(t, size) if size is not None and size > HUGE_LOG10 else None


@lru_cache(maxsize=65536)
def _canon(answer: str) -> _Canon:
    if len(answer) > FAST_MAX_CHARS:
        return _Canon("", None)
    norm = _normalise(answer)
    if not norm:
        return _Canon("", None)
    t = norm
    assignment = False
    m = _ASSIGN.match(t)
    if m:
        t, assignment = m.group(2), True
    u = _UNIT_TAIL.match(t)
    if u and _num(u.group(1)) is not None:
        t = u.group(1)
    if "%" in t or "\\circ" in t or "°" in t:
        return _Canon(norm, None, assignment)  # percent and degree conventions: leave to math-verify
    value = _value(t)
    return _Canon(norm, value if value is not None else _huge(t), assignment)


def _cmp_num(a: _Num, b: _Num, precision: int) -> bool | None:
    if a.value == b.value:
        return True
    if a.exact and b.exact:
        return False
    # Rounded to `precision` places, values further apart than 10^-precision cannot agree; closer ones may.
    if abs(a.value - b.value) > Fraction(1, 10 ** precision):
        return False
    return None


def _cmp(a: Any, b: Any, precision: int) -> bool | None:
    if isinstance(a, _Num) and isinstance(b, _Num):
        return _cmp_num(a, b, precision)
    if isinstance(a, _Inf) and isinstance(b, _Inf):
        return a.sign == b.sign
    if isinstance(a, _Based) and isinstance(b, _Based):
        return a == b
    if {type(a), type(b)} in ({_Num, _Inf}, {_Num, _Huge}, {_Inf, _Huge}):
        return False  # a plain number has at most ~60 digits (the patterns above), a huge one over HUGE_LOG10
    if isinstance(a, _Seq) and isinstance(b, _Seq):
        if (a.open, a.close) != (b.open, b.close):
            return None
        if len(a.items) != len(b.items):
            return False
        out: bool | None = True
        for x, y in zip(a.items, b.items):
            r = _cmp(x, y, precision)
            if r is False:
                return False
            if r is None:
                out = None
        return out
    return None


def _fast(gold: _Canon, pred: _Canon, precision: int) -> bool | None:
    if gold.norm and gold.norm == pred.norm:
        return True
    if gold.assignment or gold.value is None or pred.value is None:
        return None
    return _cmp(gold.value, pred.value, precision)


# ---------------------------------------------------------------------------------------------------------------
# Slow path: math-verify in pool workers
# ---------------------------------------------------------------------------------------------------------------
_WORKER_CACHE: dict = {}


def _configs(match: tuple[str, ...]):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    cfg = _WORKER_CACHE.get(("cfg", match))
    if cfg is None:
        # Boxed first: the paper's instruction asks for \boxed{}; math-verify's default ranks it after "final answer".
        cfg = [LatexExtractionConfig(boxed_match_priority=0) if m == "latex" else ExprExtractionConfig() for m in match]
        _WORKER_CACHE[("cfg", match)] = cfg
    return cfg


def _safe_to_evaluate(e) -> bool:
    """doit() is cheap unless it meets a huge power (10^{10^{10}}) or turns a relation into True/False."""
    import sympy
    from sympy.core.relational import Relational
    from sympy.logic.boolalg import BooleanAtom, BooleanFunction

    # Not sympy's Boolean: Symbol derives from it, and symbols are fine.
    logic = (Relational, BooleanFunction, BooleanAtom)
    if not isinstance(e, sympy.Basic) or isinstance(e, logic + (sympy.Set,)):
        return False
    for node in sympy.preorder_traversal(e):
        if isinstance(node, logic + (sympy.Integral, sympy.Sum, sympy.Product, sympy.Limit, sympy.Derivative)):
            return False
        if isinstance(node, sympy.Pow):
            x = node.exp
            if x.has(sympy.Pow) or any(abs(int(i)) > 64 for i in x.atoms(sympy.Integer)):
                return False
        if isinstance(node, sympy.Integer) and abs(int(node)) > 10 ** 30:
            return False
    return True


def _sym_key(parsed: list) -> str | None:
    import sympy

    if not parsed:
        return None
    e = parsed[0]
    if isinstance(e, str):
        n = _normalise(e)
        return "tex:" + n if n else None
    try:
        if _safe_to_evaluate(e):
            # latex2sympy builds unevaluated trees: \frac{\sqrt3}{2} and \frac12\sqrt{3} only meet after doit().
            e = e.doit()
        if isinstance(e, sympy.Rational):
            return f"num:{Fraction(int(e.p), int(e.q))}"
        if isinstance(e, sympy.Float):
            return f"num:{Fraction(str(e)).limit_denominator(10 ** 12)}"
        v = _value_key(e)
        if v is not None:
            return v
        s = sympy.srepr(e)
    except Exception:  # noqa: BLE001 - a key is a nicety; the verdict stands without it
        return None
    return "sym:" + (s if len(s) <= 400 else hashlib.sha1(s.encode()).hexdigest())


def _probe_value(name: str, point: int) -> float:
    """A value for variable ``name`` at probe point 0 (positive) or 1 (negative), fixed by the name alone: the same
    expression in other variable names must not share a key (``2x`` vs ``2y``), and a negative point keeps
    ``\\sqrt{x^2}`` apart from ``x``."""
    h = int.from_bytes(hashlib.sha256(f"{name}:{point}".encode()).digest()[:8], "big") / 2 ** 64
    return (0.5 + 2.0 * h) * (1 if point == 0 else -1)


def _value_key(e) -> str | None:
    """Voting key of a plain expression from its values at two probe points, to 12 significant digits: expressions
    that are equal as functions (``(x+1)^2`` and ``x^2+2x+1``, ``\\frac{1}{\\sqrt2-1}`` and ``\\sqrt2+1``) share it,
    which their sympy trees do not; two different ones share it only if they agree to 12 digits at both points.
    Cheap: two substitutions, no simplify. None when the expression is not plain or does not evaluate to a finite
    number (then the caller keys on the tree)."""
    import sympy

    if not _plain_expr(e):
        return None
    names = sorted({s.name for s in e.free_symbols})
    if len(names) > 6:
        return None
    parts = []
    for point in ((0, 1) if names else (0,)):
        val = {n: sympy.Float(_probe_value(n, point), 30) for n in names}
        try:
            z = complex(sympy.N(e.subs({s: val[s.name] for s in e.free_symbols}), 30))
        except (TypeError, ValueError, ArithmeticError, AttributeError):
            return None
        if any(x != x or abs(x) == float("inf") for x in (z.real, z.imag)):
            return None
        snap = 1e-12 * max(abs(z), 1.0)  # 0 computed as 1e-31 must not key apart from 0
        re_, im = (0.0 if abs(z.real) < snap else z.real), (0.0 if abs(z.imag) < snap else z.imag)
        parts.append(f"{re_:.11e},{im:.11e}")
    return "val:" + ";".join(parts)


def _answer_text(parsed: list) -> str | None:
    for x in reversed(parsed):
        if isinstance(x, str) and x.strip():
            return x.strip()
    return str(parsed[0])[:500] if parsed else None


def _parse_gold(gold_text: str, match: tuple[str, ...]):
    from math_verify import parse

    k = ("gold", gold_text, match)
    g = _WORKER_CACHE.get(k)
    if g is None:
        if len(_WORKER_CACHE) > 20_000:
            _WORKER_CACHE.clear()
        g = parse(gold_text, _configs(match), parsing_timeout=None)
        _WORKER_CACHE[k] = g
    return g


def _plain_expr(e) -> bool:
    """An expression math-verify can only equate with another through evalf / simplify (no relation, set, tuple,
    matrix, lone symbol, percent or undefined function), and that is safe to evaluate."""
    import sympy
    from sympy.core.function import AppliedUndef
    from sympy.logic.boolalg import Boolean

    return (isinstance(e, sympy.Expr) and not isinstance(e, (sympy.Tuple, sympy.Set, Boolean, sympy.Symbol))
            and not e.has(sympy.UnevaluatedExpr) and not e.atoms(AppliedUndef) and _safe_to_evaluate(e))


_PROBE_POINTS = ((0.7317, 1.3179, 1.9127, 0.5413, 2.2361, 1.1071), (1.6183, 0.8807, 1.2601, 2.0301, 0.6637, 1.4479))


def _values_at_probes(g, p) -> list[tuple[complex, complex]] | None:
    import sympy

    names = sorted({s.name for s in g.free_symbols | p.free_symbols})
    if len(names) > 6:
        return None
    out = []
    for point in (_PROBE_POINTS if names else _PROBE_POINTS[:1]):
        val = {n: sympy.Float(v, 30) for n, v in zip(names, point)}
        try:
            a = complex(sympy.N(g.subs({s: val[s.name] for s in g.free_symbols}), 30))
            b = complex(sympy.N(p.subs({s: val[s.name] for s in p.free_symbols}), 30))
        except (TypeError, ValueError, ArithmeticError, AttributeError):
            return None
        out.append((a, b))
    return out


def _clearly_different(gold: list, pred: list, precision: int, strict: bool) -> bool:
    """True when math-verify is bound to say "not equal" for every (gold, pred) pairing: both plain expressions whose
    values differ at a probe point by far more than rounding and evaluation error. math-verify would only learn
    that after simplify(gold - pred), the slowest step it has; a zero difference is never claimed here."""
    if not strict:
        return False  # non-strict renames variables by position first
    for g in gold:
        for p in pred:
            if isinstance(g, str) or isinstance(p, str):
                if isinstance(g, str) and isinstance(p, str) and g.strip() == p.strip():
                    return False
                continue  # math-verify never equates a string with an expression
            if not (_plain_expr(g) and _plain_expr(p)):
                return False
            vals = _values_at_probes(g, p)
            if not vals:
                return False
            apart = False
            for a, b in vals:
                if any(x != x or abs(x) == float("inf") for x in (a.real, a.imag, b.real, b.imag)):
                    return False
                diff = abs(a - b)
                if diff > 10.0 ** -precision and diff > 1e-12 * max(abs(a), abs(b), 1.0):
                    apart = True
            if not apart:
                return False
    return True


def _work(kind: str, payload: tuple) -> tuple:
    """Runs in a pool worker. No time limit of its own: the pool kills this process at the deadline."""
    from math_verify import parse, verify as mv_verify

    if kind == "key":
        (pred_text, match) = payload
        p = parse(pred_text, _configs(match), parsing_timeout=None)
        return (_sym_key(p), _answer_text(p))
    if kind == "gold_key":  # the answer is the gold answer, as text: its key is the gold's
        (gold_text, match) = payload
        return (_sym_key(_parse_gold(gold_text, match)), None)
    gold_text, pred_text, match, precision, strict, set_rel = payload
    g = _parse_gold(gold_text, match)
    if not g:
        return ("gold_unparsed", None, None)
    p = parse(pred_text, _configs(match), parsing_timeout=None)
    if not p:
        return ("no_answer", None, None)
    if _clearly_different(g, p, precision, strict):
        ok = False
    else:
        ok = mv_verify(g, p, float_rounding=precision, strict=strict, allow_set_relation_comp=set_rel,
                       timeout_seconds=None)
    return ("correct" if ok else "incorrect", _sym_key(p), _answer_text(p))


def _install_two_stage_parsing() -> None:
    """ANTLR's documented two-stage strategy for latex2sympy2_extended's parser: predict in SLL mode first, which is
    exact whenever it reports no syntax error (ANTLR's PredictionMode contract: same tree as LL, or an error), and
    re-parse in full LL mode only when it does. Same results, about 1.4x faster checks. Workers only; if the
    dependency's internals ever differ, nothing is changed and parsing just stays at LL speed."""
    try:
        from antlr4.atn.PredictionMode import PredictionMode
        from latex2sympy2_extended import latex2sympy2 as l2s

        cls = l2s._Latex2Sympy
        create, parse = cls.create_parser, cls.parse
    except (ImportError, AttributeError):
        return
    if getattr(cls, "_r1_two_stage", False):
        return

    def create_parser(self, latex_str):
        parser = create(self, latex_str)
        if getattr(self, "_r1_sll", False):
            parser._interp.predictionMode = PredictionMode.SLL
        return parser

    def parse_two_stage(self, latex_str):
        self._r1_sll = True
        try:
            return parse(self, latex_str)
        except Exception:  # noqa: BLE001 - a syntax error in SLL mode may be LL's success: retry below
            pass
        finally:
            self._r1_sll = False
        return parse(self, latex_str)

    cls.create_parser, cls.parse, cls._r1_two_stage = create_parser, parse_two_stage, True


_WARMED = False
# Answers in the shapes models write; parsing them fills ANTLR's prediction cache before any timed check.
_WARM_ANSWERS = (
    "\\frac{1}{2}", "0.5", "3\\sqrt{13}", "\\left( 3, \\frac{\\pi}{2} \\right)", "[-2, 7)", "(-\\infty, 0] \\cup (1, \\infty)",
    "x^2 + 2x - 1", "\\frac{x+1}{x-1}", "y = 2x + 3", "x \\in [-2,7]", "1 \\pm \\sqrt{19}", "\\{1, 2, 3\\}", "90^\\circ",
    "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "\\text{(C)}", "2 \\sin b \\cos a", "28\\%", "\\$18.90", "204_5",
    "6+9i", "\\dfrac{\\sqrt{3}}{2}", "10^{-3}", "\\log_2 8", "|x - 1| < 3", "\\cot x", "1,2", "a_3 = 2, a_{37} = 19",
    "f(x) = x^2", "\\sum_{k=1}^{n} k", "e^{i\\pi}", "\\binom{5}{2}", "3!", "\\lfloor 2.5 \\rfloor", "0.\\overline{3}",
)


def _warm_worker() -> None:
    """Called once in every new worker (and in the fork server that spawns them): quiet math-verify's per-call
    warnings, switch to two-stage parsing and warm the parser, so no check spends its time budget on start-up."""
    global _WARMED
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _install_two_stage_parsing()
    if _WARMED:  # forked from a warmed fork server
        return
    for a in _WARM_ANSWERS:
        _work("check", ("\\boxed{" + a + "}", "\\boxed{" + a + " + 1}", MATCH_TYPES, DEFAULT_PRECISION, True, False))
    _WORKER_CACHE.clear()
    _WARMED = True


POOL_PRELOAD = ("math_verify", "harness.verifiers.math", "harness.verifiers.math:_warm_worker")


def pool() -> _pool.WorkerPool:
    """The process-wide math worker pool (one worker per core, started on first use)."""
    return _pool.shared_pool("math", preload=POOL_PRELOAD, memory_limit_mb=POOL_MEMORY_MB)


class _Memo:
    def __init__(self, size: int):
        self.size, self.d, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, k):
        with self.lock:
            v = self.d.get(k)
            if v is not None:
                self.d.move_to_end(k)
            return v

    def put(self, k, v) -> None:
        with self.lock:
            self.d[k] = v
            self.d.move_to_end(k)
            while len(self.d) > self.size:
                self.d.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.d.clear()


_MEMO = _Memo(MEMO_SIZE)
_MEMO_ENABLED = True


def set_memo(enabled: bool) -> None:
    """Turn result memoisation on or off (benchmarks measure both); clears it either way."""
    global _MEMO_ENABLED
    _MEMO_ENABLED = enabled
    _MEMO.clear()


def _run_jobs(jobs: dict[tuple, tuple], timeout: float) -> dict[tuple, tuple]:
    """{job: (status, value)}; status ok | timeout | error. Memoised: ok and timeout are deterministic enough."""
    out, todo = {}, []
    for job in jobs:
        hit = _MEMO.get((job, timeout)) if _MEMO_ENABLED else None
        if hit is not None:
            out[job] = hit
        else:
            todo.append(job)
    if todo:
        # Jobs about the same gold answer go to the same worker, which parsed that gold already.
        results = pool().map(_work, todo, timeout=timeout, affinity=[job[1][0] for job in todo])
        for job, r in zip(todo, results):
            if r.status == _pool.OK:
                res = ("ok", r.value)
            elif r.status == _pool.TIMEOUT:
                res = ("timeout", timeout)
            else:
                res = ("error", r.error)
            out[job] = res
            if _MEMO_ENABLED and res[0] != "error" and sum(len(x) for x in job[1] if isinstance(x, str)) <= 20_000:
                _MEMO.put((job, timeout), res)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Opts:
    precision: int = DEFAULT_PRECISION
    strict: bool = True
    allow_set_relation_comp: bool = False
    match: tuple[str, ...] = MATCH_TYPES


_GOLD_DELIMS = re.compile(r"(?<!\\)\$|\\boxed|\\fbox|\\\(|\\\[")


def _gold_text(gold: str, match: tuple[str, ...]) -> str:
    # A bare answer ("\frac{1}{2}", MATH's "\left( 3, \frac{\pi}{2} \right)") needs a LaTeX anchor for math-verify.
    if "latex" in match and not _GOLD_DELIMS.search(gold):
        return "\\boxed{" + gold + "}"
    return gold


@dataclass
class _Pending:
    answer: str | None
    by: str
    job: tuple | None  # the check to run; None when only the key is missing
    key_job: tuple | None
    fast: bool | None  # the fast path's decision when only the key was missing
    finish_reason: str | None


def _prepare(gold: Any, completion: Any, finish_reason: str | None, o: _Opts, want_key: bool) -> Verdict | _Pending:
    gold_s = _text(gold).strip()
    if not gold_s:
        return Verdict(ERROR, detail={"reason": "empty gold answer"})
    _, final = split_think(_text(completion))
    if final is None:
        return Verdict(TRUNCATED, detail={"reason": "unclosed <think>"})
    ext, fallback_text = _extract(final, finish_reason)
    if ext is None:
        if finish_reason == "length":
            return Verdict(TRUNCATED, detail={"reason": "length, no answer"})
        if fallback_text is None:
            return Verdict(NO_ANSWER)
        job = ("check", (_gold_text(gold_s, o.match), fallback_text[-FALLBACK_MAX_CHARS:], o.match, o.precision,
                         o.strict, o.allow_set_relation_comp))
        return _Pending(None, "fallback", job, None, None, finish_reason)
    g, p = _canon(gold_s), _canon(ext.answer)
    decision = _fast(g, p, o.precision)
    if decision is not None:
        if p.key is not None or not want_key:
            key = p.key or ("tex:" + p.norm if p.norm else None)
            return Verdict(CORRECT if decision else INCORRECT, ext.answer, key, {"path": "fast", "by": ext.by})
        key_job = ("gold_key", (_gold_text(gold_s, o.match), o.match)) if decision else ("key", (ext.pred_text, o.match))
        return _Pending(ext.answer, ext.by, None, key_job, decision, finish_reason)
    job = ("check", (_gold_text(gold_s, o.match), ext.pred_text, o.match, o.precision, o.strict,
                     o.allow_set_relation_comp))
    return _Pending(ext.answer, ext.by, job, None, None, finish_reason)


def _finish(pd: _Pending, res: dict[tuple, tuple], timeout: float) -> Verdict:
    fallback_key = ("tex:" + _canon(pd.answer).norm) if pd.answer and _canon(pd.answer).norm else None
    if pd.job is None:  # fast decision, key from sympy
        status, value = res[pd.key_job]
        key = value[0] if status == "ok" and value[0] else fallback_key
        return Verdict(CORRECT if pd.fast else INCORRECT, pd.answer, key, {"path": "fast", "by": pd.by})
    status, value = res[pd.job]
    if status == "timeout":
        return Verdict(TIMEOUT, pd.answer, fallback_key, {"path": "sympy", "by": pd.by, "timeout_s": timeout})
    if status == "error":
        return Verdict(ERROR, pd.answer, fallback_key, {"path": "sympy", "by": pd.by, "error": str(value)[:300]})
    outcome, key, parsed_answer = value
    answer = pd.answer if pd.answer is not None else parsed_answer
    if outcome == "gold_unparsed":
        return Verdict(ERROR, answer, None, {"path": "sympy", "by": pd.by, "reason": "gold answer not parseable"})
    if outcome == "no_answer":
        return Verdict(TRUNCATED if pd.finish_reason == "length" else NO_ANSWER, None, None,
                       {"path": "sympy", "by": pd.by})
    key = _fast_key(answer) or key or fallback_key
    return Verdict(CORRECT if outcome == "correct" else INCORRECT, answer, key, {"path": "sympy", "by": pd.by})


def _fast_key(answer: str | None) -> str | None:
    return _canon(answer).key if answer else None


def verify_many(golds: Sequence[Any], completions: Sequence[Any], finish_reasons: Sequence[str | None] | None = None,
                *, timeout: float = MATH_VERIFY_TIMEOUT_S, precision: int = DEFAULT_PRECISION, strict: bool = True,
                allow_set_relation_comp: bool = False, match: Sequence[str] = MATCH_TYPES,
                keys: bool = True) -> list[Verdict]:
    """Verdicts for (gold, completion) pairs. Fast path in-process first; the rest on the worker pool, in parallel,
    each check with a hard ``timeout`` in seconds. ``keys=False`` skips computing voting keys that need sympy
    (rewards do not vote). Never raises on model output."""
    n = len(completions)
    if len(golds) != n or (finish_reasons is not None and len(finish_reasons) != n):
        raise ValueError("verify_many: golds, completions and finish_reasons must have the same length")
    o = _Opts(int(precision), bool(strict), bool(allow_set_relation_comp), tuple(match))
    out: list[Verdict | None] = [None] * n
    pending: dict[int, _Pending] = {}
    jobs: dict[tuple, None] = {}
    for i in range(n):
        fr = finish_reasons[i] if finish_reasons is not None else None
        try:
            r = _prepare(golds[i], completions[i], fr, o, keys)
        except Exception as e:  # noqa: BLE001 - a bug here must become a counted `error`, not a crashed run
            log.exception("math verifier: preparing sample %d failed", i)
            r = Verdict(ERROR, detail={"error": f"{type(e).__name__}: {e}"[:300]})
        if isinstance(r, Verdict):
            out[i] = r
        else:
            pending[i] = r
            jobs[r.job or r.key_job] = None
    if jobs:
        res = _run_jobs(jobs, timeout)
        for i, pd in pending.items():
            try:
                out[i] = _finish(pd, res, timeout)
            except Exception as e:  # noqa: BLE001
                log.exception("math verifier: finishing sample %d failed", i)
                out[i] = Verdict(ERROR, pd.answer, detail={"error": f"{type(e).__name__}: {e}"[:300]})
    return out  # type: ignore[return-value]


def verify(gold: Any, completion: Any, finish_reason: str | None = None, **options) -> Verdict:
    """Verdict for one completion against one gold answer; options as for ``verify_many``."""
    return verify_many([gold], [completion], [finish_reason], **options)[0]


def extract(completion: Any, finish_reason: str | None = None, *, timeout: float = MATH_VERIFY_TIMEOUT_S) -> str | None:
    """The final answer of a completion as text, or None (no answer, unclosed <think>, or cut off by the length
    limit before answering). Uses math-verify's extraction on the pool when no anchor is present."""
    try:
        _, final = split_think(_text(completion))
        if final is None:
            return None
        ext, fallback_text = _extract(final, finish_reason)
        if ext is not None:
            return ext.answer
        if fallback_text is None or finish_reason == "length":
            return None
        job = ("key", (fallback_text[-FALLBACK_MAX_CHARS:], MATCH_TYPES))
        status, value = _run_jobs({job: None}, timeout)[job]
        return value[1] if status == "ok" else None
    except Exception:  # noqa: BLE001
        log.exception("math verifier: extract failed")
        return None


def answer_key(answer: Any, *, timeout: float = MATH_VERIFY_TIMEOUT_S) -> str | None:
    """Voting key of an extracted answer: ``1/2``, ``0.5``, ``\\frac{1}{2}`` and ``\\dfrac12`` all give ``num:1/2``.
    Answers the fast path cannot canonicalise get a sympy key (``sym:<srepr>``) from the pool, or ``tex:<normalised
    text>`` if that times out. None for no answer."""
    try:
        s = _text(answer).strip()
        if not s:
            return None
        if len(s) > KEY_MAX_CHARS:
            return "tex#" + hashlib.sha1(s.encode("utf-8")).hexdigest()
        c = _canon(s)
        if c.key is not None:
            return c.key
        job = ("key", ("\\boxed{" + s + "}", MATCH_TYPES))
        status, value = _run_jobs({job: None}, timeout)[job]
        if status == "ok" and value[0]:
            return value[0]
        return "tex:" + c.norm if c.norm else None
    except Exception:  # noqa: BLE001
        log.exception("math verifier: answer_key failed")
        return None
