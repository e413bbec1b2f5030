"""`mmlu_redux`: MMLU-Redux (Gema et al., "Are We Done with MMLU?"), 0-shot in the ZeroEval prompt format.

Data: ``mmlu_redux/mmlu_redux_2.0.jsonl``, the 5,700 re-annotated MMLU test questions (57 subjects x 100), rebuilt
from the annotators' CSVs and the official MMLU rows (see its SOURCE.md). The dataset has no ids of its own, so a
problem's id is its 0-based row in that file, whatever subset or filter is chosen; ``subject``, the MMLU category and
the annotation's ``error_type`` go to ``Problem.meta``.

Options (both recorded in results.json under ``"subset"``):

``--mmlu-redux-version 2.0`` (default) all 57 subjects; ``v1``: the 30 subjects (3,000 rows) of the first release.
``--mmlu-redux-filter``
  ``zeroeval`` (default) the questions the annotators found fine (``ok``) plus ``wrong_groundtruth`` ones for which
                they gave a usable corrected letter, graded against that correction; every other error type
                (unclear question or options, no or several correct answers, expert) is left out. This is how the
                MMLU-Redux authors ask the set to be used (measure on the questions known to be right, with the
                ground truth corrected) and what ZeroEval, whose prompt DeepSeek used, did on v1.
  ``ok``        only questions annotated ``ok``, graded on the MMLU answer.
  ``all``       every row, graded on the original MMLU answer (the uncleaned number, for comparison).
DeepSeek name neither the version nor the filter; the defaults are the fullest set under the authors' recipe.

Prompt: ZeroEval's MCQA template (question, ``- (A) ...`` choice lines, reasoning + answer as a JSON object).
Scoring: the JSON ``answer`` field as ZeroEval reads it (a bare letter, or a letter followed by ``)``) is the strict
method; answers given in another form fall back to the shared choice ladder, and the method is counted.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import choice
from harness.verifiers.base import CORRECT, INCORRECT, NO_ANSWER, TRUNCATED, Verdict, split_think
from tasks.gpqa import ChoiceProblem
from tasks.mmlu import CATEGORIES_FILE, SUBJECTS, load_categories

RELPATH = "mmlu_redux/mmlu_redux_2.0.jsonl"
VERSIONS = ("2.0", "v1")
FILTERS = ("zeroeval", "ok", "all")
# ZeroEval src/templates/MCQA.py, with {question} and {choices} filled in.
MCQA_TEMPLATE = """
## Question: 

{question}

## Choices:

{choices}

## Instruction 

Please answer this question by first reasoning and then selecting the correct choice. 
Present your reasoning and solution in the following json format. 
Please show your choice in the `answer` field with only the choice letter, e.g.,`"answer": "C"`.

```json
{{
    "reasoning": "___",
    "answer": "___"
}}
```
"""
# ZeroEval reads the field quoted, or unquoted as a fallback (extract_values_from_json(allow_no_quotes=True)).
_JSON_ANSWER = re.compile(r'"answer"\s*:\s*(?:"([^"\n]*)"|(\(?[A-D]\)?)(?![A-Za-z0-9]))')
_LABEL = re.compile(r"^\s*\(?\s*([A-D])\s*\)")


def choice_string(choices) -> str:
    """ZeroEval's generate_choice_string: one ``- (A) text`` line per choice."""
    return "".join(f"- ({choice.LETTERS[i]}) {c}\n" for i, c in enumerate(choices))


def json_answer(final: str) -> str | None:
    """The letter in the last ``"answer": "..."`` field, read as ZeroEval does: the value is the letter, or holds
    ``X)`` (``"(C) candles"``)."""
    found = None
    for m in _JSON_ANSWER.finditer(final):
        value = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        if value in tuple(choice.LETTERS):
            found = value
        else:
            lm = _LABEL.match(value)
            found = lm.group(1) if lm else found
    return found


def verify(gold_letter: str, completion: str | None, finish_reason: str = "stop") -> Verdict:
    if not isinstance(completion, str):
        return Verdict(NO_ANSWER, detail={"extraction": None})
    _, final = split_think(completion)
    if final is None:
        return Verdict(TRUNCATED, detail={"extraction": None, "think_closed": False})
    letter = json_answer(final)
    if letter is None:
        return choice.verify(gold_letter, completion, finish_reason)
    return Verdict(CORRECT if letter == gold_letter else INCORRECT, answer=letter, key=letter,
                   detail={"extraction": "strict", "format": "zeroeval_json"})


