"""`math500`: MATH-500 (the PRM800K test subset, 500 problems) under the DeepSeek-R1 protocol.

Data: ``math500/test.jsonl`` (OpenAI's file; fields problem, solution, answer, subject, level, unique_id). Problem ids
are the dataset's ``unique_id`` (``test/precalculus/807.json``); ``subject`` and ``level`` go to ``Problem.meta`` and
results.json reports pass@1 per subject and per level. Default k = 4 (open-r1 / lighteval), overridable with -n.

Prompt (shared with the AIME tasks, see ``MathTask``): the paper's protocol, no system prompt, one user turn made of
the problem, a newline, and DeepSeek's instruction "Please reason step by step, and put your final answer within
\\boxed{}." - the problem-then-instruction order used by DeepSeek's usage notes and the Qwen2.5-Math / QwQ evaluation
scripts (lighteval's own math template is a different, longer prompt; we follow the model authors).

Scoring: ``harness.verifiers.math.verify_many`` (the verifier GRPO rewards and distillation filters also use), on the
dataset's ``answer`` field.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from harness.config import MATH_INSTRUCTION
from harness.data import HubSource, load_rows
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import math as mathv
from harness.verifiers.base import Verdict


def math_prompt(question: str) -> Prompt:
    return Prompt(messages=[{"role": "user", "content": f"{question}\n{MATH_INSTRUCTION}"}])


class MathTask(Task):
    """A benchmark whose answer is a math expression checked by the shared math verifier."""

    relpath: ClassVar[str] = ""

    def load_problems(self, data_dir=None) -> list[Problem]:
        rows, self.data_hashes = load_rows(self.relpath, self.hub, data_dir)
        return self.problems_from_rows(rows, self.relpath)

    def problems_from_rows(self, rows: list[dict[str, Any]], where: str) -> list[Problem]:
        raise NotImplementedError

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return math_prompt(problem.question)

    def gold_answer(self, gold: Any) -> str:
        """The gold answer as the verifier gets it (tasks normalise their dataset's quirks here)."""
        return str(gold)

    def score(self, item: ScoreItem) -> Verdict:
        return self.score_many([item])[0]

    def score_many(self, items: list[ScoreItem]) -> list[Verdict]:
        return mathv.verify_many([self.gold_answer(it.problem.gold) for it in items], [it.completion for it in items],
                                 [it.finish_reason for it in items])

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        """How answers were found and settled: a jump in ``fallback`` extractions or ``sympy`` checks after a model or
        prompt change is worth a look before trusting a score."""
        by, path = Counter(), Counter()
        for r in records:
            d = r.get("verdict_detail") or {}
            if d.get("by"):
                by[d["by"]] += 1
            if d.get("path"):
                path[d["path"]] += 1
        return {"answer_extraction": dict(sorted(by.items())), "verifier_path": dict(sorted(path.items()))}


def field(row: dict[str, Any], name: str, where: str, lineno: int) -> Any:
    val = row.get(name)
    if val is None or (isinstance(val, str) and not val.strip()):
        raise UserError(f"{where}: line {lineno}: field {name!r} is missing or empty")
    return val


class Math500(MathTask):
    name = "math500"
    default_k = 4  # open-r1 / lighteval reproduction setting for MATH-500
    hub = HubSource("HuggingFaceH4/MATH-500", revision="main", split="test")
    relpath = "math500/test.jsonl"
    files = (relpath,)
    breakdowns = ("subject", "level")

    def problems_from_rows(self, rows, where):
        out = []
        for i, row in enumerate(rows, 1):
            level = field(row, "level", where, i)
            try:
                level = int(level)
            except (TypeError, ValueError):
                raise UserError(f"{where}: line {i}: field 'level' must be an integer 1-5, got {level!r}") from None
            out.append(Problem(id=str(field(row, "unique_id", where, i)), gold=str(field(row, "answer", where, i)),
                               question=str(field(row, "problem", where, i)),
                               meta={"subject": str(field(row, "subject", where, i)), "level": level}))
        return out


TASKS = [Math500()]
