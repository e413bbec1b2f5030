"""`aime2024` and `aime2025`: the 30 problems of AIME I + II of each year, under the DeepSeek-R1 protocol.

Defaults are the paper's: k = 64 samples per problem, pass@1 = mean correctness, and cons@64 (majority vote over the
64 answers, equivalence-aware through the verifier's answer keys); both overridable with -n. Prompt and scoring are
MATH-500's (``tasks.math500.MathTask``): the problem, a newline, DeepSeek's boxed instruction; the shared math
verifier on the gold answer.

Gold answers are integers 0-999 and are given to the verifier as the integer without padding ("025" -> "25"); the 2024
file pads them to three digits, and an imported jsonl may do either.

Problem ids are ``<year>-<contest>-<number>`` for both years (``2024-I-1``, ``2025-II-15``): AIME 2025's own ``id``
(or, from MathArena's hub copy, its ``problem_idx`` 1-30);
AIME 2024's rows carry ids 60-89 of the AI-MO validation set instead, so the id is derived from the AoPS wiki URL
(``.../2024_AIME_I_Problems/Problem_1`` -> ``2024-I-1``). Problems are listed in contest order (I-1 .. I-15, II-1 ..
II-15), not the 2024 file's URL-string order, so ``--limit 5`` means the first five problems of AIME I.
"""
from __future__ import annotations

import re
from typing import Any

from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem

from tasks.math500 import MathTask, field

_URL_ID = re.compile(r"(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d{1,2})\b")
_ID = re.compile(r"^(\d{4})-(I{1,2})-(\d{1,2})$")
_INT = re.compile(r"^\s*\d{1,3}\s*$")


def aime_gold(answer: Any, where: str, lineno: int) -> str:
    s = str(answer).strip()
    if not _INT.match(s):
        raise UserError(f"{where}: line {lineno}: AIME answer must be an integer 0-999, got {s!r}")
    return str(int(s))


def contest_order(p: Problem) -> tuple:
    year, contest, number = _ID.match(p.id).groups()
    return int(year), len(contest), int(number)


class AIMETask(MathTask):
    default_k = 64  # paper: 64 samples per AIME problem
    cons_k = 64  # paper: cons@64
    year: int = 0

    def problem_id(self, row: dict[str, Any], where: str, lineno: int) -> str:
        raise NotImplementedError

    def problems_from_rows(self, rows, where):
        out = []
        for i, row in enumerate(rows, 1):
            pid = self.problem_id(row, where, i)
            m = _ID.match(pid)
            if not m or int(m.group(1)) != self.year or not 1 <= int(m.group(3)) <= 15:
                raise UserError(f"{where}: line {i}: problem id {pid!r} is not an AIME {self.year} id like "
                                f"'{self.year}-I-1'")
            out.append(Problem(id=pid, gold=aime_gold(field(row, "answer", where, i), where, i),
                               question=str(field(row, "problem", where, i)),
                               meta={"contest": f"AIME {self.year} {m.group(2)}", "number": int(m.group(3))}))
        return sorted(out, key=contest_order)

    def gold_answer(self, gold: Any) -> str:
        s = str(gold).strip()
        return str(int(s)) if _INT.match(s) else s


class AIME2024(AIMETask):
    name = "aime2024"
    year = 2024
    hub = HubSource("HuggingFaceH4/aime_2024", revision="main", split="train")
    relpath = "aime2024/aime24.jsonl"
    files = (relpath,)

    def problem_id(self, row, where, lineno):
        m = _URL_ID.search(str(row.get("url") or ""))
        if not m:
            raise UserError(f"{where}: line {lineno}: field 'url' does not name an AIME problem "
                            f"(expected .../2024_AIME_I_Problems/Problem_N)")
        return f"{m.group(1)}-{m.group(2)}-{int(m.group(3))}"


class AIME2025(AIMETask):
    name = "aime2025"
    year = 2025
    # MathArena's hub copy (the local file is converted from MathArena's raw files) numbers problems 1-30 instead.
    hub = HubSource("MathArena/aime_2025", revision="main", split="train")
    relpath = "aime2025/aime25.jsonl"
    files = (relpath,)

    def problem_id(self, row, where, lineno):
        if row.get("id") is None and isinstance(row.get("problem_idx"), int) and 1 <= row["problem_idx"] <= 30:
            idx = row["problem_idx"]
            return f"2025-{'I' if idx <= 15 else 'II'}-{idx if idx <= 15 else idx - 15}"
        return str(field(row, "id", where, lineno)).strip()


TASKS = [AIME2024(), AIME2025()]
