"""``python -m distill.train RECIPE PIPELINE_OUT``: the student's SFT alone, for ``accelerate launch`` / torchrun.

Multi-GPU: ``r1 distill --recipe R --set stop_after=dataset``, then ``accelerate launch --config_file
training/accelerate/zero3.yaml -m distill.train R OUT``, then ``r1 distill --recipe R`` again (it finds the model
current and evaluates it). The SFT itself is ``distill.student.train`` -> ``training.sft.run_sft``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.store import atomic_write_json
from training.curation import MANIFEST_FILE, load_dataset
from training.dist import is_main_process

from .recipe import load_recipe
from .student import MODEL_DIR, check_sft_params, train  # noqa: F401 - re-exported

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
