"""The four-stage DeepSeek-R1 pipeline, as a thin main over a recipe (paper section 2.3):

  1. ``cold_start``     SFT on long-CoT examples in a readable format (``recipe.cold_start_data``)      -> sft.run_sft
  2. ``grpo``           reasoning-oriented RL, accuracy + format (+ language consistency) rewards      -> grpo.train_grpo
  3. ``rejection_sft``  sample from stage 2 with the harness runner, keep correct readable samples
                        (distill/filters.py), add non-reasoning data, SFT (from the base model, as the paper)
  4. ``grpo_all``       RL for all scenarios: rule rewards for reasoning. The paper's helpfulness / harmlessness
                        reward models are not reproduced (no preference data here); a recipe can list only rule rewards.

Each stage writes ``out/<n>_<stage>/`` and hands its checkpoint to the next; ``out/pipeline.json`` records every
stage's summary. A stage whose summary already exists is not re-run (resume after a crash). ``stage=N`` runs only
stage N, from the checkpoint of the stage before it (or the recipe's model for N = 1).

On GPUs: the training stages run under ``accelerate launch --config_file training/accelerate/zero3.yaml -m
training.pipeline RECIPE stage=N`` (rank 0 writes the record); stage 3 samples with a harness backend (``vllm``) and
runs alone (``python -m training.pipeline RECIPE stage=3``), then its SFT.

``cold_start_data: builtin:arith`` generates worked solutions of `arith` problems (exact, by code) in the R1 layout
``<think>\\n steps \\n</think>\\n summary \\boxed{x}`` - a stand-in for the paper's thousands of curated CoTs that
lets the CPU recipe run all four stages on the embedded model.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from harness.config import THINK_PREFIX, GenerationConfig
from harness.errors import UserError
from harness.task import get_task

from .config import Recipe, load_recipe, with_overrides
from .grpo import check_held_out, evaluate_model, is_main_process, model_dir, on_cpu, train_grpo
from .sft import SFTJob, load_messages, run_sft

STAGES = ("cold_start", "grpo", "rejection_sft", "grpo_all")


# ------------------------------------------------------------------------------------------- cold-start data
def _arith_steps(expr: str) -> tuple[list[str], int]:
    """Worked steps for an `arith` expression: multiplications first, then left to right."""
    toks = expr.split()
    nums, ops = [int(toks[0])], []
    steps = []
    for op, t in zip(toks[1::2], toks[2::2]):
        if op == "*":
            a, b = nums[-1], int(t)
            steps.append(f"Multiplication first: {a} * {b} = {a * b}.")
            nums[-1] = a * b
        else:
            ops.append(op)
            nums.append(int(t))
    acc = nums[0]
    for op, n in zip(ops, nums[1:]):
        new = acc + n if op == "+" else acc - n
        steps.append(f"Then {acc} {op} {n} = {new}.")
        acc = new
    return steps, acc


def arith_cold_start(limit: int, offset: int = 0) -> list[dict]:
    """Chat examples {"messages": [user, assistant]} with exact worked solutions in the R1 layout."""
    task = get_task("arith")
    rows = []
    for p in task.problems(limit=offset + limit)[offset:]:
        expr = re.match(r"Compute (.*)\.$", p.question).group(1)
        steps, value = _arith_steps(expr)
        if str(value) != p.gold:
            raise AssertionError(f"arith cold start: {expr} worked to {value}, gold {p.gold}")
        steps = steps or [f"The expression is just {value}."]
        answer = f"{THINK_PREFIX}We need {expr}.\n" + "\n".join(steps) + f"\n</think>\n{expr} = \\boxed{{{value}}}"
        rows.append({"messages": list(task.prompt(p, 0).messages) + [{"role": "assistant", "content": answer}]})
    return rows


def cold_start_rows(recipe: Recipe) -> list[dict]:
    src = recipe.cold_start_data
    if not src:
        raise UserError("stage cold_start: set cold_start_data (a JSONL of {messages: [...]}, or builtin:arith)")
    if src.startswith("builtin:"):
        if src != "builtin:arith":
            raise UserError(f"cold_start_data {src}: the only builtin is builtin:arith")
        # after the GRPO training slice, so stage 1 never shows the answers stage 2 is rewarded on
        g = recipe.grpo
        start = g.train_offset + (g.train_limit or 0)
        return arith_cold_start(recipe.cold_start_limit or 200, offset=max(start, 100))
    rows = load_messages(src)
    return rows[:recipe.cold_start_limit] if recipe.cold_start_limit else rows


# ------------------------------------------------------------------------------------------------- stages
def run_cold_start(recipe: Recipe, start: str, out: Path) -> dict:
    s = with_overrides(recipe.sft, recipe.stage_overrides.get("cold_start"))
    res = run_sft(SFTJob(model=start, data=cold_start_rows(recipe), out=str(out), settings=s, device=recipe.device,
                         dtype=recipe.dtype, threads=recipe.threads))
    return res


def run_grpo_stage(recipe: Recipe, name: str, start: str, out: Path) -> dict:
    s = with_overrides(recipe.grpo, recipe.stage_overrides.get(name))
    check_held_out(recipe, s)
    return train_grpo(recipe, s, start, out)


def run_rejection_sft(recipe: Recipe, start: str, out: Path) -> dict:
    """Sample with the harness runner, filter with distill's funnel, build chat examples, SFT."""
    from distill.dataset import build_examples
    from distill.filters import parse_filters, run_filters
    from distill.generate import load_teacher_records
    from harness.runner import EvalSpec, evaluate

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("stage rejection_sft samples with a harness backend (vllm for GPUs), not under a distributed "
                        "launcher: run it alone with `python -m training.pipeline RECIPE stage=3`")
    rj = recipe.rejection
    samples = out / "samples"
    opts: dict[str, Any] = {"batch_size": rj.batch_size} if rj.backend == "hf" else {}
    if rj.backend == "hf" and on_cpu(recipe):
        opts["device"] = "cpu"
    gen = GenerationConfig(temperature=rj.temperature, top_p=rj.top_p, max_tokens=rj.max_tokens, think_prefix=True)
    evaluate(EvalSpec(tasks=[rj.task], model=model_dir(start), backend=rj.backend, out=samples, gen=gen,
                      n=rj.samples_per_prompt, limit=rj.limit, batch_size=rj.batch_size, backend_options=opts,
                      progress=False))
    records = load_teacher_records([samples])
    result = run_filters(records, parse_filters(rj.filters, rj.report_only))
    kept = result.kept
    if rj.max_per_prompt:
        per_problem: dict[str, int] = {}
        capped = []
        for r in kept:
            n = per_problem.get(r["problem_id"], 0)
            if n < rj.max_per_prompt:
                capped.append(r)
                per_problem[r["problem_id"]] = n + 1
        kept = capped
    examples, checks = build_examples(kept, fmt="think")
    rows = [{"messages": e["messages"]} for e in examples]
    if recipe.non_reasoning_data:
        rows += load_messages(recipe.non_reasoning_data)
    (out / "filter_report.json").write_text(json.dumps({**result.report(), "prompt_checks": checks,
                                                        "sft_examples": len(rows)}, indent=1))
    if not rows:
        raise UserError(f"stage rejection_sft: no sample of {len(records)} passed the filters "
                        f"(see {out / 'filter_report.json'}); sample more, or list 'correct' under report_only")
    sft_start = recipe.model if rj.sft_from == "base" else start
    s = with_overrides(recipe.sft, recipe.stage_overrides.get("rejection_sft"))
    res = run_sft(SFTJob(model=sft_start, data=rows, out=str(out / "sft"), settings=s, device=recipe.device,
                         dtype=recipe.dtype, threads=recipe.threads))
    res["rejection"] = {**result.report(), "sft_examples": len(rows), "sft_from": sft_start}
    return res


