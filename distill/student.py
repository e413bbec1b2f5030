"""The student's SFT on the distillation dataset (the paper: SFT only, no RL, for every distilled model), through the
project's one SFT path, ``training.sft.run_sft``. Used by ``distill.pipeline`` and by ``distill.train`` (the SFT step
alone under accelerate launch), which do not import each other.

The recipe's ``sft:`` section has the training recipes' vocabulary (``training.sft.sft_settings``: SFTSettings fields,
plus any other TRL ``SFTConfig`` field); ``student.dtype`` / ``student.device`` are load settings. Multi-GPU:
``r1 distill R --set stop_after=dataset``, then ``accelerate launch --config_file training/accelerate/zero3.yaml -m
distill.train R OUT``, then ``r1 distill R`` again (it finds the model current and evaluates it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.store import atomic_write_json
from training.dist import is_main_process

MODEL_DIR = "model"


def check_sft_params(params: dict[str, Any] | None) -> None:
    """A typo in the recipe's sft section fails before hours of teacher generation."""
    from training.sft import sft_settings

    sft_settings(params, "recipe sft")


def train(examples: list[dict], student: dict | str, params: dict[str, Any], out: Path) -> dict:
    """Fine-tune the student on chat examples ({"messages": [...]}); returns a summary (also ``out/train.json``)."""
    from training.sft import SFTJob, run_sft, sft_settings

    student = {"model": student} if isinstance(student, str) else dict(student)
    if not examples:
        raise UserError("the distillation dataset is empty: every teacher sample was filtered out (see the filter "
                        "report); generate more samples or relax the recipe's filters")
    settings = sft_settings(params, "recipe sft")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = [{"messages": e["messages"]} for e in examples]
    t0 = time.perf_counter()
    res = run_sft(SFTJob(model=student["model"], data=data, out=str(out / "sft"), settings=settings,
                         device=student.get("device", "auto"), dtype=student.get("dtype") or "auto",
                         threads=student.get("threads")))
    losses = [e["loss"] for e in res.get("losses") or []]
    summary = {"trainer": "training.sft.run_sft", "model_dir": str(res["checkpoint"]), "global_step": int(res["steps"]),
               "train_loss": float(res["train_loss"]), "first_logged_loss": losses[0] if losses else None,
               "last_logged_loss": losses[-1] if losses else None, "losses": losses, "student": student["model"],
               "n_examples": len(data), "runtime_s": round(time.perf_counter() - t0, 2), "params": params,
               "world_size": res.get("world_size", 1)}
    if is_main_process():  # one writer under a distributed launch
        atomic_write_json(out / "train.json", summary)
    return summary


__all__ = ["MODEL_DIR", "check_sft_params", "train"]
