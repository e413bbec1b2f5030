"""GRPO (R1-Zero, and R1 stages 2 and 4) with TRL, rewarded by the harness's own verifiers.

``main(recipe_path, overrides) -> dict`` reads top to bottom: recipe -> prompts from a task in tasks/ -> policy
(HF id / dir, or the embedded GGUF converted once to a transformers checkpoint) -> TRL GRPOTrainer with the
recipe's GRPOConfig (the paper's values set explicitly, see training/config.py) -> save -> evaluate the saved
checkpoint with the harness runner on a held-out slice, before and after.

Prompts: ``template: r1_zero`` is the paper's raw-text R1-Zero template around the task's own user prompt;
``template: chat`` renders the task's messages with the model's chat template (the prompt the evaluation uses).
Either way ``think_prefix`` ends the prompt with ``"<think>\\n"`` and the rewards put it back before checking format.
Training problems are ``[train_offset : train_offset + train_limit]``; evaluation takes the first ``eval.limit``, so
keep ``train_offset >= eval.limit`` for a held-out evaluation (checked).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

from harness.config import THINK_PREFIX, GenerationConfig
from harness.errors import UserError
from harness.task import Task, get_task

from .config import R1_ZERO_TEMPLATE, EvalSettings, GRPOSettings, Recipe, load_recipe
from .dist import is_main_process, save_trained, world_size
from .rewards import make_rewards

log = logging.getLogger("r1.training.grpo")
_CHOICE_TASKS = {"gpqa_diamond", "mmlu"}


# ---------------------------------------------------------------------------------------------------- devices
def on_cpu(recipe: Recipe) -> bool:
    import torch

    return recipe.device == "cpu" or (recipe.device == "auto" and not torch.cuda.is_available())


def torch_dtype(recipe: Recipe) -> str:
    if recipe.dtype != "auto":
        return recipe.dtype
    return "float32" if on_cpu(recipe) else "bfloat16"


# ---------------------------------------------------------------------------------------------------- model
def model_dir(model: str) -> str:
    """A directory transformers (and TRL's reference model) can load with ``from_pretrained(dir)``.

    HF ids and checkpoint dirs pass through. ``embedded`` / a GGUF is dequantized once with transformers and saved as a
    plain checkpoint in the cache (TRL rebuilds the reference model from ``config._name_or_path``, which a GGUF
    load cannot serve)."""
    from harness.models import EMBEDDED, _cache_dir, file_sha256, is_gguf_path, resolve_gguf

    local = Path(model).expanduser()
    is_gguf_dir = local.is_dir() and not (local / "config.json").is_file() and any(local.glob("*.gguf"))
    if not (model == EMBEDDED or is_gguf_path(model) or is_gguf_dir):
        from harness import hub

        return hub.local_or_hub(model)  # a hub id when the hub is unreachable: its cached snapshot, or one clear error
    path = resolve_gguf(model)
    out = _cache_dir() / "hf-from-gguf" / file_sha256(path)[:32]
    if (out / "config.json").is_file():
        return str(out)
    from harness.backends.hf import load_model_and_tokenizer

    lm, tok, _ = load_model_and_tokenizer(str(path), "float32", "cpu")
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    save_checkpoint(lm, tok, tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process converted it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def save_checkpoint(model, tokenizer, out: str | Path) -> str:
    """save_pretrained for a model loaded from a GGUF too: the weights are already dequantized, so the GGUF
    quantizer and its config entry are dropped (transformers refuses to serialize a GGUF-quantized model)."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    Path(out).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return str(out)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


# ---------------------------------------------------------------------------------------------------- data
def task_kind(task: Task) -> str:
    from tasks.math500 import MathTask

    if task.name == "arith" or isinstance(task, MathTask):
        return "math"
    if task.name in _CHOICE_TASKS:
        return "choice"
    return "code"


def render_prompt(messages: list[dict], template: str, think_prefix: bool, tokenizer=None) -> str:
    prefix = THINK_PREFIX if think_prefix else ""
    if template == "r1_zero":
        question = "\n".join(m["content"] for m in messages if m.get("role") == "user")
        return R1_ZERO_TEMPLATE.format(prompt=question) + (" " + prefix if prefix else "")
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise UserError("template 'chat' needs a tokenizer with a chat template")
        from harness.prompting import add_prefix

        # once, as the evaluation does: R1-Distill templates since 2025-02 already end with "<think>\n"
        return add_prefix(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), prefix)
    raise UserError(f"unknown prompt template {template!r} (r1_zero | chat)")


