"""Supervised fine-tuning on chat messages with TRL's SFTTrainer: R1's cold start (stage 1), its stage 3 (rejection
sampled + non-reasoning data, 2 epochs) and the distillation students all run through ``run_sft``.

    from training.sft import SFTJob, run_sft
    result = run_sft(SFTJob(model="Qwen/Qwen2.5-Math-1.5B", data=[{"messages": [...]}, ...], out="runs/sft"))
    result["checkpoint"]   # a transformers checkpoint dir: `r1 eval --backend hf --model <dir>` loads it

``data`` is a list of ``{"messages": [{"role": ..., "content": ...}, ...]}`` or the path of a JSONL file of them; the
model's chat template renders them (TRL's conversational format). ``settings`` are ``training.config.SFTSettings``
(defaults: the paper's 2 epochs; learning rate etc. are recipe values). On a CPU-only machine TRL runs with
``use_cpu``, no bf16 and no gradient checkpointing, whatever the settings say.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.errors import UserError

from .config import SFTSettings


@dataclass
class SFTJob:
    model: str  # HF id[@rev], local checkpoint dir, .gguf path, or "embedded"
    data: Sequence[dict] | str  # [{"messages": [...]}, ...] or a JSONL path of those
    out: str
    settings: SFTSettings = field(default_factory=SFTSettings)
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto = float32 on CPU, bfloat16 on GPU
    threads: int | None = None


def load_messages(data: Sequence[dict] | str) -> list[dict]:
    """Validated ``[{"messages": [...]}]`` rows (roles user/assistant/system, string contents, one assistant turn)."""
    if isinstance(data, (str, Path)):
        rows = [json.loads(line) for line in Path(data).read_text().splitlines() if line.strip()]
    else:
        rows = list(data)
    out = []
    for i, row in enumerate(rows):
        msgs = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(msgs, list) or not msgs:
            raise UserError(f"SFT data row {i}: expected {{'messages': [...]}}")
        for m in msgs:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                    or not isinstance(m.get("content"), str):
                raise UserError(f"SFT data row {i}: messages need a role (system/user/assistant) and string content")
        if not any(m["role"] == "assistant" for m in msgs):
            raise UserError(f"SFT data row {i}: no assistant message to learn from")
        out.append({"messages": [{"role": m["role"], "content": m["content"]} for m in msgs]})
    if not out:
        raise UserError("SFT: the dataset is empty")
    return out


def sft_settings(params: Mapping[str, Any] | None, where: str = "sft") -> SFTSettings:
    """A recipe's ``sft:`` mapping -> SFTSettings, the one vocabulary of training and distill recipes: SFTSettings
    fields by name (``activation_checkpointing`` is read as ``gradient_checkpointing``); any other TRL ``SFTConfig``
    field goes to ``extra`` (to SFTConfig unchanged); ``dtype``/``device`` are load settings, not accepted here
    (training recipes: top level; distill recipes: ``student:``). Anything else is a RecipeError naming the keys."""
    from trl import SFTConfig

    from .config import RecipeError

    params = dict(params or {})
    extra = dict(params.pop("extra", None) or {})
    if "activation_checkpointing" in params:  # the transformers 5 name of SFTSettings.gradient_checkpointing
        if "gradient_checkpointing" in params:
            raise RecipeError(f"{where}: set gradient_checkpointing or activation_checkpointing, not both")
        params["gradient_checkpointing"] = params.pop("activation_checkpointing")
    names = {f.name for f in dataclasses.fields(SFTSettings)} - {"extra"}
    trl_names = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(k for k in list(params) + list(extra) if k not in names and k not in trl_names)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)} (neither SFTSettings nor TRL SFTConfig fields)")
    extra.update({k: v for k, v in params.items() if k not in names})
    return SFTSettings(**{k: v for k, v in params.items() if k in names}, extra=extra)


def deepspeed_launch() -> bool:
    """Launched by ``accelerate launch`` with a DeepSpeed config (on CPU: DeepSpeed's CPU accelerator, gloo)."""
    import os

    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def sft_config(s: SFTSettings, out: str, cpu: bool):
    from trl import SFTConfig

    kw: dict[str, Any] = dict(
        output_dir=out, learning_rate=s.learning_rate, num_train_epochs=s.num_train_epochs, max_steps=s.max_steps,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps, max_length=s.max_length,
        lr_scheduler_type=s.lr_scheduler_type, warmup_steps=s.warmup_steps, weight_decay=s.weight_decay,
        max_grad_norm=s.max_grad_norm, logging_steps=s.logging_steps, save_strategy=s.save_strategy,
        assistant_only_loss=s.assistant_only_loss, completion_only_loss=s.completion_only_loss, packing=s.packing,
        seed=s.seed, bf16=s.bf16, gradient_checkpointing=s.gradient_checkpointing, report_to="none",
    )
    if cpu:
        kw.update(bf16=False, gradient_checkpointing=False)
        if not deepspeed_launch():  # accelerate turns DeepSpeed off when TrainingArguments ask for use_cpu
            kw.update(use_cpu=True)
        else:  # DeepSpeed's CPU accelerator (DS_ACCELERATOR=cpu): without a named backend accelerate sees 1 process
            kw.update(ddp_backend="gloo")
    kw.update(s.extra)
    if cpu:  # an accelerate config or recipe extra cannot turn bf16 autocast on for a CPU run
        kw.update(bf16=False)
    return SFTConfig(**kw)


def run_sft(cfg: SFTJob) -> dict:
    """Fine-tune ``cfg.model`` on ``cfg.data``; the result is saved to ``cfg.out/final``. Returns a summary dict:
    checkpoint, steps, seconds, train_loss, losses (per logged step), n_examples.

    Under ``accelerate launch`` (FSDP / DeepSpeed ZeRO-3) every rank calls this: the trainer builds the model from
    its path after the sharding context exists, and ``training.dist.save_trained`` gathers it whole."""
    import torch
    from trl import SFTTrainer

    from .dist import is_main_process, save_trained
    from .grpo import load_tokenizer, model_dir

    rows = load_messages(cfg.data)
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    dtype = cfg.dtype if cfg.dtype != "auto" else ("float32" if cpu else "bfloat16")
    path = model_dir(cfg.model)
    tokenizer = load_tokenizer(path)
    from datasets import Dataset

    out = Path(cfg.out)
    args = sft_config(cfg.settings, str(out), cpu)
    args.model_init_kwargs = {"dtype": dtype, **(args.model_init_kwargs or {})}
    trainer = SFTTrainer(model=path, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    final = save_trained(trainer, tokenizer, out / "final")
    summary = {"checkpoint": final, "start_model": cfg.model, "steps": trainer.state.global_step,
               "seconds": round(seconds, 2), "train_loss": result.training_loss, "n_examples": len(rows),
               "world_size": trainer.accelerator.num_processes,
               "losses": [{"step": e.get("step"), "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]}
    if is_main_process():
        (out / "sft_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def main(recipe_path: str | None, overrides: Mapping[str, Any] | None = None) -> dict:
    """``accelerate launch -m training.sft RECIPE [key=value ...]``: one SFT on the recipe's ``cold_start_data``
    with its ``sft:`` settings, from ``recipe.model``, into ``recipe.out/sft`` (the cold start on its own)."""
    from .config import load_recipe
    from .pipeline import cold_start_rows

    recipe = load_recipe(recipe_path, overrides)
    return run_sft(SFTJob(model=recipe.model, data=cold_start_rows(recipe), out=str(Path(recipe.out) / "sft"),
                          settings=recipe.sft, device=recipe.device, dtype=recipe.dtype, threads=recipe.threads))


if __name__ == "__main__":
    import sys

    from harness.config import parse_overrides

    res = main(sys.argv[1], parse_overrides(sys.argv[2:]))
    from .dist import is_main_process

    if is_main_process():
        print(json.dumps(res, indent=1, default=str))


__all__ = ["SFTJob", "run_sft", "load_messages", "sft_config", "sft_settings", "main"]
