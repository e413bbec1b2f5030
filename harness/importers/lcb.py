"""LiveCodeBench's evaluation output (``<model>/Scenario.codegeneration_<n>_<temp>_eval_all.json``) as a run.

That file is one JSON array with a record per problem: ``question_id``, ``output_list`` (the model's raw outputs),
``code_list`` (the code LiveCodeBench extracted from them), ``graded_list`` (its pass/fail per output) and
``metadata`` (one JSON string per output with the error code and message). Our verifier re-grades the raw outputs;
LiveCodeBench's own grade is kept beside ours as ``external`` so a report can show where the two disagree.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ..errors import UserError
from . import ImportedProblem

TOOL = "livecodebench"
# Problem fields worth keeping for breakdowns (difficulty, platform) and for problems outside our dataset copy.
META_FIELDS = ("platform", "difficulty", "contest_id", "contest_date", "question_title")
# Only short scalar facts of LiveCodeBench's per-output metadata are kept: its "inputs"/"expected"/"output" fields
# can hold whole test cases.
EXTERNAL_FIELDS = ("error_code", "error_message", "error")
MAX_FIELD_CHARS = 300


def _fence(code: str) -> str:
    """A code-only entry as a completion our code extractor reads the same way (one fenced python block)."""
    return f"```python\n{code}\n```"


def _external(graded: bool, meta: Any) -> dict[str, Any]:
    ext: dict[str, Any] = {"tool": TOOL, "passed": graded}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = {"error": meta}
    if isinstance(meta, dict):
        for key in EXTERNAL_FIELDS:
            v = meta.get(key)
            if isinstance(v, (int, float, bool)):
                ext[key] = v
            elif isinstance(v, str):
                ext[key] = v[:MAX_FIELD_CHARS]
    return ext


def _load(path: Path) -> list:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); --format lcb reads LiveCodeBench's "
                        f"*_eval_all.json (one JSON array)") from e
    if isinstance(data, list) and data and isinstance(data[0], dict) and "detail" in data[0] and "pass@1" in data[0]:
        raise UserError(f"{path}: this is LiveCodeBench's summary file (*_eval.json); import the per-problem file "
                        f"*_eval_all.json next to it")
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array of problem records (LiveCodeBench *_eval_all.json), "
                        f"got {type(data).__name__}")
    return data


def read(path: Path, task, data_dir=None) -> Iterator[ImportedProblem]:
    if getattr(task, "name", None) != "livecodebench":
        raise UserError(f"--format lcb holds LiveCodeBench code generations: use --task livecodebench "
                        f"(got --task {getattr(task, 'name', task)})")
    for i, rec in enumerate(_load(path), 1):
        where = f"{path}: record {i}"
        if not isinstance(rec, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(rec).__name__}")
        qid = rec.get("question_id")
        if qid is None or qid == "":
            raise UserError(f"{where}: missing field 'question_id'")
        where += f" ({qid})"
        outputs, codes = rec.get("output_list"), rec.get("code_list")
        for name, val in (("output_list", outputs), ("code_list", codes)):
            if val is not None and (not isinstance(val, list) or not all(isinstance(x, str) for x in val)):
                raise UserError(f"{where}: field '{name}' must be a list of strings")
        if outputs is None and codes is None:
            raise UserError(f"{where}: neither 'output_list' nor 'code_list': nothing to import")
        if outputs is not None and codes is not None and len(outputs) != len(codes):
            raise UserError(f"{where}: 'output_list' has {len(outputs)} entries but 'code_list' {len(codes)}")
        # The raw output is what the model wrote (think block and all): our verifier extracts the code itself. A file
        # without raw outputs still imports, from the extracted code.
        completions = list(outputs) if outputs is not None else [_fence(c) for c in codes]
        graded = rec.get("graded_list")
        external = None
        if graded is not None:
            if not isinstance(graded, list) or not all(isinstance(g, bool) for g in graded):
                raise UserError(f"{where}: field 'graded_list' must be a list of true/false")
            if len(graded) != len(completions):
                raise UserError(f"{where}: 'graded_list' has {len(graded)} grades for {len(completions)} outputs")
            metas = rec.get("metadata")
            if not isinstance(metas, list) or len(metas) != len(graded):
                metas = [None] * len(graded)  # older LiveCodeBench versions wrote no per-output metadata
            external = [_external(g, m) for g, m in zip(graded, metas)]
        meta = {k: rec[k] for k in META_FIELDS if isinstance(rec.get(k), (str, int, float))}
        yield ImportedProblem(problem_id=str(qid), completions=completions, line=i, external=external, meta=meta)
