"""Multiple-choice answer extraction (GPQA, MMLU): one letter A-D from a completion.

The paper scores GPQA and MMLU with simple-evals, whose extraction is the single pattern
``(?i)Answer[ \\t]*:[ \\t]*\\$?([A-D])\\$?``. That pattern runs first (``strict``). Models that ignore the requested
format are common at small scale, so a fixed ladder of fallbacks follows; the method that produced the letter goes
into ``Verdict.detail["extraction"]`` and tasks count each method in results.json, so a score that leans on
fallbacks is visible next to the strict-only score.

Ladder (first that yields a letter wins; within one method the *last* occurrence wins, because the prompt asks for
the answer on the last line and a reasoning summary often names options before concluding):

``strict``       simple-evals' pattern on the final text, as-is
``normalized``   the same pattern after removing markdown / LaTeX wrappers the way simple-evals' ``normalize_response``
                 does (``**Answer:** B``, ``Answer: $\\boxed{B}$``, ``Answer: \\text{B}``)
``answer_tag``   the R1-Zero template's ``<answer>C</answer>`` (also ``<answer>(C)</answer>``)
``boxed``        ``\\boxed{C}``, ``\\boxed{(C)}``, ``\\boxed{\\text{C}}``
``answer_is``    "the answer is (C)", "correct option is C", "answer is: **C**", "Answer: (C)"
``last_line``    a last line that is nothing but a letter: ``C``, ``(C)``, ``**C.**``, ``Option C``

Deviations from simple-evals (which takes ``re.search``, the first match of the whole response): only the text after
the last ``</think>`` is searched (the served R1 API returns reasoning separately, so simple-evals only ever saw this
part); the last match wins, as the prompt asks for the answer last; the letter is upper-cased (``(?i)`` lets
``answer: b`` match, and simple-evals then compared ``b`` with ``B``); a letter that starts a longer word
(``Answer: Both``, ``Answer: a bit``) is not an answer.
"""
from __future__ import annotations

import re
from typing import Sequence

from .base import CORRECT, INCORRECT, NO_ANSWER, TRUNCATED, Verdict, split_think

LETTERS = "ABCD"

# simple-evals' QUERY_TEMPLATE_MULTICHOICE (common.py), the prompt the paper's GPQA/MMLU numbers come from; the
# "Answer: $LETTER" instruction is what the strict pattern below looks for.
QUERY_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering.\n"
    "\n"
    "{question}\n"
    "\n"
    "A) {A}\n"
    "B) {B}\n"
    "C) {C}\n"
    "D) {D}"
)


def format_question(question: str, options: Sequence[str]) -> str:
    """The simple-evals user message for a question and its four options in display order."""
    if len(options) != 4:
        raise ValueError(f"multiple choice needs exactly 4 options, got {len(options)}")
    return QUERY_TEMPLATE.format(question=question, A=options[0], B=options[1], C=options[2], D=options[3])


METHODS = ("strict", "normalized", "answer_tag", "boxed", "answer_is", "last_line")

# simple-evals' ANSWER_PATTERN_MULTICHOICE, unchanged; the word-start check is done on the match (see _strict).
SIMPLE_EVALS_PATTERN = r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?"
_STRICT = re.compile(SIMPLE_EVALS_PATTERN)

# What simple-evals' normalize_response removes, in its order: wrappers that sit between "Answer:" and the letter.
_NORMALIZE = ("**", "$\\boxed{", "}$", "\\$", "$\\text{", "$", "\\mathrm{", "\\{", "\\text", "\\(", "\\mathbf{", "{",
              "\\boxed")

_ANSWER_TAG = re.compile(r"<answer>\s*[*_`$]*\(?\s*([A-D])\s*\)?[.]?[*_`$]*\s*</answer>", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*)?\(?\s*([A-Da-d])\s*\)?\s*\}")
_ANSWER_IS = re.compile(
    r"(?i:answer|option|choice)\s*(?:(?i:is|would be|will be|should be)\s*:?|:)\s*(?i:option|choice)?\s*"
    r"[*_`$]*\s*\(?\s*([A-D])\s*\)?(?![A-Za-z0-9])"
)
_LAST_LINE = re.compile(
    r"^[\s*_`#>$]*(?:(?i:final answer|answer|option|choice)\s*[:\-]?\s*)?[*_`$]*\(?\s*([A-D])\s*\)?[.:)]?[\s*_`$]*$"
)