class MMLURedux(Task):
    name = "mmlu_redux"
    default_k = 1
    hub = HubSource("edinburgh-dawg/mmlu-redux-2.0", revision="main", split="test")
    files = (RELPATH,)
    breakdowns = ("subject", "category", "error_type")
    limit_strata = "subject"  # --limit N stratified (harness.task.stratified_selection)

    def __init__(self):
        super().__init__()
        self.version, self.filter = "2.0", "zeroeval"
        self.subset_counts: dict[str, int] = {}

    def configure(self, mmlu_redux_version: str | None = None, mmlu_redux_filter: str | None = None,
                  **_ignored) -> None:
        version = str(mmlu_redux_version or "2.0")
        filt = str(mmlu_redux_filter or "zeroeval")
        if version not in VERSIONS:
            raise UserError(f"--mmlu-redux-version must be one of {', '.join(VERSIONS)}, got {version!r}")
        if filt not in FILTERS:
            raise UserError(f"--mmlu-redux-filter must be one of {', '.join(FILTERS)}, got {filt!r}")
        self.version, self.filter = version, filt

    def load_problems(self, data_dir=None) -> list[Problem]:
        # The hub release lacks this file's derived fields (corrected_answer, in_redux_v1): the mirror is required.
        path = hdata.resolve(RELPATH, self.hub, data_dir)
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        return self.problems_from_rows(hdata.read_jsonl(path), str(path), _categories(data_dir))

    def problems_from_rows(self, rows: list[dict[str, Any]], where: str,
                           categories: dict[str, str] | None = None) -> list[Problem]:
        categories = categories or {}
        out: list[Problem] = []
        kept, dropped = Counter(), Counter()
        for i, row in enumerate(rows):
            at = f"{where}: line {i + 1}"
            for col in ("subject", "question", "choices", "answer", "error_type"):
                if row.get(col) is None:
                    raise UserError(f"{at}: field {col!r} is missing")
            opts = row["choices"]
            if not isinstance(opts, list) or len(opts) != 4:
                raise UserError(f"{at}: field 'choices' must be a list of 4 options")
            if row["answer"] not in (0, 1, 2, 3):
                raise UserError(f"{at}: field 'answer' must be 0-3, got {row['answer']!r}")
            if self.version == "v1" and not row.get("in_redux_v1"):
                continue
            et = str(row["error_type"])
            gold_index = row["answer"]
            if self.filter == "zeroeval":
                gold_index = row.get("corrected_answer")
                if gold_index is None:
                    dropped[et] += 1
                    continue
                if gold_index not in (0, 1, 2, 3):
                    raise UserError(f"{at}: field 'corrected_answer' must be 0-3 or null, got {gold_index!r}")
            elif self.filter == "ok" and et != "ok":
                dropped[et] += 1
                continue
            kept[et] += 1
            subject = str(row["subject"])
            out.append(ChoiceProblem(id=str(i), gold=choice.LETTERS[gold_index], question=str(row["question"]),
                                     meta={"subject": subject, "category": categories.get(subject, "unknown"),
                                           "error_type": et,
                                           "corrected": gold_index != row["answer"]},
                                     options=tuple(str(c) for c in opts)))
        self.subset_counts = {"kept": dict(sorted(kept.items())), "dropped": dict(sorted(dropped.items()))}
        return out

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        text = MCQA_TEMPLATE.format(question=problem.question, choices=choice_string(problem.options))
        return Prompt(messages=[{"role": "user", "content": text}], meta={"gold_letter": problem.gold})

    def score(self, item: ScoreItem) -> Verdict:
        return verify(item.problem.gold, item.completion, item.finish_reason)

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        out = choice.extraction_summary(records)
        out["subset"] = {
            "version": self.version, "filter": self.filter, "n_questions": len(problems),
            "n_corrected_gold": sum(1 for p in problems if p.meta.get("corrected")),
            **self.subset_counts,
            "note": ("zeroeval: ok rows + wrong_groundtruth rows graded on the annotators' corrected answer; other "
                     "error types dropped" if self.filter == "zeroeval" else
                     "only rows annotated ok" if self.filter == "ok" else "all rows, original MMLU answers"),
        }
        out["protocol_note"] = (f"MMLU-Redux {self.version}, filter {self.filter} ({len(problems)} questions); the "
                                "paper names neither version nor filter")
        return out


def _categories(data_dir=None) -> dict[str, str]:
    """MMLU subject -> category, from the mmlu task's mapping when the mirror has it (breakdowns only)."""
    try:
        return load_categories(hdata.resolve(CATEGORIES_FILE, None, data_dir))
    except UserError:
        return {s: "unknown" for s in SUBJECTS}


TASKS = [MMLURedux()]
