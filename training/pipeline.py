"""The four-stage DeepSeek-R1 pipeline, as a thin main over a recipe (paper section 2.3):

  1. ``cold_start``     SFT on a trace dataset (``cold_start_data``: e.g. open-r1/Mixture-of-Thoughts)   -> sft.run_sft
  2. ``grpo``           reasoning-oriented RL on a prompt dataset (``grpo.data``), accuracy + format + language
                        consistency rewards by default                                                 -> grpo.train_grpo
  3. ``rejection_sft``  sample a prompt dataset (``rejection.data``) from stage 2 with the harness runner, keep correct
                        readable samples (training/curation.py), optionally re-grade what no rule checks with a
                        generative judge (``rejection.judge``, harness/judge.py), mix in non-reasoning SFT data
                        (``non_reasoning_data``), SFT (from the base model, as the paper)
  4. ``grpo_all``       RL for all scenarios: rule rewards plus any reward model (``model:PATH`` in its rewards: any
                        Hugging Face sequence-classification model), data from ``stage_overrides.grpo_all.data`` or
                        ``grpo.data``.

Every dataset is decontaminated against every benchmark (training/decontam.py) before a stage uses it, and the
counts go into the stage's record; a stage without its inputs fails naming the recipe key, and a recipe that trains
on a benchmark it evaluates on is refused (``allow_train_on_eval: true`` overrides). ``plan(recipe)`` does all of
that without training: ``r1 train --recipe R --dry-run``.

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
from typing import Any, Mapping, Sequence

from harness.config import THINK_PREFIX, GenerationConfig
from harness.errors import UserError
from harness.task import get_task, registry
from tasks.arith import worked_steps

from . import datasets as tds
from .config import RECIPES_DIR, Recipe, load_recipe, with_overrides
from .decontam import check_train_on_eval
from .grpo import check_held_out, evaluate_model, is_main_process, model_dir, on_cpu, train_grpo
from .rewards import MODEL_PREFIX, default_rewards
from .sft import SFTJob, run_sft

STAGES = ("cold_start", "grpo", "rejection_sft", "grpo_all")
PAPER_STAGE_AFTER = ("dev1", "dev2", "dev3", "r1")  # the paper's checkpoint after each of STAGES, run in this order


def paper_stage(stages: Sequence[str]) -> str | None:
    """The paper's name (manifest ``paper_stage``) for the model after running ``stages`` from the base model: R1-Zero
    for GRPO alone, Dev1..R1 for the paper's order cut after a stage; None for any other sequence (not a paper stage)."""
    stages = list(stages)
    if stages == ["grpo"]:
        return "zero"
    if stages and stages == list(STAGES[:len(stages)]):
        return PAPER_STAGE_AFTER[len(stages) - 1]
    return None


# ------------------------------------------------------------------------------------------- cold-start data
def arith_cold_start(limit: int, offset: int = 0) -> list[dict]:
    """Chat examples {"messages": [user, assistant]} with exact worked solutions in the R1 layout."""
    task = get_task("arith")
    rows = []
    for p in task.problems(limit=offset + limit)[offset:]:
        expr = re.match(r"Compute (.*)\.$", p.question).group(1)
        steps, value = worked_steps(expr)
        if str(value) != p.gold:
            raise AssertionError(f"arith cold start: {expr} worked to {value}, gold {p.gold}")
        steps = steps or [f"The expression is just {value}."]
        answer = f"{THINK_PREFIX}We need {expr}.\n" + "\n".join(steps) + f"\n</think>\n{expr} = \\boxed{{{value}}}"
        rows.append({"messages": list(task.prompt(p, 0).messages) + [{"role": "assistant", "content": answer}]})
    return rows


def _decontam_opts(recipe: Recipe) -> dict[str, Any]:
    return {"data_dir": recipe.data_dir, "enabled": recipe.decontaminate, "ngram": recipe.decontam_ngram}


