"""SFT of a student on the distillation dataset (the paper: SFT only, no RL, for every distilled model).

The SFT itself is ``training.sft.run_sft(SFTJob(...))`` when that module is in the tree (one SFT path for the cold
start, stage 3 and distillation); recipe ``sft_trainer: trl`` (or a tree without training/sft.py) makes the TRL
``SFTTrainer`` call here instead. The train summary records which one ran (``trainer``) and where the model is.

Recipe ``sft:`` keys are TRL ``SFTConfig`` fields (learning_rate, num_train_epochs, max_length, packing,
lr_scheduler_type, deepspeed, ...), validated against SFTConfig before any model is loaded; ``dtype`` is the
student's load dtype. Multi-GPU: ``r1 distill R --set stop_after=dataset``, then
``accelerate launch -m distill.train R OUT`` (ZeRO-3 for 14B+ is in the recipe's ``deepspeed:`` block), then
``r1 distill R`` again (it finds the model current and evaluates it).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.store import atomic_write_json

log = logging.getLogger("r1.distill.train")

MODEL_DIR = "model"
LOAD_KEYS = ("dtype",)  # recipe sft keys that are not SFTConfig fields


def _sft_config_fields() -> set[str]:
    from trl import SFTConfig

    return {f.name for f in dataclasses.fields(SFTConfig)}


def check_sft_params(params: dict[str, Any]) -> None:
    unknown = set(params) - _sft_config_fields() - set(LOAD_KEYS)
    if unknown:
        raise UserError(f"recipe sft: unknown key(s) {', '.join(sorted(unknown))} (not TRL SFTConfig fields)")


def _training_sft():
    """training.sft (SFTJob, run_sft) and training.config.SFTSettings when they are in the tree, else None."""
    try:
        from training.config import SFTSettings
        from training.sft import SFTJob, run_sft
    except ImportError:
        return None
    return SFTJob, SFTSettings, run_sft


def train(examples: list[dict], student: str, params: dict[str, Any], out: Path, trainer: str = "auto") -> dict:
    """Fine-tune ``student`` on chat examples ({"messages": [...]}); the model is saved to ``out/model``.

    ``trainer``: "training" = training.sft.run_sft (the project's one SFT path), "trl" = the SFTTrainer call here,
    "auto" = training.sft when it is in the tree.

    Returns a summary (trainer used, steps, loss, runtime), also written to ``out/train.json``."""
    if trainer not in ("auto", "training", "trl"):
        raise UserError(f"sft trainer {trainer!r}: choose auto, training or trl")
    if trainer == "auto":
        trainer = "training" if _training_sft() is not None else "trl"
    if not examples:
        raise UserError("the distillation dataset is empty: every teacher sample was filtered out (see the filter "
                        "report); generate more samples or relax the recipe's filters")
    check_sft_params(params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = [{"messages": e["messages"]} for e in examples]
    t0 = time.perf_counter()
    shared = _training_sft() if trainer == "training" else None
    if trainer == "training" and shared is None:
        raise UserError("recipe sft_trainer: training needs training/sft.py (SFTJob, run_sft); use sft_trainer: trl")
    if shared is not None:
        summary = _via_training_sft(shared, data, student, params, out)
    else:
        summary = _via_trl(data, student, params, out)
    summary.setdefault("model_dir", str(out / MODEL_DIR))
    summary.update(student=student, n_examples=len(data), runtime_s=round(time.perf_counter() - t0, 2), params=params)
    import os

    if int(os.environ.get("RANK", "0")) == 0:  # one writer under a distributed launch
        atomic_write_json(out / "train.json", summary)
    return summary


def _via_training_sft(shared, data: list[dict], student: str, params: dict, out: Path) -> dict:
    """The recipe's sft keys -> SFTSettings fields by name; the other SFTConfig keys go through SFTSettings.extra."""
    SFTJob, SFTSettings, run_sft = shared
    names = {f.name for f in dataclasses.fields(SFTSettings)} - {"extra"}
    sft = {k: v for k, v in params.items() if k not in LOAD_KEYS}
    settings = SFTSettings(**{k: v for k, v in sft.items() if k in names},
                           extra={k: v for k, v in sft.items() if k not in names})
    device = "cpu" if sft.get("use_cpu") else "auto"
    res = run_sft(SFTJob(model=student, data=data, out=str(out / "sft"), settings=settings, device=device,
                         dtype=params.get("dtype") or "auto"))
    losses = [e["loss"] for e in res.get("losses") or []]
    return {"trainer": "training.sft.run_sft", "model_dir": str(res["checkpoint"]), "global_step": int(res["steps"]),
            "train_loss": float(res["train_loss"]), "first_logged_loss": losses[0] if losses else None,
            "last_logged_loss": losses[-1] if losses else None}


def _via_trl(data: list[dict], student: str, params: dict, out: Path) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    sft_kw = {k: v for k, v in params.items() if k not in LOAD_KEYS}
    sft_kw.setdefault("report_to", "none")
    sft_kw.setdefault("save_strategy", "no")
    args = SFTConfig(output_dir=str(out / "checkpoints"), **sft_kw)
    from transformers import AutoTokenizer

    from training.grpo import model_dir  # the one GGUF -> plain-checkpoint conversion (cached)

    name, _, revision = model_dir(student).partition("@")
    rev = {"revision": revision} if revision else {}
    tokenizer = AutoTokenizer.from_pretrained(name, **rev)
    model = name
    args.model_init_kwargs = {"dtype": params.get("dtype") or ("float32" if args.use_cpu else "auto"), **rev,
                              **(args.model_init_kwargs or {})}
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model(str(out / MODEL_DIR))
    tokenizer.save_pretrained(str(out / MODEL_DIR))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"trainer": "trl.SFTTrainer (distill/train.py)", "global_step": int(result.global_step),
            "train_loss": float(result.training_loss), "first_logged_loss": losses[0] if losses else None,
            "last_logged_loss": losses[-1] if losses else None}


def main(argv: list[str] | None = None) -> int:
    """``python -m distill.train RECIPE PIPELINE_OUT``: the SFT step alone, under accelerate launch / torchrun.

    Reads PIPELINE_OUT/dataset (written by ``r1 distill ... --set stop_after=dataset``), writes PIPELINE_OUT/student;
    re-running the pipeline then finds the model current and goes on to the student's evaluation."""
    import os

    from .dataset import MANIFEST_FILE, load_dataset
    from .pipeline import load_recipe

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m distill.train RECIPE PIPELINE_OUT", file=sys.stderr)
        return 2
    recipe, out = load_recipe(argv[0]), Path(argv[1])
    dman = json.loads((out / "dataset" / MANIFEST_FILE).read_text(encoding="utf-8"))
    params = recipe.get("sft") or {}
    summary = train(load_dataset(out / "dataset"), recipe["student"]["model"], params, out / "student",
                    recipe.get("sft_trainer", "auto"))
    summary["dataset_sha256"] = dman["dataset_sha256"]
    if int(os.environ.get("RANK", "0")) == 0:  # one writer under a distributed launch
        atomic_write_json(out / "student" / "train.json", summary)
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
