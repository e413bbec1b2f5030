"""`r1 distill RECIPE`: teacher generation -> rejection filters -> SFT dataset -> student SFT -> student eval -> report row.

Read top to bottom; each stage writes into the pipeline's out dir and the next reads from there:

    OUT/teacher/        the teacher's eval run (samples.jsonl, manifest.json, results.json): resumable
    OUT/dataset/        dataset.jsonl + manifest.json (sources, filter counts, hashes)
    OUT/student/        train.json + model/ (the fine-tuned student)
    OUT/eval/           the student's eval run
    OUT/report_row.md   the student's numbers next to the paper's Table 5 row (+ report_row.json)
    OUT/pipeline.json   stage timings and the recipe in force

Re-running resumes: the teacher run skips finished samples, and SFT is skipped when ``OUT/student/train.json`` was
made from the same dataset hash and SFT parameters.
"""
from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from harness.config import PAPER_GENERATION, parse_overrides
from harness.errors import UserError
from harness.runner import EvalSpec, evaluate
from harness.store import atomic_write_json

from . import dataset as ds
from . import filters as flt
from . import report as rpt
from .generate import TeacherConfig, generate, load_teacher_records
from .train import MODEL_DIR, check_sft_params, train

log = logging.getLogger("r1.distill")

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
RECIPE_KEYS = {"name", "about", "sources", "student", "teacher", "filters", "report_only", "reverify", "dataset", "sft",
               "eval", "out", "data_dir", "decontaminate", "stop_after", "sft_trainer"}
STAGES = ("teacher", "dataset", "train", "eval")


# ---------------------------------------------------------------------------------------------- recipe
def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file, or the name of one in distill/recipes/ ("qwen2.5-math-7b", "cpu_demo")."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = RECIPE_DIR / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    known = ", ".join(sorted(x.stem for x in RECIPE_DIR.glob("*.yaml")))
    raise UserError(f"recipe {name_or_path!r}: no such file or recipe name; shipped recipes: {known}")


def apply_overrides(recipe: dict, overrides: dict[str, Any] | list[str] | None) -> dict:
    """Dotted keys set nested values: {"teacher.limit": 2, "sft.max_steps": 1}; or "key=value" strings (YAML values)."""
    out = copy.deepcopy(recipe)
    if not overrides:
        return out
    items = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides))
    for key, value in items.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"override {key}: {p} is not a section")
        node[parts[-1]] = value
    return out


