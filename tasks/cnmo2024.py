"""`cnmo2024`: CNMO 2024 as DeepSeek-V3/R1 report it: LiveMathBench v202412 "CNMO" split, English, 18 problems.

Data: ``cnmo2024/CNMO_en.jsonl`` (fields question, answer, question_type, options; see its SOURCE.md for why this is the
set the DeepSeek papers call CNMO 2024). The file has no ids: a problem's id is its 0-based row as a string.
DeepSeek do not say which language they used; this task runs the English version (the only one in the mirror), and
results.json records it.

Protocol as for AIME: k = 64 samples per problem by default (a small set, like AIME's 30), pass@1 = mean correctness;
MATH-500's prompt (problem, newline, DeepSeek's boxed instruction) and the shared math verifier. Gold answers are
LaTeX wrapped in ``$...$``; the outer dollars are removed before the verifier sees them.
"""
from __future__ import annotations

from typing import Any

from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem

from tasks.math500 import MathTask, field


def strip_dollars(answer: str) -> str:
    s = answer.strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$") and not s.startswith("$$"):
        s = s[1:-1].strip()
    return s


class CNMO2024(MathTask):
    name = "cnmo2024"
    default_k = 64  # as for AIME: a small set, many samples
    hub = HubSource("opencompass/LiveMathBench", revision="main", split="test", config="v202412_CNMO_en")
    relpath = "cnmo2024/CNMO_en.jsonl"
    files = (relpath,)

    def problems_from_rows(self, rows, where):
        out = []
        for i, row in enumerate(rows):
            gold = strip_dollars(str(field(row, "answer", where, i + 1)))
            if not gold:
                raise UserError(f"{where}: line {i + 1}: field 'answer' is empty inside its $...$")
            out.append(Problem(id=str(i), gold=gold, question=str(field(row, "question", where, i + 1)),
                               meta={"question_type": str(row.get("question_type") or "problem-solving")}))
        return out

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        out = super().extra_results(problems, records)
        out["language"] = "en"  # LiveMathBench v202412_CNMO_en; the paper does not say which language it ran
        out["protocol_note"] = "English version (LiveMathBench v202412 CNMO_en); the paper does not name the language"
        return out


TASKS = [CNMO2024()]
