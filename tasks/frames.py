"""`frames`: Google's FRAMES (Krishna et al. 2024), 824 multi-hop questions, closed-book here, LLM-judged.

Data: ``frames/frames_test_set.csv`` (``question``, ``true_answer``, ``reasoning_types`` ``|``-separated, the
Wikipedia links). Problem ids are the 0-based row index = the official ``test.tsv`` index.

The R1 paper does not say whether FRAMES was run with the gold Wikipedia articles in context; the articles are not
in the local data (only their URLs), so this is the no-retrieval (closed-book) variant: the question alone is the
user message. Grading: FRAMES' own autorater prompt (TRUE/FALSE) through an LLM judge (``--judge-model M
--judge-base-url U``; harness/judge.py). "Acc." = pass@1. results.json's ``breakdowns.reasoning_type`` gives pass@1
per reasoning type; a question with several types counts in each.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from harness import data as hdata
from harness.data import HubSource
from harness.judge import FRAMES, JudgedTask, judge_summary
from harness.task import Problem, Prompt
from harness.verifiers.base import CORRECT

FILE = "frames/frames_test_set.csv"
COLUMNS = ("question", "true_answer", "reasoning_types")


class Frames(JudgedTask):
    name = "frames"
    default_k = 1
    hub = HubSource("google/frames-benchmark", revision="main", split="test")
    files = (FILE,)
    rubric = FRAMES

    def load_problems(self, data_dir=None) -> list[Problem]:
        path = hdata.resolve(FILE, self.hub, data_dir)
        out: list[Problem] = []
        for _, row in hdata.iter_csv(path, required=COLUMNS, nonempty=("question", "true_answer")):
            types = [t.strip() for t in row["reasoning_types"].split("|") if t.strip()]
            out.append(Problem(id=str(len(out)), gold=row["true_answer"].strip(), question=row["question"].strip(),
                               meta={"reasoning_types": types}))
        self.data_hashes = {FILE: hdata.file_sha256(path)}
        return out

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": problem.question}])

    def extra_results(self, problems: list[Problem], records) -> dict[str, Any]:
        records = list(records)
        out = judge_summary(records)
        types = {p.id: p.meta.get("reasoning_types") or [] for p in problems}
        per_problem: dict[str, list[float]] = defaultdict(list)
        for r in records:
            if r.get("verdict") and str(r["problem_id"]) in types:
                per_problem[str(r["problem_id"])].append(1.0 if r["verdict"] == CORRECT else 0.0)
        groups: dict[str, list[float]] = defaultdict(list)
        for pid, v in per_problem.items():
            for t in types[pid]:
                groups[t].append(float(np.mean(v)))
        # multi-label, so not the runner's single-key breakdowns; same shape, so reports draw it alike
        out["breakdowns"] = {"reasoning_type": {g: {"pass@1": float(np.mean(vs)), "n_problems": len(vs)}
                                                for g, vs in sorted(groups.items())}}
        out["protocol_note"] = ("closed-book (the question alone, no Wikipedia articles in context); the paper does "
                                "not say whether it supplied or retrieved them")
        return out


TASKS = [Frames()]