def build_dataset(s: GRPOSettings, tokenizer=None, data_dir: str | None = None):
    """Rows {prompt, gold, kind, task, problem_id (+ tests, mode, func_name for code)}: the prompt dataset
    ``s.data`` or the task ``s.task``, decontaminated (training/datasets.py: grpo_prompts, grpo_rows)."""
    from datasets import Dataset

    from .datasets import grpo_rows

    return Dataset.from_list(grpo_rows(s, tokenizer, data_dir))


# ---------------------------------------------------------------------------------------------------- trainer
def grpo_config(s: GRPOSettings, out: str, cpu: bool):
    from trl import GRPOConfig

    from .sft import deepspeed_launch

    kw: dict[str, Any] = dict(
        output_dir=out, learning_rate=s.learning_rate, beta=s.beta, loss_type=s.loss_type, epsilon=s.epsilon,
        num_generations=s.num_generations, scale_rewards=s.scale_rewards, num_iterations=s.num_iterations,
        temperature=s.temperature, top_p=s.top_p, max_completion_length=s.max_completion_length,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps, max_steps=s.max_steps,
        num_train_epochs=s.num_train_epochs, mask_truncated_completions=s.mask_truncated_completions,
        lr_scheduler_type=s.lr_scheduler_type, warmup_steps=s.warmup_steps, max_grad_norm=s.max_grad_norm,
        weight_decay=s.weight_decay, logging_steps=s.logging_steps, save_steps=s.save_steps,
        save_strategy=s.save_strategy, seed=s.seed, reward_weights=s.reward_weights, report_to="none",
        bf16=s.bf16, gradient_checkpointing=s.gradient_checkpointing, use_vllm=s.use_vllm,
        sync_ref_model=s.sync_ref_model and s.beta > 0, ref_model_sync_steps=s.ref_model_sync_steps,
        ref_model_mixup_alpha=s.ref_model_mixup_alpha, remove_unused_columns=False,
    )
    if s.use_vllm:
        kw["vllm_mode"] = s.vllm_mode
    if cpu:  # TRL on CPU: no bf16 autocast, no checkpointing, no vLLM
        kw.update(bf16=False, gradient_checkpointing=False, use_vllm=False)
        if not deepspeed_launch():  # accelerate turns DeepSpeed off when TrainingArguments ask for use_cpu
            kw.update(use_cpu=True)
        else:  # DeepSpeed's CPU accelerator (DS_ACCELERATOR=cpu): without a named backend accelerate sees 1 process
            kw.update(ddp_backend="gloo")
    kw.update(s.extra)
    return GRPOConfig(**kw)


def reward_history(log_history: list[dict]) -> list[dict]:
    """Per logged step: step, total reward, per-reward means, loss, KL (TRL's log keys)."""
    out = []
    for e in log_history:
        if "reward" not in e:
            continue
        row = {"step": e.get("step"), "reward": e["reward"], "loss": e.get("loss"), "kl": e.get("kl")}
        row.update({k.split("/")[1]: v for k, v in e.items() if k.startswith("rewards/") and k.endswith("/mean")})
        out.append(row)
    return out


