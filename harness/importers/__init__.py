"""Importers turn other tools' generations into run dirs that `r1 score` / `r1 report` treat like any other.

A format is a module here with ``read(path: Path, task: Task, data_dir=None) -> Iterator[ImportedProblem]``
(data_dir: the local data mirror, for formats that check lines against the dataset); ``r1 import`` writes
the run dir (harness/store.py) and scores it with the task's verifier.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError

FORMATS = {
    "jsonl": "harness.importers.jsonl",
    "lm-eval": "harness.importers.lm_eval",
    "lcb": "harness.importers.lcb",
}


@dataclass
class ImportedProblem:
    problem_id: str
    completions: list[str]
    line: int  # 1-based line/record number in the source file, for error messages
    gold: Any = None  # overrides the dataset's gold (and admits problems outside the dataset)
    finish_reasons: list[str] | None = None
    # One dict per completion, kept beside our verdict in the record as "external" (e.g. LiveCodeBench's grade).
    external: list[dict[str, Any]] | None = None
    prompt_meta: list[dict[str, Any]] | None = None  # one per completion, e.g. the option permutation used
    meta: dict[str, Any] = field(default_factory=dict)  # problem metadata for problems outside the dataset


def reader(fmt: str):
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[fmt]).read
