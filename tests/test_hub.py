"""An unreachable hub (harness/hub.py): one line at once naming what to pass, instead of half a minute of retries;
and a hub model already in the local Hugging Face cache still loads. The "hub" is a closed port on 127.0.0.1
(HF_ENDPOINT), so nothing here can leave the machine."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from _backend_fixtures import free_port
from conftest import REPO, run_r1

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _no_hub_env(tmp_path: Path) -> dict:
    env: dict = {k: None for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "R1_DATA_DIR",
                                   "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", HF_HOME=str(tmp_path / "hf"),
               XDG_DATA_HOME=str(tmp_path / "xdg"))  # no mirror `make data` wrote, an empty HF cache
    return env


def _one_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("r1: error: "), proc.stderr[-2000:]
    return lines[0]


def test_unreachable_hub_without_mirror_is_one_line_at_once(tmp_path):
    env = _no_hub_env(tmp_path)
    t = time.monotonic()
    proc = run_r1("eval", "--task", "math500", "--limit", "1", "--dry-run", env=env, check=False)
    line = _one_error_line(proc)
    assert "cannot reach 127.0.0.1:" in line and "HuggingFaceH4/MATH-500" in line
    assert "--data-dir" in line and "R1_DATA_DIR" in line
    proc = run_r1("eval", "--task", "arith", "--backend", "hf", "--model", "nobody/no-such-model", "--dry-run",
                  env=env, check=False)
    line = _one_error_line(proc)
    assert "--model nobody/no-such-model" in line and "not in the local Hugging Face cache" in line
    assert time.monotonic() - t < 60  # two CLI start-ups; the retries took ~25 s each


def _cache_model(hf_home: Path, repo_id: str) -> None:
    """A tiny Llama (random weights, the embedded model's tokenizer and chat template) laid out as the Hugging Face
    cache keeps a downloaded model: models--org--name/{refs/main, snapshots/<commit>/...}."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.grpo import load_tokenizer, model_dir

    tok = load_tokenizer(model_dir("embedded"))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    LlamaForCausalLM(cfg).save_pretrained(snap)
    tok.save_pretrained(snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def test_cached_hub_model_loads_when_the_hub_is_unreachable(tmp_path):
    env = _no_hub_env(tmp_path)
    _cache_model(Path(env["HF_HOME"]), "someorg/tiny-chat")
    common = ["--task", "arith", "--backend", "hf", "--model", "someorg/tiny-chat", "--limit", "1", "-n", "1",
              "--max-tokens", "4"]
    t = time.monotonic()
    proc = run_r1("eval", *common, "--dry-run", env=env)
    assert "<|im_start|>assistant\n" in proc.stdout  # the cached tokenizer's chat template rendered the prompt
    out = tmp_path / "run"
    run_r1("eval", *common, "--no-progress", "--out", str(out), env=env)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 1
    assert time.monotonic() - t < 120
    # training resolves the same id to the cached snapshot (TRL then loads a directory, not the hub)
    code = ("from training.grpo import model_dir; from harness.errors import UserError\n"
            "print(model_dir('someorg/tiny-chat'))\n"
            "try:\n    model_dir('someorg/not-cached')\nexcept UserError as e:\n    print(e)\n")
    env_all = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env_all, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 2, proc.stderr[-2000:]
    assert lines[0] == str(Path(env["HF_HOME"]) / "hub" / "models--someorg--tiny-chat" / "snapshots" / COMMIT)
    assert lines[1].startswith("--model someorg/not-cached: cannot reach 127.0.0.1:")
