"""`r1 distill RECIPE`: teacher generation -> rejection filters -> SFT dataset -> student SFT -> student eval -> report row.

Read top to bottom; each stage writes into the pipeline's out dir and the next reads from there:

    OUT/teacher/        the teacher's eval run (samples.jsonl, manifest.json, results.json): resumable
    OUT/dataset/        dataset.jsonl + manifest.json (sources, filter counts, hashes)
    OUT/student/        train.json + sft/final/ (the fine-tuned student)
    OUT/eval_before/    the starting student's eval run (recipe ``eval.before: true``)
    OUT/eval/           the trained student's eval run
    OUT/report_row.md   the student's numbers next to the paper's Table 5 row (+ report_row.json)
    OUT/summary.json    {"eval": {task: {"before": {pass@1, ci, n}, "after": {...}}}, "filters": {filter: dropped},
                        "held_out": ..., "timings_s": ...}
    OUT/pipeline.json   stage timings and the recipe in force

Filters, curation and SFT are ``training``'s (``training.curation``, ``training.sft``): this module only chains
them. Before SFT the kept set is checked again (``curation.assert_enforced``): with ``correct`` enforced, not one
sample with another verdict reaches the student.

Re-running resumes: the teacher run skips finished samples, and SFT is skipped when ``OUT/student/train.json`` was
made from the same dataset hash and SFT parameters.
"""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from harness.config import PAPER_GENERATION, parse_overrides
from harness.errors import UserError
from harness.runner import EvalSpec, evaluate
from harness.store import atomic_write_json
from training import curation as cur

from . import report as rpt
from .generate import TeacherConfig, generate, load_teacher_records
from .recipe import RECIPE_DIR, RECIPE_KEYS, apply_overrides, load_recipe, recipe_path  # noqa: F401 - re-exported
from .student import MODEL_DIR, check_sft_params, train

log = logging.getLogger("r1.distill")

STAGES = ("teacher", "dataset", "train", "eval")


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
def evaluate_student(model_dir: Path | str, ecfg: dict, out: Path, data_dir: str | None, overwrite: bool,
                     student: dict | None = None) -> dict:
    gen = PAPER_GENERATION.with_(max_tokens=ecfg.get("max_tokens"), temperature=ecfg.get("temperature"),
                                 top_p=ecfg.get("top_p"))
    if "think_prefix" in ecfg:
        gen = gen.with_(think_prefix=bool(ecfg["think_prefix"]))
    tasks = ecfg.get("tasks") or ["aime2024", "math500", "gpqa_diamond", "livecodebench", "codeforces"]
    opts = dict(ecfg.get("backend_options") or {})
    if ecfg.get("backend", "hf") == "hf" and (student or {}).get("dtype"):
        opts.setdefault("dtype", student["dtype"])
    spec = EvalSpec(tasks=[tasks] if isinstance(tasks, str) else list(tasks), model=str(model_dir),
                    backend=ecfg.get("backend", "hf"), out=out, gen=gen, n=ecfg.get("n"), limit=ecfg.get("limit"),
                    seed=int(ecfg.get("seed", 0)), data_dir=data_dir, overwrite=overwrite, backend_options=opts,
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


def _eval_cell(results: dict | None, task: str, run: Path) -> dict | None:
    r = ((results or {}).get("tasks") or {}).get(task)
    if not r:
        return None
    return {"pass@1": r.get("pass@1"), "ci": r.get("pass@1_ci"), "n": r.get("n_problems"),
            "samples_per_problem": r.get("samples_per_problem"), **_sample_stats(run, task), "run": str(run)}


_INT = re.compile(r"-?\d+")


def _sample_stats(run: Path, task: str) -> dict[str, Any]:
    """How the samples were judged (correct / incorrect / truncated / no_answer ...): what moved, not only how much.
    For integer answers also ``last_number_correct``: samples whose last integer anywhere in the completion is the
    gold answer, whatever the layout (think block closed or not, boxed or not) - a diagnostic that separates
    learning the arithmetic from learning the format; pass@1 stays the evaluation's verdict."""
    if not (Path(run) / "samples.jsonl").is_file():
        return {}
    from harness.task import get_task

    records = [r for r in cur.load_records([run]) if r.get("task") == task]
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.get("verdict"))] = counts.get(str(r.get("verdict")), 0) + 1
    out: dict[str, Any] = {"verdicts": dict(sorted(counts.items()))}
    gold = {p.id: str(p.gold) for p in get_task(task).problems(None, None)} if records else {}
    if records and all(_INT.fullmatch(gold.get(str(r["problem_id"]), "x")) for r in records):
        hits = sum(bool(nums := _INT.findall(r.get("completion") or "")) and nums[-1] == gold[str(r["problem_id"])]
                   for r in records)
        out["last_number_correct"] = {"count": hits, "of": len(records)}
    return out