RUNNERS = {"cold_start": run_cold_start, "grpo": lambda r, s, o: run_grpo_stage(r, "grpo", s, o),
           "rejection_sft": run_rejection_sft, "grpo_all": lambda r, s, o: run_grpo_stage(r, "grpo_all", s, o)}


# ---------------------------------------------------------------------------------------------------- main
def main(recipe_path: str | None, overrides: Mapping[str, Any] | None = None, stage: int | None = None) -> dict:
    overrides = dict(overrides or {})
    stage = overrides.pop("stage", stage)
    recipe = load_recipe(recipe_path, overrides)
    unknown = [s for s in recipe.stages if s not in STAGES]
    if unknown:
        raise UserError(f"recipe stages: unknown {', '.join(unknown)} (known: {', '.join(STAGES)})")
    out = Path(recipe.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=1))
    record_path = out / "pipeline.json"
    record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.update(recipe=recipe.name, out=str(out), stages=record.get("stages", {}))
    if stage is not None and not 1 <= int(stage) <= len(recipe.stages):
        raise UserError(f"--stage {stage}: the recipe has stages 1..{len(recipe.stages)} ({', '.join(recipe.stages)})")
    dev = "cpu" if on_cpu(recipe) else recipe.device
    evals = recipe.eval.enabled and is_main_process()
    if evals and recipe.eval.before and "eval_before" not in record and stage in (None, 1):
        record["eval_before"] = evaluate_model(model_dir(recipe.model), recipe.eval, out / "eval_before", dev)
    current = recipe.model
    for i, name in enumerate(recipe.stages, 1):
        key = f"{i}_{name}"
        done = record["stages"].get(key)
        if stage is not None and i != int(stage):
            if done:
                current = done["checkpoint"]
            continue
        if done and Path(done["checkpoint"]).is_dir():
            current = done["checkpoint"]  # resume: finished stages are not re-run
            continue
        res = RUNNERS[name](recipe, current, out / key)
        record["stages"][key] = res
        if is_main_process():
            record_path.write_text(json.dumps(record, indent=1, default=str))
        current = res["checkpoint"]
    record["final_checkpoint"] = current
    if evals and stage in (None, len(recipe.stages)):
        record["eval_after"] = evaluate_model(current, recipe.eval, out / "eval_after", dev)
    if is_main_process():
        record_path.write_text(json.dumps(record, indent=1, default=str))
    return record


if __name__ == "__main__":  # python -m training.pipeline RECIPE [key=value ...] [stage=N]
    import sys

    from harness.config import parse_overrides

    print(json.dumps(main(sys.argv[1], parse_overrides(sys.argv[2:])), indent=1, default=str))


__all__ = ["STAGES", "main", "arith_cold_start", "run_rejection_sft"]
