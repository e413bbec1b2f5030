"""`ifeval`: IF-Eval (Zhou et al. 2023), 541 prompts with 834 verifiable instructions, graded by lm-eval's checkers.

Data: ``ifeval/input_data.jsonl`` (Google's file: key, prompt, instruction_id_list, kwargs). Problem ids are the
dataset's ``key``. The prompt is sent verbatim as the one user turn.

Metrics. IF-Eval has no answer to vote on; one response either follows all of its prompt's instructions or not.
pass@1 is the paper's "Prompt Strict": per sample, prompt-level strict (every instruction passes the strict
checker), averaged over the k samples of a prompt, then over prompts - with k = 1 exactly lm-eval's
``prompt_level_strict_acc``. results.json adds, averaged the same way, ``prompt_level_loose``, and the
instruction-level ``inst_level_strict`` / ``inst_level_loose``: for each prompt the mean over samples of the number
of instructions followed, summed over prompts and divided by the number of instructions (834 on the full set) -
with k = 1 exactly lm-eval's ``agg_inst_level_acc``. ``instruction_types`` gives strict accuracy per instruction id.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import ifeval as ifv
from harness.verifiers.base import Verdict

RELPATH = "ifeval/input_data.jsonl"


def problems_from_rows(rows, where: str) -> list[Problem]:
    out = []
    for lineno, row in rows:
        at = f"{where}:{lineno}"
        if row.get("key") is None or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise UserError(f"{at}: fields 'key' and 'prompt' are required")
        ids, kwargs = row.get("instruction_id_list"), row.get("kwargs")
        if not isinstance(ids, list) or not ids or not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise UserError(f"{at}: 'instruction_id_list' must be a non-empty list and 'kwargs' a list of the same "
                            "length")
        if not all(isinstance(k, dict) for k in kwargs):
            raise UserError(f"{at}: every entry of 'kwargs' must be an object")
        # The HF parquet mirror pads kwargs with nulls; lm-eval drops falsy values itself, so keep them as given.
        doc = {"key": row["key"], "prompt": row["prompt"], "instruction_id_list": [str(i) for i in ids],
               "kwargs": kwargs}
        out.append(Problem(id=str(row["key"]), gold=doc, question=row["prompt"],
                           meta={"n_instructions": len(ids)}))
    return out


class IFEval(Task):
    name = "ifeval"
    default_k = 1
    hub = HubSource("google/IFEval", revision="main", split="train")
    files = (RELPATH,)
    breakdowns = ("n_instructions",)

    def load_problems(self, data_dir=None) -> list[Problem]:
        path = hdata.resolve(RELPATH, self.hub, data_dir)
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        return problems_from_rows(hdata.json_lines(path), str(path))

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        return Prompt(messages=[{"role": "user", "content": problem.question}])

    def score(self, item: ScoreItem) -> Verdict:
        return ifv.verify(item.problem.gold, item.completion, item.finish_reason)

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        return ifeval_summary(problems, records)


def ifeval_summary(problems: list[Problem], records: list[dict]) -> dict[str, Any]:
    by_pid: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_pid[str(r.get("problem_id"))].append(r.get("verdict_detail") or {})
    pmap = {p.id: p for p in problems}
    prompt_level = {"strict": [], "loose": []}
    inst_hits = {"strict": 0.0, "loose": 0.0}
    n_inst = 0
    per_type: dict[str, list[float]] = defaultdict(list)
    for pid, details in by_pid.items():
        if pid not in pmap:
            continue
        ids = pmap[pid].gold["instruction_id_list"]
        n_inst += len(ids)
        for mode in ("strict", "loose"):
            prompt_level[mode].append(sum(bool(d.get(f"prompt_level_{mode}_acc")) for d in details) / len(details))
            lists = [d.get(f"inst_level_{mode}_acc") or [False] * len(ids) for d in details]
            inst_hits[mode] += sum(sum(map(bool, lst)) for lst in lists) / len(details)
        for j, iid in enumerate(ids):
            per_type[iid].append(sum(bool((d.get("inst_level_strict_acc") or [])[j:j + 1] == [True])
                                     for d in details) / len(details))

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    return {
        "prompt_level_strict": mean(prompt_level["strict"]),
        "prompt_level_loose": mean(prompt_level["loose"]),
        "inst_level_strict": inst_hits["strict"] / n_inst if n_inst else None,
        "inst_level_loose": inst_hits["loose"] / n_inst if n_inst else None,
        "n_instructions": n_inst,
        "instruction_types": {k: {"strict": mean(v), "n": len(v)} for k, v in sorted(per_type.items())},
    }


TASKS = [IFEval()]
