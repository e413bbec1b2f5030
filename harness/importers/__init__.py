"""Importers turn other tools' generations into run dirs that `r1 score` / `r1 report` treat like any other.

A format is a module here with ``read(path: Path, task: Task, data_dir=None) -> Iterator[ImportedProblem]``
(data_dir: the local data mirror, for formats that check lines against the dataset); ``r1 import`` writes
the run dir (harness/store.py) and scores it with the task's verifier.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

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


def json_lines(path: Path, what: str = "a JSON object") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file; a bad line is a UserError naming it."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from e
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{lineno}: not UTF-8 text") from e
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}: expected {what}, got {type(obj).__name__}")
            yield lineno, obj


def reader(fmt: str):
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[fmt]).read
