"""`simpleqa`: OpenAI's SimpleQA (Wei et al. 2024), 4,326 short fact-seeking questions, closed-book, LLM-judged.

Data: ``simpleqa/simple_qa_test_set.csv`` (columns ``metadata`` — a Python-dict literal with ``topic``,
``answer_type``, ``urls`` — ``problem``, ``answer``), verbatim the file openai/simple-evals reads. Problem ids are
the 0-based row index (the set has no ids of its own).

Protocol as simple-evals: the question alone is the user message. Grading: the SimpleQA grader prompt through an LLM
judge (``--judge-model M --judge-base-url U``; harness/judge.py). The paper's number is "Correct" = the share of
CORRECT grades = pass@1; results.json also gets not_attempted, incorrect, correct_given_attempted and the F-score
as simple-evals defines them, and per-topic / per-answer-type pass@1.
"""
from __future__ import annotations

import ast

from harness import data as hdata
from harness.errors import UserError
from harness.judge import SIMPLEQA, JudgedTask
from harness.task import Problem, Prompt

FILE = "simpleqa/simple_qa_test_set.csv"
COLUMNS = ("metadata", "problem", "answer")


def parse_metadata(cell: str, where: str) -> dict:
    try:
        meta = ast.literal_eval(cell)  # a Python literal (single quotes), not JSON
    except (ValueError, SyntaxError) as e:
        raise UserError(f"{where}: column metadata is not a Python dict literal ({type(e).__name__})") from e
    if not isinstance(meta, dict):
        raise UserError(f"{where}: column metadata is not a dict")
    return meta


class SimpleQA(JudgedTask):
    name = "simpleqa"
    default_k = 1
    hub = None  # upstream is a blob URL, not a hub dataset: https://openaipublic.blob.core.windows.net/simple-evals/
    files = (FILE,)
    breakdowns = ("topic", "answer_type")
    rubric = SIMPLEQA

    def load_problems(self, data_dir=None) -> list[Problem]:
        path = hdata.resolve(FILE, None, data_dir)
        out: list[Problem] = []
        for rowno, row in hdata.iter_csv(path, required=COLUMNS, nonempty=("problem", "answer")):
            meta = parse_metadata(row["metadata"], f"{path}: row {rowno}")
            out.append(Problem(id=str(len(out)), gold=row["answer"].strip(), question=row["problem"].strip(),
                               meta={"topic": str(meta.get("topic")), "answer_type": str(meta.get("answer_type"))}))
        self.data_hashes = {FILE: hdata.file_sha256(path)}
        return out

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": problem.question}])


TASKS = [SimpleQA()]
