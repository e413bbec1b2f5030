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

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

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
        kw.update(use_cpu=True, bf16=False, gradient_checkpointing=False)
    kw.update(s.extra)
    return SFTConfig(**kw)


def run_sft(cfg: SFTJob) -> dict:
    """Fine-tune ``cfg.model`` on ``cfg.data``; the result is saved to ``cfg.out/final``. Returns a summary dict:
    checkpoint, steps, seconds, train_loss, losses (per logged step), n_examples."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from .grpo import load_tokenizer, model_dir, save_checkpoint

    rows = load_messages(cfg.data)
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    dtype = cfg.dtype if cfg.dtype != "auto" else ("float32" if cpu else "bfloat16")
    path = model_dir(cfg.model)
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    from datasets import Dataset

    out = Path(cfg.out)
    trainer = SFTTrainer(model=model, args=sft_config(cfg.settings, str(out), cpu), train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer)
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    final = save_checkpoint(trainer.model, tokenizer, out / "final")
    summary = {"checkpoint": final, "start_model": cfg.model, "steps": trainer.state.global_step,
               "seconds": round(seconds, 2), "train_loss": result.training_loss, "n_examples": len(rows),
               "losses": [{"step": e.get("step"), "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]}
    (out / "sft_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


__all__ = ["SFTJob", "run_sft", "load_messages", "sft_config"]