def held_out_report(records: list[dict], kept: list[dict], eval_cfg: dict, data_dir: str | None) -> dict:
    """Training problems vs evaluated problems, per task: counts and their overlap (0 when decontaminated)."""
    from harness.task import get_task

    tasks = eval_cfg.get("tasks") or []
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    out = {}
    for name in tasks:
        evaluated = {p.id for p in get_task(name).problems(data_dir, eval_cfg.get("limit"))}
        trained = {str(r["problem_id"]) for r in kept if r["task"] == name}
        out[name] = {"eval_problems": len(evaluated), "train_problems": len(trained),
                     "overlap": len(evaluated & trained),
                     "teacher_problems": len({str(r["problem_id"]) for r in records if r["task"] == name})}
    return out


def main(recipe_path: str | Path, overrides: dict | list | None = None) -> dict:
    """Run the whole pipeline for one recipe; returns the report row (also written to OUT/report_row.json)."""
    recipe = load_recipe(recipe_path, overrides)
    out = Path(recipe.get("out") or f"runs/distill/{recipe['name']}")
    out.mkdir(parents=True, exist_ok=True)
    data_dir = recipe.get("data_dir")
    student = recipe["student"]
    sft_params = dict(recipe.get("sft") or {})
    check_sft_params(sft_params)  # a typo in the recipe fails now, not after hours of teacher generation
    specs = cur.parse_filters(recipe.get("filters"), recipe.get("report_only") or ())
    fmt = (recipe.get("dataset") or {}).get("format", "think")
    ecfg = recipe.get("eval") or {}
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
        records = cur.reverify(records, data_dir)
    timings["teacher_s"] = time.perf_counter() - t0
    if stop_after == "teacher":
        return {"stopped_after": "teacher", "teacher_runs": [str(d) for d in run_dirs], "n_records": len(records)}

    # 2. Rejection filters, after decontamination: teacher samples on evaluation problems never reach the student
    #    (recipe decontaminate: false keeps them, and the report row says the row is contaminated).
    t0 = time.perf_counter()
    overlap = train_eval_overlap(records, ecfg, data_dir)
    if recipe.get("decontaminate", True):
        specs = [cur.FilterSpec("decontaminate", {"problems": overlap})] + specs
    result = cur.run_filters(records, specs)
    cur.assert_enforced(result, specs)
    result.kept = cur.cap_per_problem(result.kept, recipe.get("max_per_problem"))
    filter_report = result.report()
    log.info("filters: %s", filter_report)

    # 3. SFT dataset (prompts rebuilt and checked against the generated prompt hashes).
    examples, checks = cur.build_examples(result.kept, data_dir, fmt,
                                          (recipe.get("dataset") or {}).get("special_token", cur.PAPER_SPECIAL_TOKEN))
    dman = cur.write_dataset(examples, out / "dataset", run_dirs, filter_report, checks, fmt,
                             {"recipe": recipe["name"]})
    timings["filter_dataset_s"] = time.perf_counter() - t0
    if stop_after == "dataset":
        return {"stopped_after": "dataset", "filters": filter_report, "dataset": str(out / "dataset")}
    if not examples:
        raise UserError("the distillation dataset is empty: every teacher sample was filtered out (see "
                        f"{out / 'dataset' / cur.MANIFEST_FILE}); generate more samples or relax the recipe's filters")

    # 4. The starting student on the evaluation problems (recipe eval.before), for the before/after comparison.
    before = None
    if ecfg.get("before"):
        from training.grpo import model_dir as hf_dir

        t0 = time.perf_counter()
        before = evaluate_student(hf_dir(student["model"]), ecfg, out / "eval_before", data_dir, overwrite=False,
                                  student=student)
        timings["eval_before_s"] = time.perf_counter() - t0

    # 5. Student SFT (skipped when the same dataset and parameters already produced the model).
    t0 = time.perf_counter()
    student_dir = out / "student"
    retrained = not _train_is_current(student_dir, dman["dataset_sha256"], sft_params, student["model"])
    if retrained:
        tsum = train(examples, student, sft_params, student_dir)
        tsum["dataset_sha256"] = dman["dataset_sha256"]
        atomic_write_json(student_dir / "train.json", tsum)
    else:
        tsum = json.loads((student_dir / "train.json").read_text(encoding="utf-8"))
        log.info("student already trained on this dataset: %s", tsum.get("model_dir"))
    timings["train_s"] = time.perf_counter() - t0
    if stop_after == "train":
        return {"stopped_after": "train", "train": tsum}

    # 6. Student evaluation with the harness runner. A model newer than the eval run (retrained here, or by
    #    `python -m distill.train` since) means a fresh eval run: same path, other weights.
    t0 = time.perf_counter()
    model_dir = Path(tsum.get("model_dir") or student_dir / MODEL_DIR)
    eval_results = out / "eval" / "results.json"
    stale = not eval_results.exists() or eval_results.stat().st_mtime < (student_dir / "train.json").stat().st_mtime
    results = evaluate_student(model_dir, ecfg, out / "eval", data_dir, overwrite=retrained or stale,
                               student=student)
    timings["eval_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all

    # 7. Report row next to the paper's Table 5, and the before/after summary.
    held_out = held_out_report(records, result.kept, ecfg, data_dir)
    row = rpt.build_row(student.get("name") or student["model"], student.get("paper_model"), results, extra={
        "recipe": recipe["name"], "recipe_path": recipe["_path"], "student_model": student["model"],
        "teacher_runs": [str(d) for d in run_dirs], "filters": filter_report,
        "dataset": {k: dman[k] for k in ("n_examples", "n_problems", "format", "dataset_sha256", "per_task")},
        "train": {k: v for k, v in tsum.items() if k not in ("params", "losses")}, "eval_run": str(out / "eval"),
        "train_eval_overlap": overlap, "decontaminated": bool(recipe.get("decontaminate", True)),
        "held_out": held_out, "timings_s": {k: round(v, 2) for k, v in timings.items()},
    })
    tasks = list((results.get("tasks") or {}).keys())
    summary = {
        "recipe": recipe["name"], "student": student["model"], "teacher": (recipe.get("teacher") or {}),
        "eval": {t: {"before": _eval_cell(before, t, out / "eval_before"), "after": _eval_cell(results, t, out / "eval")}
                 for t in tasks},
        "filters": dict(filter_report["dropped"]), "filter_report": filter_report, "held_out": held_out,
        "train": {k: tsum.get(k) for k in ("global_step", "train_loss", "first_logged_loss", "last_logged_loss",
                                           "n_examples", "runtime_s", "model_dir")},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    atomic_write_json(out / "summary.json", summary)
    row["before_after"] = summary["eval"]
    paths = rpt.write_report(row, out)
    atomic_write_json(out / "pipeline.json", {"recipe": {k: v for k, v in recipe.items()}, "timings_s": row["timings_s"],
                                              "report": {k: str(v) for k, v in paths.items()}})
    return row


def plan(recipe_path: str | Path, overrides: dict | list | None = None) -> dict:
    """``r1 distill --dry-run``: every check that needs no model (recipe keys, sft vocabulary, filters, teacher
    backend, tasks and prompt datasets with their column mappings and decontamination, evaluation tasks, which
    teacher problems the held-out rule will drop) and the plan, without generating or training anything."""
    from harness.backends.base import BACKENDS
    from harness.task import get_task
    from training.sft import sft_settings

    recipe = load_recipe(recipe_path, overrides)
    settings = sft_settings(recipe.get("sft"), "recipe sft")
    specs = cur.parse_filters(recipe.get("filters"), recipe.get("report_only") or ())
    tcfg = TeacherConfig.from_dict(recipe.get("teacher"))
    if tcfg.backend not in BACKENDS:
        raise UserError(f"teacher.backend {tcfg.backend!r}: unknown (known: {', '.join(BACKENDS)})")
    data_dir = recipe.get("data_dir")
    sources = []
    if tcfg.data:
        from training.datasets import register_prompt_sources

        names, reports = register_prompt_sources(tcfg.data, where="teacher.data", data_dir=data_dir)
        sources = [{"task": n, **{k: v for k, v in r.items() if k in ("source", "rows", "kept", "dropped")}}
                   for n, r in zip(names, reports)]
    ecfg = recipe.get("eval") or {}
    eval_tasks = ecfg.get("tasks") or ["aime2024", "math500", "gpqa_diamond", "livecodebench", "codeforces"]
    eval_tasks = [eval_tasks] if isinstance(eval_tasks, str) else list(eval_tasks)
    for t in list(tcfg.tasks) + eval_tasks:
        get_task(t)  # an unknown task fails here with the list of known ones
    if ecfg.get("backend", "hf") not in BACKENDS:
        raise UserError(f"eval.backend {ecfg.get('backend')!r}: unknown (known: {', '.join(BACKENDS)})")
    held_out = {}
    for t in set(tcfg.tasks) & set(eval_tasks):
        task = get_task(t)
        taught = {p.id for p in task.problems(data_dir, tcfg.limit)}
        evaluated = {p.id for p in task.problems(data_dir, ecfg.get("limit"))}
        held_out[t] = {"teacher_problems": len(taught), "eval_problems": len(evaluated),
                       "dropped_as_evaluated": len(taught & evaluated), "train_problems": len(taught - evaluated)}
    return {"recipe": recipe["name"], "path": recipe["_path"], "out": recipe.get("out") or f"runs/distill/{recipe['name']}",
            "student": recipe["student"], "teacher": {k: v for k, v in vars(tcfg).items() if v not in ([], {}, None)},
            "teacher_datasets": sources, "filters": [s.name + (" (report only)" if s.report_only else "") for s in specs],
            "decontaminate": bool(recipe.get("decontaminate", True)), "held_out": held_out,
            "sft": {k: v for k, v in vars(settings).items() if v not in ({}, None)},
            "eval": {**ecfg, "tasks": eval_tasks}}


def teacher_preview(recipe_path: str | Path, overrides: dict | list | None, planned: dict, count: int = 2) -> str:
    """The teacher's first requests exactly as its model will receive them (chat template, think prefix, sampling,
    seeds), as `r1 eval --dry-run` prints them: the teacher generates through the same runner."""
    from harness.runner import dry_run

    from .generate import eval_spec

    recipe = load_recipe(recipe_path, overrides)
    tcfg = TeacherConfig.from_dict(recipe.get("teacher"))
    if tcfg.backend == "programmatic":
        return "teacher prompts: none (the programmatic teacher is a program, it reads problems, not prompts)"
    tasks = list(tcfg.tasks) + [s["task"] for s in planned.get("teacher_datasets") or []]
    if not tasks:
        return "teacher prompts: none (the teacher only reuses run_dirs)"
    cfg = TeacherConfig(**{**tcfg.__dict__, "tasks": tasks, "data": []})
    return "teacher " + dry_run(eval_spec(cfg, Path(planned["out"]) / "teacher", recipe.get("data_dir")), count)


# ---------------------------------------------------------------------------------------------- command line
def run_from_args(a) -> int:
    name = getattr(a, "recipe_opt", None) or a.recipe
    if not name or (a.recipe and getattr(a, "recipe_opt", None) and a.recipe != a.recipe_opt):
        raise UserError("r1 distill: give one recipe (positional RECIPE or --recipe RECIPE)")
    overrides = parse_overrides(a.overrides)
    if getattr(a, "dry_run", False):
        if a.out:
            overrides["out"] = a.out
        if a.data_dir:
            overrides["data_dir"] = a.data_dir
        p = plan(name, overrides)
        print(json.dumps(p, indent=1, default=str))
        print(teacher_preview(name, overrides, p))
        print("dry run: recipe, sft settings, filters, teacher, data sources and evaluation check out; nothing ran")
        return 0
    if a.out:
        overrides["out"] = a.out
    if a.data_dir:
        overrides["data_dir"] = a.data_dir
    if a.teacher_runs:
        overrides["teacher.run_dirs"] = list(a.teacher_runs)
    recipe = load_recipe(name, overrides)
    main(recipe["_path"], overrides)
    out = Path(recipe.get("out") or f"runs/distill/{recipe['name']}")
    print((out / "report_row.md").read_text(encoding="utf-8"))
    print(f"report row: {out / 'report_row.md'} and {out / 'report_row.json'}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for task, ba in summary["eval"].items():
        cells = []
        for when in ("before", "after"):
            c = ba.get(when)
            if c and c.get("pass@1") is not None:
                ci = c.get("ci") or [None, None]
                lnc = c.get("last_number_correct")
                cells.append(f"{when} {100 * c['pass@1']:.1f}% [{100 * (ci[0] or 0):.1f}, {100 * (ci[1] or 0):.1f}] "
                             f"(n={c.get('n')}; verdicts {c.get('verdicts')}"
                             + (f"; last number = gold {lnc['count']}/{lnc['of']}" if lnc else "") + ")")
        b, a = ba.get("before") or {}, ba.get("after") or {}
        if b.get("ci") and a.get("ci"):
            apart = a["ci"][0] > b["ci"][1]
            cells.append("after above before, CIs apart" if apart else "CIs overlap: no clear change")
        print(f"{task}: " + ("; ".join(cells) or "not evaluated"))
    print(f"filters dropped: {summary['filters']}; summary: {out / 'summary.json'}")
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
