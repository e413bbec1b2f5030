"""`r1 import`: other tools' generations -> a run dir scored by our verifiers."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .errors import UserError
from .importers import reader
from .runner import score_run
from .store import PROBLEMS, SAMPLES, RunStore, git_revision, package_versions


def import_run(fmt: str, task_name: str, path: Path, out: Path, model: str | None, data_dir=None,
               overwrite: bool = False, paper_stage: str | None = None, judge=None) -> dict:
    from .judge import check_paper_stage, require_judge
    from .task import get_task

    task = get_task(task_name)
    check_paper_stage(paper_stage)
    require_judge([task], judge)  # a judge-graded task: fail before anything is written
    path = Path(path)
    if not path.exists():
        raise UserError(f"import file not found: {path}")
    try:
        dataset = {p.id: p for p in task.problems(data_dir)}
        data_error = None
    except UserError as e:  # fine as long as every line brings its own gold
        dataset, data_error = {}, str(e)
    read = reader(fmt)
    store = RunStore(out)
    if store.manifest_path.exists() and not overwrite:
        raise UserError(f"{out} already holds a run: use another --out, or --overwrite")
    # Records are streamed into a staging dir beside --out and moved in only once every line has been read and
    # checked: memory holds one problem at a time, and a failed import leaves an existing run as it was.
    stage = out.parent / f".{out.name}.import-{os.getpid()}"
    try:
        stage.mkdir(parents=True, exist_ok=False)
    except OSError as e:
        raise UserError(f"--out {out}: cannot write there ({e.strerror})") from e
    try:
        n_max, n_problems = _stage(read, path, task, task_name, dataset, data_error, data_dir, stage)
        manifest = {
            "model": model or "unknown",
            "backend": f"import:{fmt}",
            "model_info": {"name": model},
            "generation": None,
            "seed": None,
            "tasks": {task_name: {"n": n_max, "limit": None, "data": task.describe(), "options": {}}},
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
            "versions": package_versions(),
            "git_revision": git_revision(),
            "source": "import",
            # the task's whole set, so reports can tell an import of a subset from a full run
            "import": {"format": fmt, "file": str(path.resolve()), "problems": n_problems,
                       **({"dataset_problems": len(dataset)} if dataset else {})},
            **({"paper_stage": paper_stage} if paper_stage else {}),
        }
        store.open_for_run(manifest, overwrite=True)
        for name in (PROBLEMS, SAMPLES):
            os.replace(stage / name, store.root / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return score_run(out, data_dir=data_dir, rescore=True, judge=judge)


def _stage(read, path: Path, task, task_name: str, dataset: dict, data_error, data_dir, stage: Path) -> tuple[int, int]:
    """Write the import's problems.jsonl and samples.jsonl into ``stage``; returns (most samples of a problem, problems)."""
    seen: set[str] = set()
    n_max = n_problems = 0
    with open(stage / PROBLEMS, "w", encoding="utf-8") as pf, open(stage / SAMPLES, "w", encoding="utf-8") as sf:
        for ip in read(path, task, data_dir=data_dir):
            if ip.problem_id in seen:
                raise UserError(f"{path}:{ip.line}: problem {ip.problem_id!r} appears twice")
            seen.add(ip.problem_id)
            if ip.gold is None and ip.problem_id not in dataset:
                why = f" ({data_error})" if data_error else ""
                raise UserError(f"{path}:{ip.line}: problem {ip.problem_id!r} is not in task {task_name}'s dataset "
                                f"and the line gives no 'gold'{why}")
            pf.write(json.dumps({"task": task_name, "problem_id": ip.problem_id, "gold": ip.gold, "meta": ip.meta,
                                 "line": ip.line}, ensure_ascii=False) + "\n")
            n_problems += 1
            n_max = max(n_max, len(ip.completions))
            for i, comp in enumerate(ip.completions):
                rec = {"task": task_name, "problem_id": ip.problem_id, "sample_idx": i, "seed": None,
                       "prompt_hash": None, "prompt_meta": (ip.prompt_meta[i] if ip.prompt_meta else {}),
                       "completion": comp,
                       "finish_reason": ip.finish_reasons[i] if ip.finish_reasons else "stop",
                       "prompt_tokens": None, "completion_tokens": None, "latency": None}
                if ip.external:
                    rec["external"] = ip.external[i]
                sf.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        for f in (pf, sf):
            f.flush()
            os.fsync(f.fileno())
    if not n_problems:
        raise UserError(f"{path}: no problems found")
    return n_max, n_problems
