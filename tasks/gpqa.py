"""`gpqa_diamond`: the 198 GPQA Diamond questions, simple-evals prompt, options shuffled per sample.

Data: ``gpqa_diamond/gpqa_diamond.csv`` (official CSV, header row). The dataset's authors ask that questions never
appear in plain text online, so nothing here prints, logs or stores question or option text: errors name the file,
row and column only, and a sample record holds just the permutation.

Options: original index 0 is ``Correct Answer``, 1..3 are ``Incorrect Answer 1..3`` (simple-evals' order). Each
sample shows them in the order ``perm`` = ``random.Random(seed).sample(range(4), 4)`` (display position i shows
original option ``perm[i]``), where ``seed`` is the runner's per-(run seed, task, problem, sample) seed. The same run
seed gives the same permutations; a different seed gives different ones, and over k samples the gold letter's
position averages out. The permutation and gold letter are stored in the sample record (``prompt_meta``) and scoring
reads them from there, so rescoring never depends on recomputing them.

Voting key: the chosen letter mapped back to the original option (``opt:0`` = the correct answer), so cons@k votes
agree across samples that saw different orders.
"""
from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness import data as hdata
from harness import hub as hf_hub
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import choice
from harness.verifiers.base import ERROR, Verdict

RELPATH = "gpqa_diamond/gpqa_diamond.csv"
OPTION_COLUMNS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
REQUIRED_COLUMNS = ("Record ID", "Question", *OPTION_COLUMNS, "High-level domain")
CORRECT_INDEX = 0  # original position of the correct option (OPTION_COLUMNS order)


@dataclass
class ChoiceProblem(Problem):
    """A problem with its options in original order (kept off Problem.meta, which reports may show)."""

    options: tuple[str, ...] = ()


def permutation(seed: int) -> list[int]:
    return random.Random(seed).sample(range(4), 4)


def problems_from_rows(rows, where: str) -> list[ChoiceProblem]:
    """Problems from GPQA rows (dicts keyed by the CSV header); ``rows`` yields (row number, row).

    Errors name ``where`` (the file), the row and the column, never a cell's content.
    """
    out = []
    for rowno, row in rows:
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            raise UserError(f"{where}: row 1 (header): missing column {missing[0]!r}")
        for col in ("Record ID", "Question", *OPTION_COLUMNS):
            val = row.get(col)
            if val is None or not str(val).strip():
                what = "a question needs four options" if col in OPTION_COLUMNS else "required"
                raise UserError(f"{where}: row {rowno}: column {col!r} is empty or missing ({what})")
        options = tuple(str(row[c]).strip() for c in OPTION_COLUMNS)  # some cells carry trailing newlines
        out.append(ChoiceProblem(
            id=str(row["Record ID"]).strip(),
            gold=CORRECT_INDEX,
            question=str(row["Question"]).strip(),
            meta={"domain": str(row.get("High-level domain") or "").strip() or "unknown",
                  "subdomain": str(row.get("Subdomain") or "").strip() or "unknown"},
            options=options,
        ))
    return out


class GPQADiamond(Task):
    name = "gpqa_diamond"
    withhold_text = True  # the authors' canary rule: never print a question
    default_k = 8  # open-r1 / lighteval reproduction setting
    hub = HubSource("Idavidrein/gpqa", revision="main", split="train", config="gpqa_diamond")
    files = (RELPATH,)
    breakdowns = ("domain",)

    def load_problems(self, data_dir=None) -> list[Problem]:
        # Same order as harness.data.load_rows: a local mirror when one is configured, else the (gated) hub.
        if hdata.data_dir(data_dir) is None and not hf_hub.offline():
            rows = hdata.hub_rows(self.hub)
            self.data_hashes = {self.hub.describe(): "hub"}
            return problems_from_rows(enumerate(rows, 2), self.hub.describe())
        path = hdata.resolve(RELPATH, self.hub, data_dir)
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        try:
            check_header(path)
            return problems_from_rows(hdata.iter_csv(path, header=True), str(path))
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text ({e.reason})") from e

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        perm = permutation(seed)
        shown = [problem.options[i] for i in perm]
        gold_letter = choice.LETTERS[perm.index(problem.gold)]
        return Prompt(messages=[{"role": "user", "content": choice.format_question(problem.question, shown)}],
                      meta={"perm": perm, "gold_letter": gold_letter})

    def score(self, item: ScoreItem) -> Verdict:
        meta = item.prompt_meta or {}
        perm = meta.get("perm")
        if perm is not None and sorted(perm) != [0, 1, 2, 3]:
            return Verdict(ERROR, detail={"reason": "prompt_meta.perm is not a permutation of 0..3"})
        gold_letter = meta.get("gold_letter")
        if gold_letter is None and perm is not None:
            gold_letter = choice.LETTERS[perm.index(int(item.problem.gold))]
        if gold_letter not in tuple(choice.LETTERS):
            return Verdict(ERROR, detail={"reason": "sample record has no option permutation / gold letter"})
        v = choice.verify(gold_letter, item.completion, item.finish_reason)
        if v.answer is None:
            return v
        detail = dict(v.detail)
        if perm is not None:
            detail["option"] = perm[choice.LETTERS.index(v.answer)]
            key = f"opt:{detail['option']}"
        else:  # imported without a permutation: letters are only comparable within one ordering
            key = f"letter:{v.answer}"
        return Verdict(v.status, answer=v.answer, key=key, detail=detail)

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        gold_pos: Counter = Counter()
        answer_pos: Counter = Counter()
        for r in records:
            meta = r.get("prompt_meta") or {}
            if meta.get("gold_letter"):
                gold_pos[meta["gold_letter"]] += 1
            if r.get("answer") in tuple(choice.LETTERS):
                answer_pos[r["answer"]] += 1
        out = choice.extraction_summary(records)
        # Position bias shows as answer_position far from uniform while gold_position is near uniform.
        out["gold_position"] = {c: gold_pos.get(c, 0) for c in choice.LETTERS}
        out["answer_position"] = {c: answer_pos.get(c, 0) for c in choice.LETTERS}
        return out


def check_header(path) -> None:
    """Fail on a bad header before any row: names the file even when it has no data rows."""
    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise UserError(f"{path}: row 1 (header): file is empty")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}: row 1 (header): missing column {missing[0]!r}")


TASKS = [GPQADiamond()]
