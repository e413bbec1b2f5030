"""Generic jsonl: one line per problem, {"problem_id": ..., "completions": [...]} or {"completion": "..."},
optional "gold" (for problems outside the task's dataset, or to override it) and "finish_reasons"."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..data import json_lines
from . import ImportedProblem


def read(path: Path, task, data_dir=None) -> Iterator[ImportedProblem]:
    for lineno, obj in json_lines(path):
        if "problem_id" not in obj:
            raise UserError(f"{path}:{lineno}: missing field 'problem_id'")
        if "completions" in obj:
            comps = obj["completions"]
            if not isinstance(comps, list) or not all(isinstance(c, str) for c in comps):
                raise UserError(f"{path}:{lineno}: field 'completions' must be a list of strings")
        elif "completion" in obj:
            if not isinstance(obj["completion"], str):
                raise UserError(f"{path}:{lineno}: field 'completion' must be a string")
            comps = [obj["completion"]]
        else:
            raise UserError(f"{path}:{lineno}: missing field 'completions' (or 'completion')")
        fr = obj.get("finish_reasons")
        if fr is not None and (not isinstance(fr, list) or len(fr) != len(comps)):
            raise UserError(f"{path}:{lineno}: 'finish_reasons' must be a list as long as 'completions'")
        yield ImportedProblem(problem_id=str(obj["problem_id"]), completions=comps, line=lineno,
                              gold=obj.get("gold"), finish_reasons=fr, meta=obj.get("meta") or {})
