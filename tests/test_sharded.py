"""Sharded multi-process training on CPU: DeepSpeed ZeRO-3 (CPU accelerator, gloo), 2 processes, through
``accelerate launch`` with the shipped config, for SFT (``-m training.sft``) and GRPO (``-m training.grpo``).

Each run's rank 0 writes the digest of the weights gathered from both ranks (``training.dist.save_trained``); a fresh
process then loads the saved checkpoint and checks every parameter is present, non-empty and equal to it. The model
is tiny (built from a config here) so a launch takes a minute or two.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACCEL = ROOT / "training" / "accelerate"


def distinct_chars(prompts, completions, **kwargs) -> list[float]:
    """A GRPO reward with variance on a random tiny model (the rule rewards are all 0 there: no gradient)."""
    return [len(set(c if isinstance(c, str) else str(c))) / 10 for c in completions]


def test_shipped_deepspeed_config_parses():
    """The ZeRO-3 json both accelerate configs point at, through DeepSpeed's own parser."""
    pytest.importorskip("deepspeed")
    from training.dist import deepspeed_config

    for name in ("zero3.yaml", "zero3_cpu.yaml"):
        acc = yaml.safe_load((ACCEL / name).read_text())
        assert acc["distributed_type"] == "DEEPSPEED" and acc["deepspeed_config"]["zero3_init_flag"] is True
        ds_file = ROOT / acc["deepspeed_config"]["deepspeed_config_file"]
        assert ds_file == ACCEL / "zero3.json"
        # keys accelerate ignores (and refuses) next to a deepspeed_config_file are absent
        assert "mixed_precision" not in acc and "zero_stage" not in acc["deepspeed_config"]
    cfg = deepspeed_config(ACCEL / "zero3.json", micro_batch=2, grad_acc=8, world=1, bf16=True)
    assert cfg.zero_optimization_stage == 3
    assert cfg.zero_config.gather_16bit_weights_on_model_save is True  # save_model writes whole weights
    assert cfg.train_batch_size == 16
    bad_json = Path(os.environ.get("TMPDIR", "/tmp")) / f"bad_zero3_{os.getpid()}.json"
    bad_json.write_text(json.dumps({"zero_optimization": {"stage": 3, "no_such_key": 1}, "train_batch_size": 2}))
    try:
        with pytest.raises(Exception, match="no_such_key"):
            deepspeed_config(bad_json)
    finally:
        bad_json.unlink()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer Llama with the embedded model's tokenizer (random weights, 3.2M parameters)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.grpo import load_tokenizer, model_dir

    tok = load_tokenizer(model_dir("embedded"))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny") / "model"
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def launch(module: str, recipe: dict, tmp_path: Path, port: int) -> tuple[dict, float]:
    pytest.importorskip("deepspeed")
    rpath = tmp_path / "recipe.yaml"
    rpath.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCEL / "zero3_cpu.yaml"),
           "--main_process_port", str(port), "-m", module, str(rpath)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, seconds


def check_checkpoint(ckpt: Path, expect_changed_from: Path | None = None) -> dict:
    """In a fresh interpreter: load the checkpoint and compare with rank 0's digest of the gathered weights."""
    code = ("import json, sys; from training.dist import check_weights; "
            "print(json.dumps(check_weights(sys.argv[1])))")
    proc = subprocess.run([sys.executable, "-c", code, str(ckpt)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["missing"] == [] and res["unexpected"] == [] and res["empty"] == [] and res["mismatched"] == []
    digest = json.loads((ckpt / "gathered_weights.json").read_text())
    assert digest["world_size"] == 2 and digest["distributed_type"] == "DistributedType.DEEPSPEED"
    # ZeRO-3 really sharded: every parameter was a ZeRO-3 parameter (zero.Init at creation) and rank 0 held at most
    # its half (here only the 160 layer-norm weights under stage3_param_persistence_threshold stay whole per rank)
    total = sum(t["numel"] for t in digest["tensors"].values())
    assert digest["zero3_partitioned_params"] == digest["n_params"] > 0
    assert digest["rank0_local_numel"] <= total / 2
    assert res["n_tensors"] == len(digest["tensors"]) and res["n_params"] == 3_164_320
    if expect_changed_from is not None:
        from safetensors.torch import load_file
        import torch

        a, b = load_file(expect_changed_from / "model.safetensors"), load_file(ckpt / "model.safetensors")
        assert set(a) == set(b) and any(not torch.equal(a[k], b[k]) for k in a)  # the training moved the weights
    return {**res, **{k: digest[k] for k in ("world_size", "zero3_partitioned_params", "rank0_local_numel")}}


@pytest.mark.slow
def test_zero3_sft_two_processes(tiny_model, tmp_path):
    recipe = {"name": "zero3_sft", "model": str(tiny_model), "out": str(tmp_path / "run"), "device": "cpu",
              "dtype": "float32", "threads": 1, "stages": ["cold_start"], "cold_start_data": "builtin:arith",
              "cold_start_limit": 8, "eval": {"enabled": False},
              "sft": {"max_steps": 3, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                      "max_length": 128, "learning_rate": 1e-3, "warmup_steps": 0, "bf16": False,
                      "gradient_checkpointing": False}}
    proc, seconds = launch("training.sft", recipe, tmp_path, 29561)
    summary = json.loads((tmp_path / "run" / "sft" / "sft_summary.json").read_text())
    assert summary["steps"] == 3 and summary["world_size"] == 2
    res = check_checkpoint(Path(summary["checkpoint"]), expect_changed_from=tiny_model)
    print(json.dumps({"sharded": "sft", "steps": summary["steps"], "wall_s": round(seconds, 1), **res}))


@pytest.mark.slow
def test_zero3_grpo_two_processes(tiny_model, tmp_path):
    recipe = {"name": "zero3_grpo", "model": str(tiny_model), "out": str(tmp_path / "run"), "device": "cpu",
              "dtype": "float32", "threads": 1, "allow_train_on_eval": True, "eval": {"enabled": False},
              "grpo": {"task": "arith", "train_offset": 100, "train_limit": 8, "template": "chat",
                       "rewards": ["accuracy", "format_think", "test_sharded:distinct_chars"],
                       "num_generations": 2, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                       "max_completion_length": 8, "max_steps": 2, "learning_rate": 1e-3, "save_strategy": "no",
                       "bf16": False, "gradient_checkpointing": False, "sync_ref_model": False}}
    proc, seconds = launch("training.grpo", recipe, tmp_path, 29562)
    summary = json.loads((tmp_path / "run" / "grpo" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["world_size"] == 2
    assert all("distinct_chars" in h for h in summary["rewards"])
    res = check_checkpoint(Path(summary["checkpoint"]), expect_changed_from=tiny_model)
    print(json.dumps({"sharded": "grpo", "steps": summary["steps"], "wall_s": round(seconds, 1), **res}))