def load_recipe(path: str | Path, overrides: dict | list | None = None) -> dict:
    p = recipe_path(path)
    recipe = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    recipe = apply_overrides(recipe, overrides)
    unknown = set(recipe) - RECIPE_KEYS
    if unknown:
        raise UserError(f"{p}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    if not (recipe.get("student") or {}).get("model"):
        raise UserError(f"{p}: student.model is required")
    recipe.setdefault("name", p.stem)
    recipe["_path"] = str(p)
    return recipe


def train_eval_overlap(records: list[dict], eval_cfg: dict, data_dir: str | None) -> list[str]:
    """Evaluation problems the student was trained on ("task/problem_id"): a contaminated row, refused by default."""
    from harness.task import get_task

    tasks = eval_cfg.get("tasks") or []
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    taught = {(r["task"], str(r["problem_id"])) for r in records}
    out = []
    for name in {t for t, _ in taught} & set(tasks):
        for p in get_task(name).problems(data_dir, eval_cfg.get("limit")):
            if (name, p.id) in taught:
                out.append(f"{name}/{p.id}")
    return sorted(out)


# ---------------------------------------------------------------------------------------------- stages
def evaluate_student(model_dir: Path, ecfg: dict, out: Path, data_dir: str | None, overwrite: bool) -> dict:
    gen = PAPER_GENERATION.with_(max_tokens=ecfg.get("max_tokens"), temperature=ecfg.get("temperature"),
                                 top_p=ecfg.get("top_p"))
    if "think_prefix" in ecfg:
        gen = gen.with_(think_prefix=bool(ecfg["think_prefix"]))
    tasks = ecfg.get("tasks") or ["aime2024", "math500", "gpqa_diamond", "livecodebench", "codeforces"]
    spec = EvalSpec(tasks=[tasks] if isinstance(tasks, str) else list(tasks), model=str(model_dir),
                    backend=ecfg.get("backend", "hf"), out=out, gen=gen, n=ecfg.get("n"), limit=ecfg.get("limit"),
                    seed=int(ecfg.get("seed", 0)), data_dir=data_dir, overwrite=overwrite,
                    backend_options=dict(ecfg.get("backend_options") or {}),
                    task_options=dict(ecfg.get("task_options") or {}), progress=bool(ecfg.get("progress", False)))
    return evaluate(spec)


def _train_is_current(student_dir: Path, dataset_sha: str, params: dict, student: str) -> bool:
    p = student_dir / "train.json"
    if not p.exists():
        return False
    prev = json.loads(p.read_text(encoding="utf-8"))
    if not Path(prev.get("model_dir") or student_dir / MODEL_DIR).is_dir():
        return False
    return (prev.get("dataset_sha256") == dataset_sha and prev.get("params") == params
            and prev.get("student") == student)


def main(recipe_path: str | Path, overrides: dict | list | None = None) -> dict:
    """Run the whole pipeline for one recipe; returns the report row (also written to OUT/report_row.json)."""
    recipe = load_recipe(recipe_path, overrides)
    out = Path(recipe.get("out") or f"runs/distill/{recipe['name']}")
    out.mkdir(parents=True, exist_ok=True)
    data_dir = recipe.get("data_dir")
    student = recipe["student"]
    sft_params = dict(recipe.get("sft") or {})
    check_sft_params(sft_params)  # a typo in the recipe fails now, not after hours of teacher generation
    specs = flt.parse_filters(recipe.get("filters"), recipe.get("report_only") or ())
    fmt = (recipe.get("dataset") or {}).get("format", "think")
    stop_after = recipe.get("stop_after")
    if stop_after not in (None, *STAGES):
        raise UserError(f"stop_after={stop_after!r}: choose one of {', '.join(STAGES)}")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. Teacher generation: an eval run (persisted, resumable, scored by the shared verifiers).
    t0 = time.perf_counter()
    run_dirs = generate(TeacherConfig.from_dict(recipe.get("teacher")), out / "teacher", data_dir)
    records = load_teacher_records(run_dirs)
    if recipe.get("reverify"):
        records = flt.reverify(records, data_dir)
    timings["teacher_s"] = time.perf_counter() - t0
    if stop_after == "teacher":
        return {"stopped_after": "teacher", "teacher_runs": [str(d) for d in run_dirs], "n_records": len(records)}

    # 2. Rejection filters, after decontamination: teacher samples on evaluation problems never reach the student
    #    (recipe decontaminate: false keeps them, and the report row says the row is contaminated).
    t0 = time.perf_counter()
    overlap = train_eval_overlap(records, recipe.get("eval") or {}, data_dir)
    if recipe.get("decontaminate", True):
        specs = [flt.FilterSpec("decontaminate", {"problems": overlap})] + specs
    result = flt.run_filters(records, specs)
    filter_report = result.report()
    log.info("filters: %s", filter_report)

    # 3. SFT dataset (prompts rebuilt and checked against the generated prompt hashes).
    examples, checks = ds.build_examples(result.kept, data_dir, fmt,
                                         (recipe.get("dataset") or {}).get("special_token", ds.PAPER_SPECIAL_TOKEN))
    dman = ds.write_dataset(examples, out / "dataset", run_dirs, filter_report, checks, fmt,
                            {"recipe": recipe["name"]})
    timings["filter_dataset_s"] = time.perf_counter() - t0
    if stop_after == "dataset":
        return {"stopped_after": "dataset", "filters": filter_report, "dataset": str(out / "dataset")}

    # 4. Student SFT (skipped when the same dataset and parameters already produced the model).
    t0 = time.perf_counter()
    student_dir = out / "student"
    retrained = not _train_is_current(student_dir, dman["dataset_sha256"], sft_params, student["model"])
    if retrained:
        tsum = train(examples, student["model"], sft_params, student_dir, recipe.get("sft_trainer", "auto"))
        tsum["dataset_sha256"] = dman["dataset_sha256"]
        atomic_write_json(student_dir / "train.json", tsum)
    else:
        tsum = json.loads((student_dir / "train.json").read_text(encoding="utf-8"))
        log.info("student already trained on this dataset: %s", student_dir / MODEL_DIR)
    timings["train_s"] = time.perf_counter() - t0
    if stop_after == "train":
        return {"stopped_after": "train", "train": tsum}

    # 5. Student evaluation with the harness runner. A model newer than the eval run (retrained here, or by
    #    `python -m distill.train` since) means a fresh eval run: same path, other weights.
    t0 = time.perf_counter()
    model_dir = Path(tsum.get("model_dir") or student_dir / MODEL_DIR)
    eval_results = out / "eval" / "results.json"
    stale = not eval_results.exists() or eval_results.stat().st_mtime < (student_dir / "train.json").stat().st_mtime
    results = evaluate_student(model_dir, recipe.get("eval") or {}, out / "eval", data_dir, overwrite=retrained or stale)
    timings["eval_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all

    # 6. Report row next to the paper's Table 5.
    row = rpt.build_row(student.get("name") or student["model"], student.get("paper_model"), results, extra={
        "recipe": recipe["name"], "recipe_path": recipe["_path"], "student_model": student["model"],
        "teacher_runs": [str(d) for d in run_dirs], "filters": filter_report,
        "dataset": {k: dman[k] for k in ("n_examples", "n_problems", "format", "dataset_sha256", "per_task")},
        "train": {k: v for k, v in tsum.items() if k != "params"}, "eval_run": str(out / "eval"),
        "train_eval_overlap": overlap, "decontaminated": bool(recipe.get("decontaminate", True)),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    })
    paths = rpt.write_report(row, out)
    atomic_write_json(out / "pipeline.json", {"recipe": {k: v for k, v in recipe.items()}, "timings_s": row["timings_s"],
                                              "report": {k: str(v) for k, v in paths.items()}})
    return row


# ---------------------------------------------------------------------------------------------- command line
def run_from_args(a) -> int:
    overrides = parse_overrides(a.overrides)
    if a.out:
        overrides["out"] = a.out
    if a.data_dir:
        overrides["data_dir"] = a.data_dir
    if a.teacher_runs:
        overrides["teacher.run_dirs"] = list(a.teacher_runs)
    recipe = load_recipe(a.recipe, overrides)
    main(recipe["_path"], overrides)
    out = Path(recipe.get("out") or f"runs/distill/{recipe['name']}")
    print((out / "report_row.md").read_text(encoding="utf-8"))
    print(f"report row: {out / 'report_row.md'} and {out / 'report_row.json'}")
    return 0


if __name__ == "__main__":
    import argparse
    import sys

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .cli import add_arguments

    parser = argparse.ArgumentParser(prog="python -m distill.pipeline", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        raise SystemExit(run_from_args(parser.parse_args()))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
