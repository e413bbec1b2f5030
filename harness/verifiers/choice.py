"""Multiple-choice answer extraction (GPQA, MMLU, MMLU-Pro, C-Eval, ...): one letter from a completion.

Letters are A-D by default; ``letters="ABCDEFGHIJ"`` (MMLU-Pro's up to ten options) or any shorter prefix of it
(CLUEWSC's A/B) widens or narrows every pattern below to that range, nothing else changes.

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

The ``strict`` rung is the format the task's prompt asks for (``primary``):
``simple_evals`` the pattern above (GPQA, MMLU);
``mmlu_pro``     TIGER-Lab's MMLU-Pro pattern ``answer is \\(?([A-J])\\)?`` (their prompt ends answers with
                 "the answer is (X)"; case-sensitive as theirs);
``zh``           ``答案：X`` / ``答案:X`` (the Chinese prompts of C-Eval and CLUEWSC); for these the ``answer_is`` rung
                 also takes ``答案是X``, ``选C``, ``正确选项为（C）``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from .base import CORRECT, INCORRECT, NO_ANSWER, TRUNCATED, Verdict, split_think

LETTERS = "ABCD"
LETTERS_10 = "ABCDEFGHIJ"  # MMLU-Pro: up to ten options
PRIMARIES = ("simple_evals", "mmlu_pro", "zh")

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
# TIGER-Lab MMLU-Pro evaluate_from_api.py, extract_answer's first pattern.
MMLU_PRO_PATTERN = r"answer is \(?([A-J])\)?"

# What simple-evals' normalize_response removes, in its order: wrappers that sit between "Answer:" and the letter.
_NORMALIZE = ("**", "$\\boxed{", "}$", "\\$", "$\\text{", "$", "\\mathrm{", "\\{", "\\text", "\\(", "\\mathbf{", "{",
              "\\boxed")


@dataclass(frozen=True)
class _Ladder:
    strict: re.Pattern
    ascii_word_check: bool  # Chinese text: a CJK character after the letter does not make it a word
    answer_tag: re.Pattern
    boxed: re.Pattern
    answer_is: tuple[re.Pattern, ...]
    last_line: re.Pattern


def _check_letters(letters: str) -> str:
    if not (2 <= len(letters) <= len(LETTERS_10) and LETTERS_10.startswith(letters)):
        raise ValueError(f"letters must be 'AB' .. 'ABCDEFGHIJ' (a prefix of A-J), got {letters!r}")
    return letters


@lru_cache(maxsize=None)
def _ladder(letters: str = LETTERS, primary: str = "simple_evals") -> _Ladder:
    _check_letters(letters)
    if primary not in PRIMARIES:
        raise ValueError(f"primary must be one of {PRIMARIES}, got {primary!r}")
    up = f"A-{letters[-1]}"
    both = f"A-{letters[-1]}a-{letters[-1].lower()}"
    if primary == "simple_evals":
        strict = SIMPLE_EVALS_PATTERN.replace("A-D", up)
    elif primary == "mmlu_pro":
        strict = MMLU_PRO_PATTERN.replace("A-J", up)
    else:
        strict = rf"答案[ \t]*[:：][ \t]*\$?([{up}])\$?"
    answer_is = [
        rf"(?i:answer|option|choice)\s*(?:(?i:is|would be|will be|should be)\s*:?|:)\s*(?i:option|choice)?\s*"
        rf"[*_`$]*\s*\(?\s*([{up}])\s*\)?(?![A-Za-z0-9])"
    ]
    if primary == "zh":
        answer_is.append(rf"(?:答案|选项|故选|应选|选择|选)\s*(?:应该是|应为|应是|是|为)?\s*[:：]?\s*[*_`$]*\s*[(（【]?\s*"
                         rf"([{up}])\s*[)）】]?(?![A-Za-z0-9])")
    return _Ladder(
        strict=re.compile(strict),
        ascii_word_check=primary == "zh",
        answer_tag=re.compile(rf"<answer>\s*[*_`$]*\(?\s*([{up}])\s*\)?[.]?[*_`$]*\s*</answer>", re.IGNORECASE),
        boxed=re.compile(rf"\\boxed\s*\{{\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{{\s*)?\(?\s*([{both}])\s*\)?\s*\}}"),
        answer_is=tuple(re.compile(p) for p in answer_is),
        last_line=re.compile(
            rf"^[\s*_`#>$]*(?:(?i:final answer|answer|option|choice)\s*[:\-]?\s*)?[*_`$]*\(?\s*([{up}])\s*\)?[.:)]?"
            rf"[\s*_`$]*$"),
    )


def _word_starts_after(text: str, end: int, ascii_only: bool = False) -> bool:
    if end >= len(text):
        return False
    c = text[end]
    return c.isalpha() and (c.isascii() or not ascii_only)


def _strict(text: str, ladder: _Ladder | None = None) -> str | None:
    ladder = ladder or _ladder()
    letter = None
    for m in ladder.strict.finditer(text):
        # "Answer: Both" / "answer: a bit": the letter begins a word, it is not a choice.
        if _word_starts_after(text, m.end(1), ladder.ascii_word_check):
            continue
        letter = m.group(1).upper()
    return letter


def _normalize(text: str) -> str:
    for s in _NORMALIZE:
        text = text.replace(s, "")
    return text


def _last(patterns, text: str) -> str | None:
    """The letter of the match that starts last, over one pattern or several."""
    if isinstance(patterns, re.Pattern):
        patterns = (patterns,)
    found, at = None, -1
    for pattern in patterns:
        for m in pattern.finditer(text):
            if m.start() >= at:
                found, at = m.group(1).upper(), m.start()
    return found


def _last_line(text: str, ladder: _Ladder | None = None) -> str | None:
    ladder = ladder or _ladder()
    for line in reversed(text.splitlines()):
        if line.strip():
            m = ladder.last_line.match(line)
            return m.group(1) if m else None
    return None


def extract_final(final: str, letters: str = LETTERS, primary: str = "simple_evals") -> tuple[str | None, str | None]:
    """(letter, method) from text that is already the final answer part (no reasoning)."""
    if not final:
        return None, None
    ladder = _ladder(letters, primary)
    letter = _strict(final, ladder)
    if letter:
        return letter, "strict"
    letter = _strict(_normalize(final), ladder)
    if letter:
        return letter, "normalized"
    letter = _last(ladder.answer_tag, final)
    if letter:
        return letter, "answer_tag"
    letter = _last(ladder.boxed, final)
    if letter:
        return letter, "boxed"
    letter = _last(ladder.answer_is, final)
    if letter:
        return letter, "answer_is"
    letter = _last_line(final, ladder)
    if letter:
        return letter, "last_line"
    return None, None


def extract_with_method(completion: str | None, letters: str = LETTERS,
                        primary: str = "simple_evals") -> tuple[str | None, str | None]:
    """(letter, method) from a completion; only the text after ``</think>`` counts."""
    if not isinstance(completion, str):
        return None, None
    _, final = split_think(completion)
    if final is None:
        return None, None
    return extract_final(final, letters, primary)


def extract(completion: str | None, letters: str = LETTERS, primary: str = "simple_evals") -> str | None:
    """The answer letter of a completion (A-D unless ``letters`` says otherwise), or None."""
    return extract_with_method(completion, letters, primary)[0]


def verify(gold_letter: str, completion: str | None, finish_reason: str = "stop", letters: str = LETTERS,
           primary: str = "simple_evals") -> Verdict:
    """Verdict for one completion against the gold letter; ``key`` is the letter (tasks may remap it).

    ``truncated``: the think block never closed, or nothing was extracted and generation hit the length limit.
    ``no_answer``: the model stopped on its own without an extractable letter.
    """
    if not isinstance(completion, str):
        return Verdict(NO_ANSWER, detail={"extraction": None})
    _, final = split_think(completion)
    if final is None:
        return Verdict(TRUNCATED, detail={"extraction": None, "think_closed": False})
    letter, method = extract_final(final, letters, primary)
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