def cold_start_data(recipe: Recipe) -> tds.Loaded:
    """Stage 1's trace rows: ``cold_start_data`` (a trace dataset source), decontaminated."""
    src = recipe.cold_start_data
    if not src:
        raise UserError("stage cold_start needs cold_start_data: a trace dataset (e.g. {hf: open-r1/Mixture-of-Thoughts,"
                        " config: math, path: LOCAL_COPY}) or builtin:arith")
    if isinstance(src, str) and src.startswith("builtin:"):
        if src != "builtin:arith":
            raise UserError(f"cold_start_data {src}: the only builtin is builtin:arith")
        # after the GRPO training slice, so stage 1 never shows the answers stage 2 is rewarded on
        g = recipe.grpo
        start = g.train_offset + (g.train_limit or 0)
        rows = arith_cold_start(recipe.cold_start_limit or 200, offset=max(start, 100))
        loaded = tds.Loaded([{"id": str(i), "problem": r["messages"][0]["content"], "messages": r["messages"]}
                             for i, r in enumerate(rows)], tds.Source(name="builtin:arith"), "trace", "builtin",
                            "generated worked solutions of arith problems", len(rows))
        loaded.decontamination = {"enabled": False, "why": "generated arith problems (the task the demo trains on)"}
        return loaded
    loaded = tds.load_decontaminated(src, "trace", where="cold_start_data", **_decontam_opts(recipe))
    if recipe.cold_start_limit:
        loaded.rows = loaded.rows[:recipe.cold_start_limit]
    return loaded


def cold_start_rows(recipe: Recipe) -> list[dict]:
    return tds.sft_rows(cold_start_data(recipe))


def stage_grpo_settings(recipe: Recipe, name: str):
    """A GRPO stage's settings: ``grpo`` with ``stage_overrides[name]``, rewards defaulted for the stage."""
    s = with_overrides(recipe.grpo, recipe.stage_overrides.get(name))
    if s.rewards is None:
        s = with_overrides(s, {"rewards": default_rewards(name, s.template)})
    return s


def _grpo_where(recipe: Recipe, name: str) -> str:
    ov = recipe.stage_overrides.get(name) or {}
    return f"stage_overrides.{name}" if ("data" in ov or "task" in ov) else "grpo"


def grpo_data(recipe: Recipe, name: str) -> tds.Loaded:
    s = stage_grpo_settings(recipe, name)
    return tds.grpo_prompts(s, where=_grpo_where(recipe, name), data_dir=recipe.data_dir,
                            decontaminate=recipe.decontaminate, ngram=recipe.decontam_ngram)


def rejection_data(recipe: Recipe) -> tds.Loaded:
    """Stage 3's prompts: ``rejection.data`` (a prompt dataset) or ``rejection.task``."""
    rj = recipe.rejection
    if rj.data is not None and rj.task:
        raise UserError("rejection: set one of rejection.data (a prompt dataset) and rejection.task, not both")
    if rj.data is None and not rj.task:
        raise UserError("stage rejection_sft needs prompts to sample: set rejection.data (a prompt dataset, e.g. "
                        "{hf: open-r1/OpenR1-Math-220k, path: LOCAL_COPY}) or rejection.task")
    if rj.data is not None:
        return tds.load_decontaminated(rj.data, "prompt", where="rejection.data", **_decontam_opts(recipe))
    from .config import GRPOSettings

    return tds.grpo_prompts(GRPOSettings(task=rj.task, train_limit=rj.limit), where="rejection",
                            data_dir=recipe.data_dir, decontaminate=recipe.decontaminate, ngram=recipe.decontam_ngram)


def non_reasoning_data(recipe: Recipe) -> tds.Loaded | None:
    if not recipe.non_reasoning_data:
        return None
    return tds.load_decontaminated(recipe.non_reasoning_data, "trace", where="non_reasoning_data",
                                   **_decontam_opts(recipe))


def trained_tasks(recipe: Recipe) -> dict[str, str]:
    """Harness tasks the recipe trains on: {task: recipe key}."""
    out: dict[str, str] = {}
    if recipe.grpo.task:
        out[recipe.grpo.task] = "grpo.task"
    for name, ov in recipe.stage_overrides.items():
        if (ov or {}).get("task"):
            out.setdefault(ov["task"], f"stage_overrides.{name}.task")
    if recipe.rejection.task and "rejection_sft" in recipe.stages:
        out.setdefault(recipe.rejection.task, "rejection.task")
    return out


