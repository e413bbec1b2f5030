"""Training tags its own evaluations with the paper stage they correspond to (issue 11: the per-stage view)."""
import json

from training.config import EvalSettings
from training.grpo import evaluate_model
from training.pipeline import STAGES, paper_stage


def test_stage_names_follow_the_paper_pipeline():
    assert paper_stage(["grpo"]) == "zero"  # RL straight on the base model
    assert [paper_stage(STAGES[:i]) for i in range(1, 5)] == ["dev1", "dev2", "dev3", "r1"]
    assert paper_stage(["grpo", "cold_start"]) is None and paper_stage(["cold_start", "rejection_sft"]) is None
    assert paper_stage([]) is None


def test_training_evaluation_run_carries_the_tag(tmp_path):
    ev = EvalSettings(tasks=["arith"], limit=1, n=1, max_tokens=4, backend="llamacpp", batch_size=1)
    res = evaluate_model("embedded", ev, tmp_path / "eval", paper_stage="dev2")
    assert set(res) == {"arith"}
    assert json.loads((tmp_path / "eval" / "manifest.json").read_text())["paper_stage"] == "dev2"
    evaluate_model("embedded", ev, tmp_path / "plain")
    assert "paper_stage" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())
