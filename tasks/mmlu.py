"""`mmlu`: all 14,042 MMLU test questions, 0-shot chain of thought in the simple-evals style.

Data: ``mmlu/data/test/<subject>_test.csv`` (headerless: question, A, B, C, D, answer letter) and
``mmlu/subject_categories.json`` (subject -> one of STEM / Humanities / Social Sciences / Other).

Problem ids are ``<subject>/<i>`` with ``i`` the 0-based row of the question in its subject's test CSV (the original
hendrycks release order, which is also the row order of the cais/mmlu hub dataset per subject and lm-eval's doc_id).
Problems are ordered by subject name, then row.

``--limit N`` is stratified by subject, not "the first N rows" (which would be the first subjects alphabetically:
abstract algebra, anatomy, astronomy, ...): each subject gets a share of N proportional to its size (largest
remainder, ties to the earlier subject), with at least one question per subject once N >= the number of subjects;
within a subject its first rows are taken. Deterministic, so resume and ``--shard`` see the same problems; the
manifest's task data says so under ``limit_selection``.

results.json gets, besides the runner's per-subject and per-category pass@1, ``accuracy``: micro (every question
weighs the same), macro over subjects, and macro over categories (each category = mean of its subjects' accuracy,
the MMLU paper's convention), plus the extraction-method counts of harness.verifiers.choice.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import choice
from harness.verifiers.base import CORRECT, Verdict
from tasks.gpqa import ChoiceProblem

TEST_DIR = "mmlu/data/test"
CATEGORIES_FILE = "mmlu/subject_categories.json"
SUFFIX = "_test.csv"
N_COLUMNS = 6  # question, A, B, C, D, answer
CATEGORIES = ("STEM", "Humanities", "Social Sciences", "Other")
# The 57 subjects of the original release, for reading other tools' task names when no data is at hand.
SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)


def problem_id(subject: str, row_index: int) -> str:
    return f"{subject}/{row_index}"


def load_categories(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e
    out = {}
    for subject, entry in raw.items():
        cat = entry.get("category") if isinstance(entry, dict) else None
        if cat not in CATEGORIES:
            raise UserError(f"{path}: subject {subject!r}: category must be one of {', '.join(CATEGORIES)}")
        out[subject] = cat
    return out


def subject_problems(path: Path, subject: str, category: str) -> list[ChoiceProblem]:
    """Problems of one subject CSV; a malformed row is an error naming the file, row and column."""
    out = []
    for rowno, row in hdata.iter_csv(path, header=False):
        if len(row) != N_COLUMNS:
            raise UserError(f"{path}: row {rowno}: expected {N_COLUMNS} columns (question, A, B, C, D, answer), "
                            f"found {len(row)}")
        for col in range(1, 5):
            if not row[col].strip():
                raise UserError(f"{path}: row {rowno}: column {col + 1} (option {choice.LETTERS[col - 1]}) is empty; "
                                "a question needs four options")
        gold = row[5].strip().upper()
        if gold not in tuple(choice.LETTERS):
            raise UserError(f"{path}: row {rowno}: column 6 (answer) must be one of A, B, C, D")
        out.append(ChoiceProblem(id=problem_id(subject, rowno - 1), gold=gold, question=row[0],
                                 meta={"subject": subject, "category": category},
                                 options=tuple(c.strip() for c in row[1:5])))
    return out


def accuracy_summary(problems: list[Problem], records: list[dict]) -> dict[str, Any]:
    """Micro and macro accuracy over the problems that have samples (pass@1 per problem = mean over its samples)."""
    meta = {p.id: p.meta for p in problems}
    samples: dict[str, list[float]] = defaultdict(list)
    for r in records:
        pid = str(r.get("problem_id"))
        if pid in meta:
            samples[pid].append(1.0 if r.get("verdict") == CORRECT else 0.0)
    per_problem = {pid: sum(v) / len(v) for pid, v in samples.items()}
    by_subject: dict[str, list[float]] = defaultdict(list)
    category = {}
    for pid, acc in per_problem.items():
        by_subject[meta[pid]["subject"]].append(acc)
        category[meta[pid]["subject"]] = meta[pid].get("category")
    subject_acc = {s: sum(v) / len(v) for s, v in by_subject.items()}
    cat_subjects: dict[str, list[float]] = defaultdict(list)
    for s, acc in subject_acc.items():
        cat_subjects[str(category[s])].append(acc)
    category_macro = {c: sum(v) / len(v) for c, v in sorted(cat_subjects.items())}

    def mean(xs):
        xs = list(xs)
        return sum(xs) / len(xs) if xs else None

    return {
        "micro": mean(per_problem.values()),
        "macro_subjects": mean(subject_acc.values()),
        "macro_categories": mean(category_macro.values()),
        "category_macro_over_subjects": category_macro,
        "n_subjects": len(subject_acc),
    }


class MMLU(Task):
    name = "mmlu"
    default_k = 1
    hub = HubSource("cais/mmlu", revision="main", split="test", config="all")
    files = (TEST_DIR, CATEGORIES_FILE)
    breakdowns = ("subject", "category")
    limit_strata = "subject"  # --limit N: see the module doc

    def load_problems(self, data_dir=None) -> list[Problem]:
        # Categories are this project's mapping file; the hub only has the questions.
        problems, self.data_hashes = hdata.subject_dir(self.name, TEST_DIR, CATEGORIES_FILE, self.hub, data_dir,
                                                       SUFFIX, load_categories, subject_problems)
        return problems

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": choice.format_question(problem.question, problem.options)}],
                      meta={"gold_letter": problem.gold})

    def score(self, item: ScoreItem) -> Verdict:
        return choice.verify(item.problem.gold, item.completion, item.finish_reason)

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        out = choice.extraction_summary(records)
        out["accuracy"] = accuracy_summary(problems, records)
        return out


TASKS = [MMLU()]