def check_recipe(recipe: Recipe) -> None:
    """The checks before any data is read: stage names, training on evaluated benchmarks, held-out slices."""
    unknown = [s for s in recipe.stages if s not in STAGES]
    if unknown:
        raise UserError(f"recipe stages: unknown {', '.join(unknown)} (known: {', '.join(STAGES)})")
    check_train_on_eval({t: k for t, k in trained_tasks(recipe).items()}, recipe.eval.tasks,
                        recipe.allow_train_on_eval)
    for name in recipe.stages:
        if name in ("grpo", "grpo_all"):
            check_held_out(recipe, stage_grpo_settings(recipe, name))


# ------------------------------------------------------------------------------------------------- stages
def run_cold_start(recipe: Recipe, start: str, out: Path) -> dict:
    s = with_overrides(recipe.sft, recipe.stage_overrides.get("cold_start"))
    data = cold_start_data(recipe)
    res = run_sft(SFTJob(model=start, data=tds.sft_rows(data), out=str(out), settings=s, device=recipe.device,
                         dtype=recipe.dtype, threads=recipe.threads))
    res["data"] = data.report()
    return res


def run_grpo_stage(recipe: Recipe, name: str, start: str, out: Path) -> dict:
    s = stage_grpo_settings(recipe, name)
    check_held_out(recipe, s)
    data = grpo_data(recipe, name)  # memoized: the trainer's build_dataset reads the same rows
    res = train_grpo(recipe, s, start, out)
    res["data"] = data.report()
    return res


def _judge_regrade(records: list[dict], loaded: tds.Loaded, judge_cfg: dict, out: Path) -> dict[str, int]:
    """Stage 3's generative reward [R1 2.3.3]: samples the rule verifier could not settle (no answer extracted, or a
    verifier error) are graded by a judge model through any OpenAI-compatible endpoint (harness/judge.py, FRAMES'
    TRUE/FALSE rubric); a CORRECT grade makes the record ``correct`` for the filters. Counts are returned."""
    from harness.judge import Judge, JudgeConfig, JudgeItem, RUBRICS

    cfg = dict(judge_cfg)
    rubric = RUBRICS[cfg.pop("rubric", "frames")]
    try:
        judge = Judge(JudgeConfig(**cfg), path=out / "judgments.jsonl")
    except TypeError as e:
        raise UserError(f"rejection.judge: {e} (keys: model, base_url, api_key, concurrency, max_tokens, rubric)")
    by_id = {r["id"]: r for r in loaded.rows}
    todo = [r for r in records if r.get("verdict") in ("no_answer", "error") and str(r["problem_id"]) in by_id]
    items = [JudgeItem(by_id[str(r["problem_id"])]["problem"], by_id[str(r["problem_id"])]["answer"],
                       r.get("completion") or "", rubric, (r["task"], r["problem_id"], r["sample_idx"])) for r in todo]
    try:
        grades = judge.grade_many(items) if items else []
    finally:
        judge.close()
    n_correct = 0
    for r, j in zip(todo, grades):
        r["rule_verdict"], r["judge"] = r.get("verdict"), j.detail()
        if j.status == "correct":
            r["verdict"] = "correct"
            n_correct += 1
    return {"judged": len(items), "judged_correct": n_correct}


