"""SFT of a student on the distillation dataset (the paper: SFT only, no RL, for every distilled model).

The SFT itself is ``training.sft.run_sft(dataset, cfg)`` when that module is in the tree (one SFT path for the
cold start, stage 3 and distillation). Without it, the same TRL ``SFTTrainer`` call is made here; the train summary
records which one ran (``trainer``).

Recipe ``sft:`` keys are TRL ``SFTConfig`` fields (learning_rate, num_train_epochs, max_length, packing,
lr_scheduler_type, deepspeed, ...), validated against SFTConfig before any model is loaded; ``dtype`` is the
student's load dtype. Multi-GPU: ``accelerate launch -m distill.train RECIPE DATASET_DIR OUT`` (ZeRO-3 for 14B+ is
in the recipe's ``deepspeed:`` block).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import sys
import time
import typing
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.models import EMBEDDED, is_gguf_path
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


def _run_sft_fn():
    try:
        from training.sft import run_sft
    except ImportError:
        return None
    return run_sft


def train(examples: list[dict], student: str, params: dict[str, Any], out: Path) -> dict:
    """Fine-tune ``student`` on chat examples ({"messages": [...]}); the model is saved to ``out/model``.

    Returns a summary (trainer used, steps, loss, runtime), also written to ``out/train.json``."""
    if not examples:
        raise UserError("the distillation dataset is empty: every teacher sample was filtered out (see the filter "
                        "report); generate more samples or relax the recipe's filters")
    check_sft_params(params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = [{"messages": e["messages"]} for e in examples]
    t0 = time.perf_counter()
    run_sft = _run_sft_fn()
    if run_sft is not None:
        summary = _via_training_sft(run_sft, data, student, params, out)
    else:
        summary = _via_trl(data, student, params, out)
    summary.update(student=student, n_examples=len(data), runtime_s=round(time.perf_counter() - t0, 2),
                   model_dir=str(out / MODEL_DIR), params=params)
    atomic_write_json(out / "train.json", summary)
    return summary


def _via_training_sft(run_sft, data: list[dict], student: str, params: dict, out: Path) -> dict:
    """Build run_sft's config dataclass from the recipe (fields matched by name) and call it."""
    hints = typing.get_type_hints(run_sft)
    cfg_type = hints.get("cfg") or next((hints[p] for p in inspect.signature(run_sft).parameters if p in hints
                                          and dataclasses.is_dataclass(hints[p])), None)
    if cfg_type is None or not dataclasses.is_dataclass(cfg_type):
        raise UserError("training.sft.run_sft: cannot tell its config dataclass from its signature")
    names = {f.name for f in dataclasses.fields(cfg_type)}
    values = {"model": student, "output_dir": str(out / MODEL_DIR), **params}
    # Recipe keys run_sft's config has no field for go to its TRL passthrough dict when it has one.
    kw = {k: v for k, v in values.items() if k in names}
    rest = {k: v for k, v in values.items() if k not in names}
    passthrough = next((n for n in ("sft_args", "trl_args", "extra", "sft_config") if n in names), None)
    if rest and passthrough:
        kw[passthrough] = rest
    elif rest:
        log.warning("training.sft config has no field for %s; they are not applied", ", ".join(sorted(rest)))
    res = run_sft(data, cfg_type(**kw))
    summary: dict[str, Any] = {"trainer": "training.sft.run_sft", "ignored_params": sorted(rest) if rest and not passthrough else []}
    if isinstance(res, dict):
        summary.update({k: v for k, v in res.items() if isinstance(v, (int, float, str, bool, type(None)))})
    return summary


def _via_trl(data: list[dict], student: str, params: dict, out: Path) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    sft_kw = {k: v for k, v in params.items() if k not in LOAD_KEYS}
    sft_kw.setdefault("report_to", "none")
    sft_kw.setdefault("save_strategy", "no")
    args = SFTConfig(output_dir=str(out / "checkpoints"), **sft_kw)
    from transformers import AutoTokenizer

    name, _, revision = _plain_checkpoint(student).partition("@")
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


def _plain_checkpoint(student: str) -> str:
    """A name TRL can load with from_pretrained: hub ids and checkpoint dirs as they are; ``embedded`` or a GGUF is
    dequantized once by the shared loader and saved as a plain checkpoint in the cache (keyed by the file's sha256),
    with the GGUF quantizer dropped (the Trainer refuses a model still marked quantized)."""
    local = Path(student).expanduser()
    gguf_dir = local.is_dir() and not (local / "config.json").is_file() and any(local.glob("*.gguf"))
    if not (student == EMBEDDED or is_gguf_path(student) or gguf_dir):
        return student
    import os

    from harness.backends.hf import load_model_and_tokenizer
    from harness.models import _cache_dir, file_sha256, resolve_gguf

    path = resolve_gguf(student)
    out = _cache_dir() / "hf-from-gguf" / file_sha256(path)[:32]
    if (out / "config.json").is_file():
        return str(out)
    lm, tok, _ = load_model_and_tokenizer(str(path), "float32", "cpu")
    lm.hf_quantizer = None
    if getattr(lm.config, "quantization_config", None) is not None:
        del lm.config.quantization_config
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    lm.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: its checkpoint is the same
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m distill.train RECIPE DATASET_DIR OUT``: the SFT step alone (for accelerate launch / torchrun)."""
    from .dataset import load_dataset
    from .pipeline import load_recipe

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m distill.train RECIPE DATASET_DIR OUT", file=sys.stderr)
        return 2
    recipe = load_recipe(argv[0])
    summary = train(load_dataset(Path(argv[1])), recipe["student"]["model"], recipe.get("sft") or {}, Path(argv[2]))
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
