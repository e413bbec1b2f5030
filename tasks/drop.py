"""`drop`: DROP (Dua et al. 2019) dev set, 9,536 questions, scored with F1 and EM as openai/simple-evals does.

Data: ``drop/drop_v0_dev.jsonl.gz``, the file simple-evals' drop_eval.py downloads (fields ``context`` = passage +
question formatted ``Passage: ...\\nQuestion: ...\\nAnswer:``, ``completion``, ``ref_text`` = accepted answers joined
by ``|``). No ids in the file: a problem's id is its 0-based row as a string.

**0-shot, not the paper's 3-shot.** The paper reports "DROP (3-shot F1)" with simple-evals, which draws 3 exemplars
per question from ``drop_v0_train.jsonl.gz``; that file is not in the offline mirror, so this task asks the same
question zero-shot: simple-evals' prompt without its examples section (task sentence, ``# Your Task``, the
``---``-separated context, and its "Think step by step, then write a line of the form "Answer: $ANSWER"" line).
results.json says ``"shots": 0`` next to ``"paper_shots": 3`` and reports should flag the difference.

Scoring: ``harness.verifiers.drop`` (simple-evals' EM / F1 with AllenNLP's DROP normalisation, max over the accepted
answers). The verdict is EM, so pass@1 is EM; results.json adds ``f1`` (the paper's metric, a fraction like every
score here), ``em`` and simple-evals' fuzzy-match ``score``, each the mean over problems of the mean over samples.
"""
from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np

from harness import data as hdata
from harness import metrics
from harness.config import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import drop as dropv
from harness.verifiers.base import ERROR, Verdict

RELPATH = "drop/drop_v0_dev.jsonl.gz"
PAPER_SHOTS = 3
PROMPT = ("You will be asked to read a passage and answer a question.\n"
          "\n# Your Task\n"
          "\n---\n{context} \n\n"
          'Think step by step, then write a line of the form "Answer: $ANSWER" at the end of your response.')


def read_rows(path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    try:
        with gzip.open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise UserError(f"{path}:{lineno}: not a UTF-8 JSON line ({e})") from e
                if not isinstance(obj, dict):
                    raise UserError(f"{path}:{lineno}: expected a JSON object")
                out.append((lineno, obj))
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: not a readable gzip file ({e})") from e
    return out


def problems_from_rows(rows, where: str) -> list[Problem]:
    out = []
    for i, (lineno, row) in enumerate(rows):
        context, ref = row.get("context"), row.get("ref_text")
        if not isinstance(context, str) or not context.strip():
            raise UserError(f"{where}:{lineno}: field 'context' is missing or empty")
        if not isinstance(ref, str) or not any(r.strip() for r in ref.split("|")):
            raise UserError(f"{where}:{lineno}: field 'ref_text' has no non-blank answer")
        out.append(Problem(id=str(i), gold=ref.split("|"), question=context))
    return out


class Drop(Task):
    name = "drop"
    default_k = 1
    hub = HubSource("ucinlp/drop", revision="main", split="validation")
    files = (RELPATH,)

    def load_problems(self, data_dir=None) -> list[Problem]:
        path = hdata.resolve(RELPATH, self.hub, data_dir)
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        return problems_from_rows(read_rows(path), str(path))

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": PROMPT.format(context=problem.question)}],
                      meta={"shots": 0})

    def score(self, item: ScoreItem) -> Verdict:
        try:
            return dropv.score(item.problem.gold, item.completion, item.finish_reason)
        except ValueError as e:
            return Verdict(ERROR, detail={"reason": str(e)})

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        per: dict[str, dict[str, list[float]]] = {}
        for r in records:
            d = r.get("verdict_detail") or {}
            slot = per.setdefault(str(r.get("problem_id")), {"f1": [], "em": [], "fuzzy": []})
            slot["f1"].append(float(d.get("f1") or 0.0))
            slot["em"].append(float(d.get("em") or 0.0))
            slot["fuzzy"].append(1.0 if d.get("fuzzy") else 0.0)
        out: dict[str, Any] = {"shots": 0, "paper_shots": PAPER_SHOTS,
                               "protocol_note": "0-shot: simple-evals' 3-shot exemplars come from drop_v0_train, "
                                                "which the offline mirror lacks; the paper's number is 3-shot"}
        for key in ("f1", "em", "fuzzy"):
            vals = [float(np.mean(v[key])) for v in per.values()]
            name = "score_fuzzy" if key == "fuzzy" else key
            out[name] = float(np.mean(vals)) if vals else None
            if key == "f1" and vals:
                out["f1_ci"] = list(metrics.bootstrap_ci(vals, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL))
        return out


TASKS = [Drop()]