def run_rejection_sft(recipe: Recipe, start: str, out: Path) -> dict:
    """Sample the prompt dataset with the harness runner, filter (training/curation.py), build chat examples, SFT."""
    from harness.runner import EvalSpec, evaluate

    from .curation import build_examples, cap_per_problem, load_records, parse_filters, run_filters

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("stage rejection_sft samples with a harness backend (vllm for GPUs), not under a distributed "
                        "launcher: run it alone with `python -m training.pipeline RECIPE stage=3`")
    rj = recipe.rejection
    loaded = rejection_data(recipe)
    task_name = rj.task or tds.task_name_for(loaded.source)
    if not rj.task:
        tds.prompt_task(task_name, loaded.rows)  # the runner samples and scores it like a benchmark
    samples = out / "samples"
    opts: dict[str, Any] = {"batch_size": rj.batch_size} if rj.backend == "hf" else {}
    if rj.backend == "hf" and on_cpu(recipe):
        opts["device"] = "cpu"
    gen = GenerationConfig(temperature=rj.temperature, top_p=rj.top_p, max_tokens=rj.max_tokens, think_prefix=True)
    evaluate(EvalSpec(tasks=[task_name], model=model_dir(start), backend=rj.backend, out=samples, gen=gen,
                      n=rj.samples_per_prompt, limit=rj.limit, batch_size=rj.batch_size, backend_options=opts,
                      data_dir=recipe.data_dir, progress=False))
    records = load_records([samples])
    judged = _judge_regrade(records, loaded, rj.judge, out) if rj.judge else None
    result = run_filters(records, parse_filters(rj.filters, rj.report_only))
    kept = cap_per_problem(result.kept, rj.max_per_prompt)
    examples, checks = build_examples(kept, recipe.data_dir, "think")
    rows = [{"messages": e["messages"]} for e in examples]
    extra = non_reasoning_data(recipe)
    if extra is not None:
        rows += tds.sft_rows(extra)
    (out / "filter_report.json").write_text(json.dumps({**result.report(), "prompt_checks": checks,
                                                        "judge": judged, "sft_examples": len(rows)}, indent=1))
    if not rows:
        raise UserError(f"stage rejection_sft: no sample of {len(records)} passed the filters "
                        f"(see {out / 'filter_report.json'}); sample more, or list 'correct' under report_only")
    sft_start = recipe.model if rj.sft_from == "base" else start
    s = with_overrides(recipe.sft, recipe.stage_overrides.get("rejection_sft"))
    res = run_sft(SFTJob(model=sft_start, data=rows, out=str(out / "sft"), settings=s, device=recipe.device,
                         dtype=recipe.dtype, threads=recipe.threads))
    res["rejection"] = {**result.report(), "sft_examples": len(rows), "sft_from": sft_start, "judge": judged,
                        "reasoning_examples": len(examples),
                        "non_reasoning_examples": len(extra.rows) if extra is not None else 0}
    res["data"] = {"prompts": loaded.report(), "non_reasoning": extra.report() if extra is not None else None}
    return res


RUNNERS = {"cold_start": run_cold_start, "grpo": lambda r, s, o: run_grpo_stage(r, "grpo", s, o),
           "rejection_sft": run_rejection_sft, "grpo_all": lambda r, s, o: run_grpo_stage(r, "grpo_all", s, o)}


# ------------------------------------------------------------------------------------------------ dry run
def _check_rewards(names: list[str], s) -> list[str]:
    """Every reward resolvable; reward models only checked for a loadable config (no weights read)."""
    from .rewards import make_reward

    out = []
    for n in names:
        if n.startswith(MODEL_PREFIX):
            from transformers import AutoConfig

            path = n[len(MODEL_PREFIX):]
            from harness import hub

            try:
                cfg = AutoConfig.from_pretrained(hub.local_or_hub(path, f"reward {MODEL_PREFIX}"))
            except (OSError, ValueError) as e:
                raise UserError(f"reward {n}: no loadable model config ({str(e)[:160]})") from None
            out.append(f"{n} (reward model, {cfg.model_type})")
            continue
        try:
            make_reward(n, prefix=None, target_language=s.target_language)
        except ValueError as e:
            raise UserError(f"rewards: {e}") from None
        out.append(n)
    return out


def _prompt_preview(recipe: Recipe, s, loaded: tds.Loaded) -> str:
    """The first training prompt exactly as GRPO renders it (training/grpo.render_prompt)."""
    from .grpo import load_tokenizer

    task = registry().get(loaded.source.label.removeprefix("task:")) if loaded.source.label.startswith("task:") else None
    if task is not None and task.withhold_text:
        return f"({task.name} prompts are never printed: its authors forbid publishing them)"
    tok = None
    if s.template == "chat":
        try:
            tok = load_tokenizer(model_dir(recipe.model))
        except Exception as e:  # noqa: BLE001 - offline hub id: say so instead of failing the plan
            msgs = loaded.rows[0].get("messages") or tds.prompt_messages(loaded.rows[0])
            return f"(chat template of {recipe.model} unavailable here: {type(e).__name__}) messages: " + \
                json.dumps(msgs, ensure_ascii=False)
    return tds.grpo_rows(s, tok, recipe.data_dir, loaded)[0]["prompt"]


