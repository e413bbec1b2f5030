"""What training needs to be correct under ``accelerate launch`` with several processes (FSDP, DeepSpeed ZeRO-3).

Rules the trainers in this package follow:

* The model is built by the TRL trainer from its id/dir (``model=<path>`` plus ``args.model_init_kwargs``), after
  the trainer's arguments exist: with a DeepSpeed ZeRO-3 config that is when transformers' ``HfDeepSpeedConfig`` is
  live, so ``from_pretrained`` runs under ``zero.Init`` and no rank ever holds a whole 70B model.
* Checkpoints are written by ``save_trained``: ``trainer.save_model`` on *every* rank (under ZeRO-3/FSDP it is a
  collective that gathers the shards; rank 0 writes the whole model), then a barrier. ``model.save_pretrained`` on a
  sharded model would write each rank's shard, or nothing.
* Evaluation (text generation with the harness runner) happens only after the last collective: rank 0 evaluates
  once every rank passed ``save_trained``'s barrier, and the other ranks are done. Never rank 0 alone while the others
  wait inside a collective (NCCL's watchdog would kill them after 10 minutes).
* Under a distributed launch, rank 0 also writes ``gathered_weights.json``: name, shape, dtype and sha256 of every
  tensor of the gathered state dict (``accelerator.get_state_dict``), so the saved checkpoint can be checked against
  what the ranks held (``check_weights``; tests/test_sharded.py does it in a fresh process).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

DIGEST_FILE = "gathered_weights.json"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch (or a plain process)."""
    return int(os.environ.get("RANK", "0")) == 0


def tensor_digest(t) -> dict[str, Any]:
    import torch

    t = t.detach().to("cpu").contiguous()
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""  # bytes: bf16 has no numpy dtype
    return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "numel": int(t.numel()),
            "sha256": hashlib.sha256(raw).hexdigest()}


def state_digest(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: tensor_digest(v) for k, v in sorted(state.items())}


def _unwrapped_for_state(trainer):
    """What ``accelerator.get_state_dict`` gathers from: the DeepSpeed engine, else the (FSDP-wrapped) model."""
    return trainer.deepspeed if getattr(trainer, "is_deepspeed_enabled", False) else trainer.model


def save_trained(trainer, tokenizer, out: str | Path) -> str:
    """Save the trained model whole through the trainer (all ranks call this), tokenizer by rank 0; under a
    distributed launch rank 0 also writes the gathered weights' digest. Returns the checkpoint dir."""
    out = Path(out)
    acc = trainer.accelerator
    model = trainer.model
    # A GGUF-loaded model carries a quantizer transformers refuses to serialize; its weights are plain tensors.
    inner = acc.unwrap_model(model)
    if getattr(inner, "hf_quantizer", None) is not None:
        inner.hf_quantizer = None
    if getattr(inner.config, "quantization_config", None) is not None:
        del inner.config.quantization_config
    trainer.save_model(str(out))
    if acc.num_processes > 1:
        state = acc.get_state_dict(_unwrapped_for_state(trainer))  # collective: every rank takes part
        if acc.is_main_process:
            params = list(acc.unwrap_model(model).parameters())
            digest = {"world_size": acc.num_processes, "distributed_type": str(acc.distributed_type),
                      # what rank 0 held itself: under ZeRO-3 a partitioned parameter is an empty placeholder
                      "rank0_local_numel": sum(p.numel() for p in params),
                      "zero3_partitioned_params": sum(hasattr(p, "ds_id") for p in params),
                      "n_params": len(params), "tensors": state_digest(state)}
            (out / DIGEST_FILE).write_text(json.dumps(digest, indent=1))
    if acc.is_main_process:
        tokenizer.save_pretrained(str(out))
    acc.wait_for_everyone()
    return str(out)


def check_weights(checkpoint: str | Path) -> dict[str, Any]:
    """Load ``checkpoint`` as a fresh model and compare every parameter with the gathered digest rank 0 wrote.

    Returns {n_params, n_tensors, missing, unexpected, empty, mismatched}; the checkpoint is whole and equal to what
    the ranks trained when the four lists are empty. A from_pretrained that reports missing keys (initialised at
    random) counts them as missing."""
    import torch
    from transformers import AutoModelForCausalLM

    checkpoint = Path(checkpoint)
    digest = json.loads((checkpoint / DIGEST_FILE).read_text())["tensors"]
    model, info = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32,
                                                       output_loading_info=True)
    state = model.state_dict()
    got = state_digest(state)
    missing = sorted(set(digest) - set(got)) + sorted(info.get("missing_keys") or [])
    unexpected = sorted(set(got) - set(digest))
    empty = sorted(k for k, v in got.items() if v["numel"] == 0)
    mismatched = sorted(k for k in set(digest) & set(got) if digest[k] != got[k])
    return {"n_params": sum(p.numel() for p in model.parameters()), "n_tensors": len(got), "missing": missing,
            "unexpected": unexpected, "empty": empty, "mismatched": mismatched}


def deepspeed_config(path: str | Path, micro_batch: int = 1, grad_acc: int = 1, world: int = 1,
                     bf16: bool = False) -> Any:
    """Parse a DeepSpeed json with DeepSpeed's own parser (``deepspeed.runtime.config.DeepSpeedConfig``), the
    ``"auto"`` values filled the way transformers fills them from TrainingArguments. A wrong key or value raises
    DeepSpeed's error."""
    from deepspeed.runtime.config import DeepSpeedConfig

    values = {"train_micro_batch_size_per_gpu": micro_batch, "gradient_accumulation_steps": grad_acc,
              "train_batch_size": micro_batch * grad_acc * world, "gradient_clipping": 1.0, "enabled": bf16,
              "reduce_bucket_size": 1_000_000, "stage3_prefetch_bucket_size": 1_000_000,
              "stage3_param_persistence_threshold": 10_000}

    def fill(node: dict) -> dict:
        out = {}
        for k, v in node.items():
            if isinstance(v, dict):
                out[k] = fill(v)
            elif v == "auto":
                if k not in values:
                    raise ValueError(f"{path}: no value to fill the 'auto' of {k}")
                out[k] = values[k]
            else:
                out[k] = v
        return out

    return DeepSpeedConfig(fill(json.loads(Path(path).read_text())))


__all__ = ["deepspeed_config", "world_size", "is_main_process", "save_trained", "state_digest", "check_weights", "DIGEST_FILE"]
