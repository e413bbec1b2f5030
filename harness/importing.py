"""`r1 import`: other tools' generations -> a run dir scored by our verifiers."""
from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .importers import reader
from .runner import score_run
from .store import RunStore, git_revision, package_versions


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
    problems, records, n_max = [], [], 0
    seen: set[str] = set()
    for ip in read(path, task, data_dir=data_dir):
        if ip.problem_id in seen:
            raise UserError(f"{path}:{ip.line}: problem {ip.problem_id!r} appears twice")
        seen.add(ip.problem_id)
        if ip.gold is None and ip.problem_id not in dataset:
            why = f" ({data_error})" if data_error else ""
            raise UserError(f"{path}:{ip.line}: problem {ip.problem_id!r} is not in task {task_name}'s dataset and the "
                            f"line gives no 'gold'{why}")
        problems.append({"task": task_name, "problem_id": ip.problem_id, "gold": ip.gold, "meta": ip.meta, "line": ip.line})
        n_max = max(n_max, len(ip.completions))
        for i, comp in enumerate(ip.completions):
            rec = {"task": task_name, "problem_id": ip.problem_id, "sample_idx": i, "seed": None,
                   "prompt_hash": None, "prompt_meta": (ip.prompt_meta[i] if ip.prompt_meta else {}),
                   "completion": comp,
                   "finish_reason": ip.finish_reasons[i] if ip.finish_reasons else "stop",
                   "prompt_tokens": None, "completion_tokens": None, "latency": None}
            if ip.external:
                rec["external"] = ip.external[i]
            records.append(rec)
    if not problems:
        raise UserError(f"{path}: no problems found")
    store = RunStore(out)
    if store.manifest_path.exists() and not overwrite:
        raise UserError(f"{out} already holds a run: use another --out, or --overwrite")
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
        "import": {"format": fmt, "file": str(path.resolve())},
        **({"paper_stage": paper_stage} if paper_stage else {}),
    }
    store.open_for_run(manifest, overwrite=True)
    from .store import atomic_write_text
    import json

    atomic_write_text(store.problems_path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in problems))
    app = store.samples_appender()
    app.write(records)
    app.close()
    return score_run(out, data_dir=data_dir, rescore=True, judge=judge)