def train_grpo(recipe: Recipe, s: GRPOSettings, start_model: str, out: str | Path) -> dict:
    """One GRPO stage from ``start_model`` (HF id / dir / GGUF); the trained checkpoint is saved to ``out/final``."""
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    out = Path(out)
    cpu = on_cpu(recipe)
    if recipe.threads:
        import torch

        torch.set_num_threads(int(recipe.threads))
    path = model_dir(start_model)
    tokenizer = load_tokenizer(path)
    dataset = build_dataset(s, tokenizer)
    eos = {i for i in [tokenizer.eos_token_id, tokenizer.pad_token_id] if i is not None}
    rewards = make_rewards(s.rewards, prefix=THINK_PREFIX if s.think_prefix else None,
                           target_language=s.target_language, max_completion_length=s.max_completion_length,
                           eos_ids=eos)
    cfg = grpo_config(s, str(out), cpu)
    cfg.model_init_kwargs = {"dtype": torch_dtype(recipe)}
    times: list[float] = []

    class _StepTimer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter())

    # The model id, not a model: TRL builds it after the sharding context exists (ZeRO-3 zero.Init).
    trainer = GRPOTrainer(model=path, reward_funcs=rewards, args=cfg, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[_StepTimer()])
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    final = save_trained(trainer, tokenizer, out / "final")
    history = reward_history(trainer.state.log_history)
    summary = {"checkpoint": final, "start_model": start_model, "steps": trainer.state.global_step,
               "seconds": round(seconds, 2), "train_loss": result.training_loss, "rewards": history,
               "step_seconds": [round(b - a, 3) for a, b in zip([t0] + times[:-1], times)],
               "n_train_problems": len(dataset), "world_size": trainer.accelerator.num_processes,
               "settings": {k: v for k, v in vars(s).items()}}
    if is_main_process():
        (out / "train_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


# ---------------------------------------------------------------------------------------------------- eval
def evaluate_model(model: str, ev: EvalSettings, out: str | Path, device: str = "auto",
                   paper_stage: str | None = None) -> dict:
    """The harness runner on the held-out slice; returns {task: pass@1}. ``paper_stage`` tags the run (manifest
    ``paper_stage``) so `r1 report` puts it beside the paper's numbers for that stage of the pipeline."""
    from harness.runner import EvalSpec, evaluate

    opts: dict[str, Any] = {"batch_size": ev.batch_size} if ev.backend == "hf" else {}
    if ev.backend == "hf" and device != "auto":
        opts["device"] = device
    gen = GenerationConfig(temperature=ev.temperature, top_p=ev.top_p, max_tokens=ev.max_tokens)
    res = evaluate(EvalSpec(tasks=list(ev.tasks), model=model, backend=ev.backend, out=Path(out), gen=gen, n=ev.n,
                            limit=ev.limit, batch_size=ev.batch_size, backend_options=opts, progress=False,
                            paper_stage=paper_stage))
    return {t: r.get("pass@1") for t, r in res.get("tasks", {}).items()}


# ---------------------------------------------------------------------------------------------------- main
def check_held_out(recipe: Recipe, s: GRPOSettings) -> None:
    ev = recipe.eval
    if ev.enabled and s.task in ev.tasks and ev.limit and s.train_offset < ev.limit:
        raise UserError(f"GRPO trains on {s.task}[{s.train_offset}:] but evaluates on its first {ev.limit} problems; "
                        f"set grpo.train_offset >= {ev.limit} (or eval.limit lower) to keep the evaluation held out")


def main(recipe_path: str | None, overrides: Mapping[str, Any] | None = None) -> dict:
    """GRPO from ``recipe.model`` with ``recipe.grpo``; returns {train: summary, eval_before, eval_after}."""
    recipe = load_recipe(recipe_path, overrides)
    s = recipe.grpo
    check_held_out(recipe, s)
    out = Path(recipe.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=1))
    dev = "cpu" if on_cpu(recipe) else recipe.device
    result: dict[str, Any] = {"recipe": recipe.name, "out": str(out), "world_size": world_size()}
    start = model_dir(recipe.model)  # converted once, before any process group exists
    result["train"] = train_grpo(recipe, s, recipe.model, out / "grpo")
    # Both evaluations come after training: save_trained ended with a barrier, so no rank waits in a collective
    # while rank 0 generates (the starting model is a file, evaluating it later measures the same weights).
    if recipe.eval.enabled and is_main_process():
        if recipe.eval.before:
            result["eval_before"] = evaluate_model(start, recipe.eval, out / "eval_before", dev)
        # GRPO straight on the recipe's model, no cold start: the paper's R1-Zero recipe
        result["eval_after"] = evaluate_model(result["train"]["checkpoint"], recipe.eval, out / "eval_after", dev,
                                              paper_stage="zero")
    if is_main_process():
        (out / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":  # accelerate launch -m training.grpo RECIPE [key=value ...]
    import sys

    from harness.config import parse_overrides

    res = main(sys.argv[1], parse_overrides(sys.argv[2:]))
    if is_main_process():
        print(json.dumps(res, indent=1, default=str))


__all__ = ["main", "train_grpo", "build_dataset", "render_prompt", "grpo_config", "model_dir", "save_checkpoint",
           "evaluate_model", "reward_history", "is_main_process"]
