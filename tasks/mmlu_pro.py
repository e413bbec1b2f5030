"""`mmlu_pro`: MMLU-Pro (TIGER-Lab, stable version), 12,032 test questions with up to ten options A-J.

Data: ``mmlu_pro/test-00000-of-00001.parquet`` (and ``validation-...parquet``, the 70 CoT exemplars, 5 per category),
the Hugging Face ``TIGER-Lab/MMLU-Pro`` files. Problem ids are the dataset's ``question_id``; ``category`` (14 values)
and ``src`` go to ``Problem.meta``, and results.json gets pass@1 per category.

Prompt: the paper ran MMLU-Pro zero-shot ("the original prompts are few-shot, we slightly modify the prompt to the
zero-shot setting"): TIGER-Lab's CoT prompt (its instruction line, ``Question:`` / ``Options:`` with ``A. ...`` lines,
``Answer: Let's think step by step.``) without the exemplars. ``--mmlu-pro-shots 5`` puts TIGER-Lab's five exemplars
of the question's category from the validation set back in, exactly as their evaluate_from_api.py builds them.

Scoring: the shared choice verifier over the letters the question shows (A.. up to J), with TIGER-Lab's
"the answer is (X)" as the strict rung. The gold is the ``answer`` letter, never ``answer_index``: one upstream row
(question_id 3983) has the two disagree and TIGER-Lab grade on the letter (see the data's SOURCE.md).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness import data as hdata
from harness import hub as hf_hub
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import choice
from harness.verifiers.base import Verdict
from tasks.gpqa import ChoiceProblem

TEST_FILE = "mmlu_pro/test-00000-of-00001.parquet"
VAL_FILE = "mmlu_pro/validation-00000-of-00001.parquet"
N_COT_SHOTS = 5
SHOT_CHOICES = (0, N_COT_SHOTS)
INSTRUCTION = ('The following are multiple choice questions (with answers) about {category}. Think step by step and '
               'then finish your answer with "the answer is (X)" where X is the correct letter choice.')


def read_parquet(path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 - only this task reads parquet
    except ImportError as e:
        raise UserError(f"{path}: reading parquet needs pyarrow: pip install pyarrow") from e
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e


def problems_from_rows(rows: list[dict[str, Any]], where: str) -> list[ChoiceProblem]:
    out = []
    for i, row in enumerate(rows):
        at = f"{where}: row {i}"
        for col in ("question_id", "question", "options", "answer", "category"):
            if row.get(col) in (None, ""):
                raise UserError(f"{at}: column {col!r} is missing or empty")
        options = [str(o) for o in row["options"]]
        if not 2 <= len(options) <= len(choice.LETTERS_10):
            raise UserError(f"{at}: column 'options' must hold 2-10 options, has {len(options)}")
        letters = choice.LETTERS_10[:len(options)]
        gold = str(row["answer"]).strip().upper()
        if gold not in letters:
            raise UserError(f"{at}: column 'answer' must be one of {', '.join(letters)}, got {gold!r}")
        out.append(ChoiceProblem(id=str(row["question_id"]), gold=gold, question=str(row["question"]),
                                 meta={"category": str(row["category"]), "src": str(row.get("src") or "")},
                                 options=tuple(options)))
    return out


def format_example(question: str, options, cot: str | None = None) -> str:
    """One question block of TIGER-Lab's prompt; with ``cot`` it is an exemplar carrying its worked answer."""
    text = "Question:\n" + question + "\nOptions:\n"
    text += "".join(f"{choice.LETTERS_10[i]}. {opt}\n" for i, opt in enumerate(options))
    if cot is None:
        return text + "Answer: Let's think step by step."
    return text + cot.replace("A: Let's think step by step.", "Answer: Let's think step by step.") + "\n\n"


class MMLUPro(Task):
    name = "mmlu_pro"
    default_k = 1  # 12,032 questions: the paper's k for large sets is small; -n raises it
    hub = HubSource("TIGER-Lab/MMLU-Pro", revision="main", split="test")
    files = (TEST_FILE, VAL_FILE)
    breakdowns = ("category",)
    limit_strata = "category"  # --limit N stratified (harness.task.stratified_selection)

    def __init__(self):
        super().__init__()
        self.shots = 0
        self._exemplars: dict[str, list[dict]] | None = None

    def configure(self, mmlu_pro_shots: int | str | None = None, **_ignored) -> None:
        shots = 0 if mmlu_pro_shots is None else int(mmlu_pro_shots)
        if shots not in SHOT_CHOICES:
            raise UserError(f"--mmlu-pro-shots must be 0 (the paper) or {N_COT_SHOTS} (TIGER-Lab's CoT prompt), "
                            f"got {mmlu_pro_shots}")
        self.shots = shots

    def load_problems(self, data_dir=None) -> list[Problem]:
        if hdata.data_dir(data_dir) is None and not hf_hub.offline():
            rows = hdata.hub_rows(self.hub)
            val = hdata.hub_rows(HubSource(self.hub.repo_id, self.hub.revision, split="validation"))
            self.data_hashes = {self.hub.describe(): "hub"}
            where = self.hub.describe()
        else:
            path = hdata.resolve(TEST_FILE, self.hub, data_dir)
            val_path = hdata.resolve(VAL_FILE, self.hub, data_dir)
            rows, val = read_parquet(path), read_parquet(val_path)
            self.data_hashes = {TEST_FILE: hdata.file_sha256(path), VAL_FILE: hdata.file_sha256(val_path)}
            where = str(path)
        by_cat: dict[str, list[dict]] = defaultdict(list)
        for row in val:  # file order, as TIGER-Lab's select_by_category keeps it
            by_cat[str(row.get("category"))].append(row)
        self._exemplars = dict(by_cat)
        return problems_from_rows(rows, where)

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        category = problem.meta["category"]
        text = INSTRUCTION.format(category=category) + "\n"
        if self.shots:
            shots = (self._exemplars or {}).get(category, [])[: self.shots]
            if len(shots) < self.shots:
                raise UserError(f"{VAL_FILE}: category {category!r} has {len(shots)} CoT exemplars, "
                                f"--mmlu-pro-shots {self.shots} needs {self.shots}")
            text += "".join(format_example(str(s["question"]), s["options"], str(s.get("cot_content") or ""))
                            for s in shots)
        text += format_example(problem.question, problem.options)
        return Prompt(messages=[{"role": "user", "content": text}],
                      meta={"gold_letter": problem.gold, "n_options": len(problem.options), "shots": self.shots})

    def score(self, item: ScoreItem) -> Verdict:
        n = (item.prompt_meta or {}).get("n_options") or len(getattr(item.problem, "options", ())) or 10
        letters = choice.LETTERS_10[: max(2, min(int(n), 10))]
        return choice.verify(item.problem.gold, item.completion, item.finish_reason, letters=letters,
                             primary="mmlu_pro")

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        seen_shots: set = set()

        def noting_shots(recs):  # one pass over the records (they may be a stream)
            for r in recs:
                seen_shots.add((r.get("prompt_meta") or {}).get("shots"))
                yield r

        out = choice.extraction_summary(noting_shots(records))
        shots = sorted(s for s in seen_shots if s is not None)
        out["prompt"] = {"shots": shots, "paper": "0-shot (TIGER-Lab CoT prompt without exemplars)"}
        if any(shots):
            out["protocol_note"] = (f"{'/'.join(map(str, shots))}-shot CoT (TIGER-Lab exemplars); the paper ran "
                                    "MMLU-Pro 0-shot")
        return out


TASKS = [MMLUPro()]
