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

import hashlib
import json
import os
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
    try:
        for rowno, row in hdata.iter_csv(path, header=True):
            missing = [c for c in COLUMNS if c not in row]
            if missing:
                raise UserError(f"{path}: row 1 (header): missing column {missing[0]!r}")
            for col in COLUMNS:
                if row[col] is None or not str(row[col]).strip():
                    raise UserError(f"{path}: row {rowno}: column {col!r} is empty")
            gold = row["answer"].strip().upper()
            if gold not in tuple(choice.LETTERS):
                raise UserError(f"{path}: row {rowno}: column 'answer' must be one of A, B, C, D, got {gold!r}")
            out.append(ChoiceProblem(id=f"{subject}/{row['id'].strip()}", gold=gold, question=row["question"],
                                     meta={"subject": subject, "category": info["category"], "name": info["name"]},
                                     options=tuple(str(row[c]).strip() for c in "ABCD")))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason})") from e
    return out


class CEval(Task):
    name = "ceval"
    default_k = 1
    hub = HubSource("ceval/ceval-exam", revision="main", split="val")
    files = (VAL_DIR, MAPPING_FILE)
    breakdowns = ("subject", "category")
    limit_strata = "subject"  # --limit N stratified (harness.task.stratified_selection)

    def load_problems(self, data_dir=None) -> list[Problem]:
        if hdata.data_dir(data_dir) is None and os.environ.get("HF_HUB_OFFLINE") != "1":
            # The hub has one config per subject and no category map: the mirror layout is what this task reads.
            raise UserError(f"task ceval needs the local mirror ({VAL_DIR}, {MAPPING_FILE}): pass --data-dir or set "
                            f"{hdata.ENV_VAR}; upstream: {self.hub.describe()}")
        map_path = hdata.resolve(MAPPING_FILE, self.hub, data_dir)
        val_dir = hdata.resolve(VAL_DIR, self.hub, data_dir)
        mapping = load_mapping(map_path)
        files = sorted(val_dir.glob(f"*{SUFFIX}"))
        if not files:
            raise UserError(f"{val_dir}: no *{SUFFIX} files")
        digest = hashlib.sha256()
        problems: list[Problem] = []
        for path in files:
            subject = path.name[: -len(SUFFIX)]
            if subject not in mapping:
                raise UserError(f"{path}: subject {subject!r} has no entry in {map_path}")
            digest.update(f"{path.name}:{hdata.file_sha256(path)}\n".encode())
            problems.extend(subject_problems(path, subject, mapping[subject]))
        self.data_hashes = {VAL_DIR: digest.hexdigest(), MAPPING_FILE: hdata.file_sha256(map_path)}
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
