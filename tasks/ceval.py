"""`ceval`: C-Eval (Huang et al. 2023), the 1,346-question validation split over 52 subjects, zero-shot, in Chinese.

Data: ``ceval/val/<subject>_val.csv`` (header ``id, question, A, B, C, D, answer``) and ``ceval/subject_mapping.json``
(subject -> Chinese name and one of STEM / Social Sciences / Humanities / Other), the official release's layout. The
test split's answers are hidden (scored only by the C-Eval leaderboard), so this is a val-split number, as lm-eval's
``ceval-valid``; results.json says so. The dataset's ``id`` restarts at 0 in every file, so a problem's id is
``<subject>/<id>``. Problems are ordered by subject, then file row; pass@1 is reported per subject and per category.

Prompt: C-Eval's own question format (``以下是中国关于{科目}考试的单项选择题，请选出其中的正确答案。``, the question,
``A. ...`` option lines) made zero-shot as the paper did for C-Eval ("the original prompts are few-shot, we slightly
modify the prompt to the zero-shot setting"): no exemplars, and an instruction to reason and end with ``答案：X``.
Scoring: the shared choice verifier with the Chinese strict pattern (``答案：X``) and its fallbacks.
"""
from __future__ import annotations

import json
from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import choice
from harness.verifiers.base import Verdict
from tasks.gpqa import ChoiceProblem

VAL_DIR = "ceval/val"
MAPPING_FILE = "ceval/subject_mapping.json"
SUFFIX = "_val.csv"
CATEGORIES = ("STEM", "Social Sciences", "Humanities", "Other")
COLUMNS = ("id", "question", "A", "B", "C", "D", "answer")
HEADER = "以下是中国关于{name}考试的单项选择题，请选出其中的正确答案。"
ZH_ANSWER_INSTRUCTION = "请逐步思考，并在回答的最后一行写出“答案：X”，其中X是{letters}中的一个。"


def zh_instruction(letters: str) -> str:
    return ZH_ANSWER_INSTRUCTION.format(letters="、".join(letters))


def load_mapping(path) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(open(path, encoding="utf-8").read())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid UTF-8 JSON ({e})") from e
    out = {}
    for subject, entry in raw.items():
        if not isinstance(entry, dict) or entry.get("category") not in CATEGORIES or not entry.get("name"):
            raise UserError(f"{path}: subject {subject!r}: needs a 'name' and a 'category' in {', '.join(CATEGORIES)}")
        out[subject] = {"name": str(entry["name"]), "category": str(entry["category"])}
    return out


def subject_problems(path, subject: str, info: dict[str, str]) -> list[ChoiceProblem]:
    out = []
    for rowno, row in hdata.iter_csv(path, header=True, required=COLUMNS, nonempty=COLUMNS):
        gold = row["answer"].strip().upper()
        if gold not in tuple(choice.LETTERS):
            raise UserError(f"{path}: row {rowno}: column 'answer' must be one of A, B, C, D, got {gold!r}")
        out.append(ChoiceProblem(id=f"{subject}/{row['id'].strip()}", gold=gold, question=row["question"],
                                 meta={"subject": subject, "category": info["category"], "name": info["name"]},
                                 options=tuple(str(row[c]).strip() for c in "ABCD")))
    return out


class CEval(Task):
    name = "ceval"
    default_k = 1
    hub = HubSource("ceval/ceval-exam", revision="main", split="val")
    files = (VAL_DIR, MAPPING_FILE)
    breakdowns = ("subject", "category")
    limit_strata = "subject"  # --limit N stratified (harness.task.stratified_selection)

    def load_problems(self, data_dir=None) -> list[Problem]:
        # The hub has one config per subject and no category map: the mirror layout is what this task reads.
        problems, self.data_hashes = hdata.subject_dir(self.name, VAL_DIR, MAPPING_FILE, self.hub, data_dir,
                                                       SUFFIX, load_mapping, subject_problems)
        return problems

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        opts = "".join(f"\n{L}. {o}" for L, o in zip(choice.LETTERS, problem.options))
        text = (HEADER.format(name=problem.meta["name"]) + "\n\n" + problem.question + opts + "\n\n"
                + zh_instruction(choice.LETTERS))
        return Prompt(messages=[{"role": "user", "content": text}], meta={"gold_letter": problem.gold})

    def score(self, item: ScoreItem) -> Verdict:
        return choice.verify(item.problem.gold, item.completion, item.finish_reason, letters=choice.LETTERS,
                             primary="zh")

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        out = choice.extraction_summary(records)
        out["split"] = "val"  # the paper does not name one; test answers are not public
        out["protocol_note"] = "val split (test answers are not public; the paper names no split)"
        return out


TASKS = [CEval()]
