"""SFT of a student on the distillation dataset (the paper: SFT only, no RL, for every distilled model), through the
project's one SFT path, ``training.sft.run_sft``.

The recipe's ``sft:`` section has the training recipes' vocabulary (``training.sft.sft_settings``: SFTSettings fields,
plus any other TRL ``SFTConfig`` field); ``student.dtype`` / ``student.device`` are load settings. Multi-GPU:
``r1 distill R --set stop_after=dataset``, then ``accelerate launch --config_file training/accelerate/zero3.yaml -m
distill.train R OUT``, then ``r1 distill R`` again (it finds the model current and evaluates it).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.store import atomic_write_json
from training.curation import MANIFEST_FILE, load_dataset
from training.dist import is_main_process

from .recipe import load_recipe

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


def main(argv: list[str] | None = None) -> int:
    """``python -m distill.train RECIPE PIPELINE_OUT``: the SFT step alone, under accelerate launch / torchrun.

    Reads PIPELINE_OUT/dataset (written by ``r1 distill ... --set stop_after=dataset``), writes PIPELINE_OUT/student;
    re-running the pipeline then finds the model current and goes on to the student's evaluation."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m distill.train RECIPE PIPELINE_OUT", file=sys.stderr)
        return 2
    recipe, out = load_recipe(argv[0]), Path(argv[1])
    dman = json.loads((out / "dataset" / MANIFEST_FILE).read_text(encoding="utf-8"))
    summary = train(load_dataset(out / "dataset"), recipe["student"], recipe.get("sft") or {}, out / "student")
    summary["dataset_sha256"] = dman["dataset_sha256"]
    if is_main_process():
        atomic_write_json(out / "student" / "train.json", summary)
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
