"""DROP answer scoring: exact match and F1 as openai/simple-evals' drop_eval.py computes them.

simple-evals (its ``drop_eval.py``, whose normalisation is AllenNLP's DROP evaluation script, itself from the
official DROP codalab scorer) does, per question:

1. take the first line after ``Answer:`` in the response (``(?i)Answer\\s*:\\s*([^\\n]+)``), or the whole response when
   there is none;
2. split the reference ``ref_text`` on ``|`` into the accepted answers, skip blank ones;
3. for each accepted answer compute (EM, F1) with ``get_drop_metrics`` and keep the max of each over the answers:
   - normalise each side token by token (tokens split on spaces and hyphens): lower-case, drop punctuation unless
     the token parses as a float, rewrite floats as ``str(float(x))`` (``"2"`` -> ``"2.0"``), drop the articles
     a/an/the, squeeze whitespace; drop empty tokens;
   - EM = 1 when the normalised strings are equal;
   - F1 = the bag-of-words F1 between the two token sets, times 100, but 0 when the gold has numbers and the
     prediction shares none of them; rounded to 2 decimals. (simple-evals passes single strings, so the optimal
     bag alignment it runs through scipy is always 1 x 1; a general alignment is done here by trying every pairing,
     which gives the same optimum for the few spans a DROP answer has.)

The same fuzzy match simple-evals reports as ``score`` (one normalised answer contained in the other) is returned too.
Verdicts are EM; F1 (as a fraction, /100) is in ``detail["f1"]`` and tasks aggregate it.
"""
from __future__ import annotations

import itertools
import re
import string
from typing import Sequence

from .base import CORRECT, INCORRECT, TRUNCATED, Verdict, split_think

ANSWER_PATTERN = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCT)
    if _is_number(token):
        token = str(float(token))
    token = _ARTICLES.sub(" ", token)
    return " ".join(token.split())


def normalize_answer(text: str) -> str:
    parts = [_normalize_token(tok) for tok in re.split(" |-", text)]
    return " ".join(p for p in parts if p.strip()).strip()


def _bags(spans: Sequence[str]) -> tuple[list[str], list[set[str]]]:
    norm = [normalize_answer(s) for s in spans]
    return norm, [set(n.split()) for n in norm]


def _f1(pred: set[str], gold: set[str]) -> float:
    inter = len(gold & pred)
    precision = inter / len(pred) if pred else 1.0
    recall = inter / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall) * 100


def _numbers_match(gold: set[str], pred: set[str]) -> bool:
    gold_nums = {w for w in gold if _is_number(w)}
    return not gold_nums or bool(gold_nums & {w for w in pred if _is_number(w)})


def _aligned_f1(pred: list[set[str]], gold: list[set[str]]) -> float:
    """Mean over max(len) slots of the per-pair F1 under the best one-to-one pairing of gold and predicted bags."""
    scores = [[_f1(p, g) if _numbers_match(g, p) else 0.0 for p in pred] for g in gold]
    n_slots = max(len(gold), len(pred))
    best = 0.0
    if len(gold) <= len(pred):
        for cols in itertools.permutations(range(len(pred)), len(gold)):
            best = max(best, sum(scores[r][c] for r, c in enumerate(cols)))
    else:
        for rows in itertools.permutations(range(len(gold)), len(pred)):
            best = max(best, sum(scores[r][c] for c, r in enumerate(rows)))
    return best / n_slots if n_slots else 0.0


def drop_metrics(predicted: str | Sequence[str], gold: str | Sequence[str]) -> tuple[float, float]:
    """(EM in {0, 1}, F1 in [0, 100] rounded to 2 places) of one prediction against one gold answer."""
    pred_spans = [predicted] if isinstance(predicted, str) else list(predicted)
    gold_spans = [gold] if isinstance(gold, str) else list(gold)
    pred_norm, pred_bags = _bags(pred_spans)
    gold_norm, gold_bags = _bags(gold_spans)
    em = 1.0 if set(pred_norm) == set(gold_norm) and len(pred_norm) == len(gold_norm) else 0.0
    return em, round(_aligned_f1(pred_bags, gold_bags), 2)


def fuzzy_match(a: str, b: str) -> bool:
    """simple-evals' ``score``: after a whole-string normalisation, one answer contains the other."""
    def norm(s: str) -> str:
        s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
        return " ".join(_ARTICLES.sub(" ", s).split())

    a, b = norm(a), norm(b)
    if not a or not b:
        return a == b
    return a in b or b in a


def extract_answer(final: str) -> tuple[str, bool]:
    """(answer text, whether an ``Answer:`` line was found); without one simple-evals scores the whole response."""
    m = ANSWER_PATTERN.search(final)
    return (m.group(1), True) if m else (final, False)


def score(references: Sequence[str], completion: str | None, finish_reason: str = "stop") -> Verdict:
    """Verdict (correct = exact match with some accepted answer) with ``detail`` em, f1 (fraction) and fuzzy."""
    if not isinstance(completion, str):
        completion = ""
    _, final = split_think(completion)
    if final is None:
        return Verdict(TRUNCATED, detail={"em": 0.0, "f1": 0.0, "fuzzy": False, "think_closed": False})
    answer, found = extract_answer(final)
    refs = [r for r in references if r.strip()]
    if not refs:
        raise ValueError("DROP question without a non-blank reference answer")
    ems, f1s = zip(*(drop_metrics(answer, r) for r in refs))
    em, f1 = max(ems), max(f1s)
    fuzzy = any(fuzzy_match(answer, r) for r in refs)
    status = CORRECT if em == 1.0 else (TRUNCATED if finish_reason == "length" and not found else INCORRECT)
    key = normalize_answer(answer) or None
    return Verdict(status, answer=answer.strip()[:500], key=key,
                   detail={"em": em, "f1": f1 / 100.0, "fuzzy": fuzzy, "answer_line": found})
