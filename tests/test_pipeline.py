"""The R1 pipeline fed by datasets (training/pipeline.py): `r1 train --dry-run` validates every shipped recipe with
local copies of its data and refuses training on an evaluated benchmark; stages without inputs fail naming the key;
and the four stages run on CPU from dataset files in the real public formats, stage 4 with a reward model."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("trl")

from harness.errors import UserError  # noqa: E402
from tests._training_files import (write_dapo, write_mixture_of_thoughts, write_openr1_math,  # noqa: E402
                                   write_smoltalk)
from training import datasets as tds  # noqa: E402
from training import pipeline  # noqa: E402
from training.config import RECIPES_DIR  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leftover_dataset_tasks(restore_task_registry):
    pass


def local_copies(d: Path) -> dict[str, str]:
    """Overrides pointing every data source a shipped recipe names at a small local file in its real format."""
    return {"cold_start_data.path": str(write_mixture_of_thoughts(d)), "grpo.data.path": str(write_dapo(d)),
            "rejection.data.path": str(write_openr1_math(d)), "non_reasoning_data.path": str(write_smoltalk(d))}


def overrides_for(recipe: str, files: dict[str, str]) -> dict[str, str]:
    data = yaml.safe_load((RECIPES_DIR / f"{recipe}.yaml").read_text())
    out = {}
    for key, path in files.items():
        node = data
        for part in key.split(".")[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):  # the recipe has this source: point it at the local copy
            out[key] = path
    return out


SHIPPED = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def test_dry_run_refuses_training_on_an_evaluated_benchmark(r1):
    proc = r1("train", "--recipe", "r1_zero_qwen7b", "--set", "grpo.task=math500", "--dry-run", check=False)
    assert proc.returncode == 2
    assert "math500" in proc.stderr and "allow_train_on_eval" in proc.stderr and "eval.tasks" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # one clear line


def test_dry_run_prints_the_plan(r1, tmp_path):
    files = local_copies(tmp_path)
    sets = [a for k, v in overrides_for("r1_zero_qwen7b", files).items() for a in ("--set", f"{k}={v}")]
    proc = r1("train", "--recipe", "r1_zero_qwen7b", *sets, "--dry-run")
    out = proc.stdout
    assert "recipe r1_zero_qwen7b: model Qwen/Qwen2.5-Math-7B" in out
    assert "BytedTsinghua-SIA/DAPO-Math-17k [prompt, format dapo_math]" in out
    assert "hub offline (HF_HUB_OFFLINE=1)" in out and "dapo-math-17k.parquet" in out
    assert "rows read 4, skipped 0, used 3" in out and "1 of 4 dropped {'aime2025': 1}" in out
    assert "rewards: ['accuracy', 'format']" in out  # R1-Zero: rule rewards only
    assert "User: A farmer has 17 sheep" in out and "Assistant:" in out  # the rendered R1-Zero prompt
    assert "'temperature': 1.0, 'top_p': 1.0, 'seed': 0" in out  # how the rollouts are sampled
    assert "max_tokens 32768, temperature 0.6, top_p 0.95" in out  # and the evaluations
    assert "accelerate launch --config_file training/accelerate/zero3.yaml --num_processes 7" in out
    assert "'grpo': 35" in out  # 7 x 16 x 5 / 16 prompts per step
    assert "dry run: nothing was trained" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("recipe", SHIPPED)
def test_every_shipped_recipe_passes_its_dry_run(recipe, tmp_path):
    files = local_copies(tmp_path)
    plan = pipeline.plan(recipe, {**overrides_for(recipe, files), "out": str(tmp_path / "out")})
    assert [s["name"] for s in plan["stages"]] == yaml.safe_load((RECIPES_DIR / f"{recipe}.yaml").read_text())["stages"]
    for st in plan["stages"]:
        assert st["data"]["rows"] > 0
        dcr = st["data"]["decontamination"]
        assert dcr.get("enabled") is False or dcr["benchmarks"]  # checked, or said why not
        if st["name"] in ("grpo", "grpo_all"):
            assert st["prompt"] and st["rewards"]
    if recipe.startswith("r1_zero"):
        assert plan["stages"][0]["data"]["source"] == "BytedTsinghua-SIA/DAPO-Math-17k"  # never a benchmark
    assert not Path(tmp_path / "out").exists()
    pipeline.format_plan(plan)


def test_stage_defaults_and_the_four_sources(tmp_path):
    plan = pipeline.plan("r1_pipeline_qwen7b", overrides_for("r1_pipeline_qwen7b", local_copies(tmp_path)))
    st = {s["name"]: s for s in plan["stages"]}
    assert st["cold_start"]["data"]["format"] == "messages"
    assert st["cold_start"]["data"]["decontamination"]["by_benchmark"] == {"codeforces": 1}
    assert st["grpo"]["rewards"] == ["accuracy", "format_think", "language"]  # stage 2 default [R1 2.3.2]
    assert st["rejection_sft"]["data"]["format"] == "openr1_math"
    assert st["rejection_sft"]["non_reasoning_data"]["rows"] == 2
    assert st["grpo_all"]["rewards"] == ["accuracy", "format_think", "language"]


def _recipe(tmp_path: Path, **changes) -> str:
    data = yaml.safe_load((RECIPES_DIR / "cpu_pipeline.yaml").read_text())
    data.update(changes)
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


@pytest.mark.parametrize("stages,drop,key", [
    (["cold_start"], "cold_start_data", "cold_start_data"),
    (["grpo"], "grpo", "grpo.data"),
    (["rejection_sft"], "rejection", "rejection.data"),
])
def test_a_stage_without_inputs_names_the_recipe_key(tmp_path, stages, drop, key):
    data = yaml.safe_load((RECIPES_DIR / "cpu_pipeline.yaml").read_text())
    data["stages"] = stages
    if drop == "grpo":
        data["grpo"].pop("task")
    elif drop == "rejection":
        data["rejection"].pop("task")
    else:
        data.pop(drop)
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        pipeline.plan(str(p))
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        pipeline.main(str(p), {"out": str(tmp_path / "out")})


def test_bad_mapping_and_bad_launch_fail_the_dry_run(tmp_path):
    files = local_copies(tmp_path)
    with pytest.raises(UserError, match="columns present"):
        pipeline.plan("r1_zero_qwen7b", {"grpo.data.path": files["cold_start_data.path"]})
    with pytest.raises(UserError, match="not a multiple of num_generations"):
        pipeline.plan("r1_zero_qwen7b", {"grpo.data.path": files["grpo.data.path"], "launch.num_processes": 3,
                                         "grpo.gradient_accumulation_steps": 1, "grpo.per_device_train_batch_size": 4})
    # 4 processes x 4 completions = one group of 16: valid although one process alone would not hold a group
    pipeline.plan("r1_zero_qwen7b", {"grpo.data.path": files["grpo.data.path"], "launch.num_processes": 4,
                                     "grpo.gradient_accumulation_steps": 1, "grpo.per_device_train_batch_size": 4})
    with pytest.raises(UserError, match="GRPOConfig"):
        pipeline.plan("r1_zero_qwen7b", {"grpo.data.path": files["grpo.data.path"], "grpo.extra.no_such_field": 1})
    with pytest.raises(UserError, match="unknown reward"):
        pipeline.plan("r1_zero_qwen7b", {"grpo.data.path": files["grpo.data.path"], "grpo.rewards": ["acuracy"]})


def _tiny_reward_model(d: Path) -> Path:
    """Any HF sequence-classification model works as stage 4's reward model: a tiny Llama classifier built from a
    config (random weights), with the policy's tokenizer so TRL can tokenize prompt + completion for it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from training.grpo import model_dir

    tok = AutoTokenizer.from_pretrained(model_dir("embedded"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=1,
                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    out = d / "rm"
    LlamaForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.mark.slow
def test_four_stages_fed_by_datasets_on_cpu(tmp_path):
    """Cold start on Mixture-of-Thoughts traces, GRPO on DAPO prompts (accuracy + format + language), rejection
    sampling of OpenR1-Math prompts with the harness runner + smoltalk non-reasoning data, then GRPO with a reward
    model: every stage records its data source and what decontamination dropped."""
    (tmp_path / "data").mkdir()
    files = local_copies(tmp_path / "data")
    rm = _tiny_reward_model(tmp_path)
    recipe = _recipe(
        tmp_path, allow_train_on_eval=False, out=str(tmp_path / "run"),
        cold_start_data={"hf": "open-r1/Mixture-of-Thoughts", "config": "math", "path": files["cold_start_data.path"]},
        non_reasoning_data={"hf": "HuggingFaceTB/smoltalk", "format": "messages",
                            "path": files["non_reasoning_data.path"]},
        stage_overrides={"grpo_all": {"rewards": ["accuracy", "format_think", "language", f"model:{rm}"]}},
        eval={"enabled": False, "tasks": ["math500"]})
    data = yaml.safe_load(Path(recipe).read_text())
    data["grpo"].pop("task")
    data["grpo"]["data"] = {"hf": "BytedTsinghua-SIA/DAPO-Math-17k", "path": files["grpo.data.path"]}
    data["grpo"].pop("rewards")  # the stage default
    data["grpo"]["train_offset"] = 0
    data["rejection"].pop("task")
    data["rejection"]["data"] = {"hf": "open-r1/OpenR1-Math-220k", "path": files["rejection.data.path"]}
    data["rejection"]["limit"] = 2
    Path(recipe).write_text(yaml.safe_dump(data))

    res = pipeline.main(recipe)
    s = res["stages"]
    assert list(s) == ["1_cold_start", "2_grpo", "3_rejection_sft", "4_grpo_all"]
    assert s["1_cold_start"]["data"]["format"] == "messages" and s["1_cold_start"]["n_examples"] == 3
    assert s["1_cold_start"]["data"]["decontamination"]["by_benchmark"] == {"codeforces": 1}
    assert s["2_grpo"]["data"]["format"] == "dapo_math" and s["2_grpo"]["n_train_problems"] == 3
    assert {"accuracy", "format_think", "language"} <= set(s["2_grpo"]["rewards"][0])
    rej = s["3_rejection_sft"]
    assert rej["data"]["prompts"]["format"] == "openr1_math"
    assert rej["data"]["prompts"]["decontamination"]["by_benchmark"] == {"math500": 1}
    assert rej["rejection"]["input"] == 4  # 2 prompts x 2 samples, through the runner
    assert rej["rejection"]["non_reasoning_examples"] == 2
    assert rej["n_examples"] == rej["rejection"]["sft_examples"] >= 2
    hist = s["4_grpo_all"]["rewards"]
    assert "rm" in hist[0] and all(isinstance(h["rm"], float) for h in hist)  # the reward model scored
    assert s["4_grpo_all"]["start_model"] == rej["checkpoint"]
    saved = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert saved["stages"]["2_grpo"]["data"]["decontamination"]["by_benchmark"] == {"aime2025": 1}


@pytest.mark.slow
def test_stage3_judge_regrades_what_no_rule_checks(tmp_path):
    """rejection.judge: samples whose answer no rule could extract go to a generative judge on an OpenAI-compatible
    endpoint (a real llama_cpp.server on loopback serving the embedded model); each judgment is stored, the rule
    verdict kept beside it, and only a CORRECT grade would turn a sample into a kept one."""
    from _backend_fixtures import free_port, start_llama_server, stop_server
    from harness.models import embedded_gguf

    loaded = tds.load({"path": str(write_dapo(tmp_path)), "format": "dapo_math"}, "prompt")
    records = [{"task": "data_x", "problem_id": loaded.rows[0]["id"], "sample_idx": 0, "verdict": "no_answer",
                "completion": "<think>\nadd them\n</think>\nforty-two sheep"},
               {"task": "data_x", "problem_id": loaded.rows[1]["id"], "sample_idx": 0, "verdict": "correct",
                "completion": "<think>\nx\n</think>\n\\boxed{56}"}]
    port = free_port()
    proc = start_llama_server(embedded_gguf(), port, tmp_path / "server.log")
    try:
        counts = pipeline._judge_regrade(records, loaded, {"model": "smollm", "base_url": f"http://127.0.0.1:{port}/v1",
                                                          "max_tokens": 16}, tmp_path)
    finally:
        stop_server(proc)
    assert counts["judged"] == 1  # only the sample the rule verifier could not settle
    assert records[0]["rule_verdict"] == "no_answer" and records[0]["judge"]["model"] == "smollm"
    assert records[0]["verdict"] in ("correct", "no_answer")
    assert counts["judged_correct"] == (records[0]["verdict"] == "correct")
    assert "judge" not in records[1]
    lines = (tmp_path / "judgments.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["problem_id"] == loaded.rows[0]["id"]