def _word_starts_after(text: str, end: int) -> bool:
    return end < len(text) and text[end].isalpha()


def _strict(text: str) -> str | None:
    letter = None
    for m in _STRICT.finditer(text):
        # "Answer: Both" / "answer: a bit": the letter begins a word, it is not a choice.
        if _word_starts_after(text, m.end(1)):
            continue
        letter = m.group(1).upper()
    return letter


def _normalize(text: str) -> str:
    for s in _NORMALIZE:
        text = text.replace(s, "")
    return text


def _last(pattern: re.Pattern, text: str) -> str | None:
    found = None
    for m in pattern.finditer(text):
        found = m.group(1).upper()
    return found


def _last_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        if line.strip():
            m = _LAST_LINE.match(line)
            return m.group(1) if m else None
    return None


def extract_final(final: str) -> tuple[str | None, str | None]:
    """(letter, method) from text that is already the final answer part (no reasoning)."""
    if not final:
        return None, None
    letter = _strict(final)
    if letter:
        return letter, "strict"
    letter = _strict(_normalize(final))
    if letter:
        return letter, "normalized"
    letter = _last(_ANSWER_TAG, final)
    if letter:
        return letter, "answer_tag"
    letter = _last(_BOXED, final)
    if letter:
        return letter, "boxed"
    letter = _last(_ANSWER_IS, final)
    if letter:
        return letter, "answer_is"
    letter = _last_line(final)
    if letter:
        return letter, "last_line"
    return None, None


def extract_with_method(completion: str | None) -> tuple[str | None, str | None]:
    """(letter, method) from a completion; only the text after ``</think>`` counts."""
    if not isinstance(completion, str):
        return None, None
    _, final = split_think(completion)
    if final is None:
        return None, None
    return extract_final(final)


def extract(completion: str | None) -> str | None:
    """The answer letter A-D of a completion, or None."""
    return extract_with_method(completion)[0]


def verify(gold_letter: str, completion: str | None, finish_reason: str = "stop") -> Verdict:
    """Verdict for one completion against the gold letter; ``key`` is the letter (tasks may remap it).

    ``truncated``: the think block never closed, or nothing was extracted and generation hit the length limit.
    ``no_answer``: the model stopped on its own without an extractable letter.
    """
    if not isinstance(completion, str):
        return Verdict(NO_ANSWER, detail={"extraction": None})
    _, final = split_think(completion)
    if final is None:
        return Verdict(TRUNCATED, detail={"extraction": None, "think_closed": False})
    letter, method = extract_final(final)
    if letter is None:
        return Verdict(TRUNCATED if finish_reason == "length" else NO_ANSWER, detail={"extraction": None})
    gold = str(gold_letter).strip().upper()
    return Verdict(CORRECT if letter == gold else INCORRECT, answer=letter, key=letter, detail={"extraction": method})


def verify_many(golds: Sequence[str], completions: Sequence[str], finish_reasons: Sequence[str] | None = None) -> list[Verdict]:
    frs = finish_reasons or ["stop"] * len(completions)
    return [verify(g, c, f) for g, c, f in zip(golds, completions, frs)]


def extraction_summary(records) -> dict:
    """Extraction strictness for results.json: how many samples each method answered ("none" = no letter), and
    pass@1 counting only strict extractions as correct, next to the task's pass@1 that admits the fallbacks."""
    counts = {m: 0 for m in METHODS}
    counts["none"] = 0
    per_problem: dict[str, list[float]] = {}
    for r in records:
        method = (r.get("verdict_detail") or {}).get("extraction")
        counts[method if method in counts else "none"] += 1
        strict_ok = r.get("verdict") == CORRECT and method == "strict"
        per_problem.setdefault(str(r.get("problem_id")), []).append(1.0 if strict_ok else 0.0)
    means = [sum(v) / len(v) for v in per_problem.values()]
    return {"extraction": counts, "pass@1_strict": (sum(means) / len(means)) if means else None}