def _launch(recipe: Recipe, stage_settings: list) -> dict[str, Any] | None:
    if not recipe.launch:
        return None
    import yaml

    lc = dict(recipe.launch)
    unknown = sorted(set(lc) - {"config_file", "num_processes", "num_machines"})
    if unknown:
        raise UserError(f"launch: unknown key(s) {', '.join(unknown)} (config_file, num_processes, num_machines)")
    cfg_file = Path(lc.get("config_file") or "")
    if not cfg_file.is_file() and (RECIPES_DIR.parent.parent / cfg_file).is_file():
        cfg_file = RECIPES_DIR.parent.parent / cfg_file
    if not cfg_file.is_file():
        raise UserError(f"launch.config_file: no such file {lc.get('config_file')!r}")
    acc = yaml.safe_load(cfg_file.read_text()) or {}
    nproc = int(lc.get("num_processes") or acc.get("num_processes") or 1)
    for name, s in stage_settings:
        eff = nproc * s.per_device_train_batch_size * s.gradient_accumulation_steps
        if eff % s.num_generations:
            raise UserError(f"launch: stage {name}: {nproc} processes x per_device_train_batch_size "
                            f"{s.per_device_train_batch_size} x gradient_accumulation_steps "
                            f"{s.gradient_accumulation_steps} = {eff} completions per step, not a multiple of "
                            f"num_generations {s.num_generations} (TRL needs whole groups)")
    cmd = (f"accelerate launch --config_file {lc.get('config_file')} --num_processes {nproc}"
           + (f" --num_machines {lc['num_machines']}" if lc.get("num_machines") else "")
           + f" -m training.pipeline {recipe.name}" + (" stage=N" if len(recipe.stages) > 1 else ""))
    ds = acc.get("deepspeed_config") or {}
    zero = ds.get("zero_stage")
    if zero is None and ds.get("deepspeed_config_file"):  # the DeepSpeed JSON the accelerate config points at
        ds_file = Path(ds["deepspeed_config_file"])
        ds_file = ds_file if ds_file.is_file() else RECIPES_DIR.parent.parent / ds_file
        if not ds_file.is_file():
            raise UserError(f"launch.config_file {cfg_file}: deepspeed_config_file {ds['deepspeed_config_file']} "
                            f"does not exist")
        zero = (json.loads(ds_file.read_text()).get("zero_optimization") or {}).get("stage")
    return {"config_file": str(cfg_file), "distributed_type": acc.get("distributed_type"),
            "zero_stage": zero, "num_processes": nproc,
            "command": cmd,
            "prompts_per_step": {n: nproc * s.per_device_train_batch_size * s.gradient_accumulation_steps
                                 // s.num_generations for n, s in stage_settings}}


def _trl_grpo_config(recipe: Recipe, s, cpu: bool):
    """TRL's own validation of every GRPO field. TRL checks whole groups per step for the processes it sees (one,
    here); with a launch of N processes the global batch is N times larger, which ``_launch`` checks instead."""
    from .grpo import grpo_config

    try:
        return grpo_config(s, "/tmp/r1-dry-run", cpu)
    except TypeError as e:  # an unknown field under grpo.extra
        raise UserError(f"grpo settings refused by TRL's GRPOConfig: {e}") from None
    except ValueError as e:
        nproc = int((recipe.launch or {}).get("num_processes") or 1)
        if "divisible" in str(e) and nproc > 1:
            try:
                return grpo_config(with_overrides(s, {"per_device_train_batch_size":
                                                      s.per_device_train_batch_size * nproc}), "/tmp/r1-dry-run", cpu)
            except ValueError:
                eff = nproc * s.per_device_train_batch_size * s.gradient_accumulation_steps
                raise UserError(f"launch: {nproc} processes x per_device_train_batch_size "
                                f"{s.per_device_train_batch_size} x gradient_accumulation_steps "
                                f"{s.gradient_accumulation_steps} = {eff} completions per step, not a multiple of "
                                f"num_generations {s.num_generations} (TRL needs whole groups)") from None
        raise UserError(f"grpo settings refused by TRL's GRPOConfig: {e}") from None


def _trl_sft_config(s, cpu: bool, name: str):
    from .sft import sft_config

    try:
        return sft_config(s, "/tmp/r1-dry-run", cpu)
    except (ValueError, TypeError) as e:
        raise UserError(f"stage {name}: sft settings refused by TRL's SFTConfig: {e}") from None


def plan(recipe_path: str | None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Everything a run would check, without training: recipe keys, each stage's data (sources, column mappings,
    decontamination), rewards, TRL configs, evaluation tasks, launch settings; and a rendered training prompt."""
    from harness.task import get_task

    overrides = dict(overrides or {})
    overrides.pop("stage", None)
    recipe = load_recipe(recipe_path, overrides)
    check_recipe(recipe)
    if recipe.data_dir:
        os.environ["R1_DATA_DIR"] = str(recipe.data_dir)
    cpu = on_cpu(recipe)
    out: dict[str, Any] = {"recipe": recipe.name, "model": recipe.model, "out": recipe.out,
                           "decontaminate": recipe.decontaminate, "ngram": recipe.decontam_ngram,
                           "allow_train_on_eval": recipe.allow_train_on_eval, "stages": []}
    grpo_stages = []
    for i, name in enumerate(recipe.stages, 1):
        st: dict[str, Any] = {"stage": i, "name": name}
        if name == "cold_start":
            d = cold_start_data(recipe)
            st["data"] = d.report()
            s = with_overrides(recipe.sft, recipe.stage_overrides.get("cold_start"))
            _trl_sft_config(s, cpu, name)
            st["sft"] = {"learning_rate": s.learning_rate, "epochs": s.num_train_epochs, "max_steps": s.max_steps,
                         "max_length": s.max_length}
            st["example"] = d.rows[0]["messages"]
        elif name in ("grpo", "grpo_all"):
            s = stage_grpo_settings(recipe, name)
            d = grpo_data(recipe, name)
            st["data"] = d.report()
            st["rewards"] = _check_rewards(s.rewards, s)
            cfg = _trl_grpo_config(recipe, s, cpu)
            st["trl"] = {"learning_rate": cfg.learning_rate, "beta": cfg.beta, "loss_type": cfg.loss_type,
                         "epsilon": cfg.epsilon, "num_generations": cfg.num_generations,
                         "max_completion_length": cfg.max_completion_length, "max_steps": cfg.max_steps,
                         # the sampling of the rollouts, as issue 13's dry-run asks (what the model sees and how)
                         "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed,
                         "template": s.template, "think_prefix": s.think_prefix}
            st["prompt"] = _prompt_preview(recipe, s, d)
            grpo_stages.append((name, s))
        elif name == "rejection_sft":
            from .curation import parse_filters

            rj = recipe.rejection
            d = rejection_data(recipe)
            nr = non_reasoning_data(recipe)
            st["data"] = d.report()
            st["non_reasoning_data"] = nr.report() if nr is not None else "none (non_reasoning_data unset)"
            st["filters"] = [f.name + (" (report only)" if f.report_only else "")
                             for f in parse_filters(rj.filters, rj.report_only)]
            if rj.judge is not None:
                missing = [k for k in ("model", "base_url") if not (rj.judge or {}).get(k)]
                if missing:
                    raise UserError(f"rejection.judge: missing {', '.join(missing)} (an OpenAI-compatible endpoint)")
                st["judge"] = {"model": rj.judge["model"], "base_url": rj.judge["base_url"]}
            st["sampling"] = {"backend": rj.backend, "samples_per_prompt": rj.samples_per_prompt,
                              "max_tokens": rj.max_tokens, "temperature": rj.temperature, "limit": rj.limit,
                              "sft_from": rj.sft_from}
            s = with_overrides(recipe.sft, recipe.stage_overrides.get("rejection_sft"))
            _trl_sft_config(s, cpu, name)
        out["stages"].append(st)
    ev = recipe.eval
    for t in ev.tasks:
        get_task(t)
    out["eval"] = {"enabled": ev.enabled, "tasks": list(ev.tasks), "limit": ev.limit, "backend": ev.backend,
                   "max_tokens": ev.max_tokens, "temperature": ev.temperature, "top_p": ev.top_p}
    out["launch"] = _launch(recipe, grpo_stages)
    return out


def format_plan(p: dict) -> str:
    """The plan as text for the terminal (no benchmark text: reports carry counts and ids only)."""
    lines = [f"recipe {p['recipe']}: model {p['model']} -> {p['out']}",
             f"decontamination: {'on' if p['decontaminate'] else 'OFF'} ({p['ngram']}-gram overlap + id match against "
             f"every benchmark); allow_train_on_eval: {p['allow_train_on_eval']}"]

    def data_line(label: str, d: dict) -> list[str]:
        out = [f"  {label}: {d['source']} [{d['kind']}, format {d['format']}] from {d['origin']}",
               f"    rows read {d['rows_read']}, skipped {sum(d['skipped'].values())}"
               + (f" {d['skipped']}" if d["skipped"] else "") + f", used {d['rows']}"]
        dc = d.get("decontamination") or {}
        if dc.get("enabled") is False:
            out.append(f"    decontamination: off ({dc.get('why', 'recipe decontaminate: false')})")
        elif dc:
            out.append(f"    decontamination: {dc['dropped']} of {dc['input']} dropped {dc['by_benchmark'] or ''}"
                       f" (checked {len(dc['benchmarks'])} benchmarks"
                       + (f", excluded {dc['excluded']}" if dc.get("excluded") else "")
                       + (f", UNCHECKED {sorted(dc['unchecked'])}" if dc.get("unchecked") else "") + ")")
        return out

    for st in p["stages"]:
        lines.append(f"stage {st['stage']} {st['name']}")
        if "data" in st:
            lines += data_line("data", st["data"])
        if isinstance(st.get("non_reasoning_data"), dict):
            lines += data_line("non-reasoning data", st["non_reasoning_data"])
        elif "non_reasoning_data" in st:
            lines.append(f"  non-reasoning data: {st['non_reasoning_data']}")
        for k in ("sft", "rewards", "trl", "filters", "judge", "sampling"):
            if k in st:
                lines.append(f"  {k}: {st[k]}")
        if "prompt" in st:
            lines.append("  rendered training prompt:")
            lines += ["    | " + ln for ln in str(st["prompt"]).splitlines()]
        if "example" in st:
            lines.append(f"  first example: {json.dumps(st['example'], ensure_ascii=False)[:400]}")
    ev = p["eval"]
    lines.append(f"eval: {'on' if ev['enabled'] else 'off'}, tasks {', '.join(ev['tasks'])}, limit {ev['limit']}, "
                 f"backend {ev['backend']}, max_tokens {ev['max_tokens']}, temperature {ev['temperature']}, "
                 f"top_p {ev['top_p']}")
    if p.get("launch"):
        la = p["launch"]
        lines.append(f"launch: {la['command']}  ({la['distributed_type']}, ZeRO {la['zero_stage']}, prompts per step "
                     f"{la['prompts_per_step']})")
    lines.append("dry run: nothing was trained")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- main
def main(recipe_path: str | None, overrides: Mapping[str, Any] | None = None, stage: int | None = None) -> dict:
    overrides = dict(overrides or {})
    stage = overrides.pop("stage", stage)
    recipe = load_recipe(recipe_path, overrides)
    check_recipe(recipe)
    if recipe.data_dir:  # --data-dir: the benchmark mirror for decontamination and every harness run below
        os.environ["R1_DATA_DIR"] = str(recipe.data_dir)
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
    start_dir = model_dir(recipe.model)  # converted (GGUF) before any stage, by every rank alike
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
    # Evaluations only after the stages: each stage ended in save_trained's barrier, so under a distributed launch no
    # rank waits inside a collective while rank 0 generates (training/dist.py). The starting model is a file.
    if evals and recipe.eval.before and "eval_before" not in record and stage in (None, 1):
        record["eval_before"] = evaluate_model(start_dir, recipe.eval, out / "eval_before", dev)
    if evals and stage in (None, len(recipe.stages)):
        record["eval_after"] = evaluate_model(current, recipe.eval, out / "eval_after", dev,
                                              paper_stage=paper_stage(recipe.stages))
    if is_main_process():
        record_path.write_text(json.dumps(record, indent=1, default=str))
    return record


if __name__ == "__main__":  # python -m training.pipeline RECIPE [key=value ...] [stage=N]
    import sys

    from harness.config import parse_overrides

    print(json.dumps(main(sys.argv[1], parse_overrides(sys.argv[2:])), indent=1, default=str))


__all__ = ["STAGES", "main", "plan", "format_plan", "check_recipe", "arith_cold_start", "run_rejection_sft",
           "cold_start_data", "grpo_data", "rejection_data", "non_reasoning_data", "stage_grpo_settings"]
