"""r1 compare: paired deltas on shared problems, bootstrap CI and p, exact McNemar for single-sample runs."""
from __future__ import annotations

import json
import re
from math import comb
from pathlib import Path

import pytest

from conftest import run_r1
from harness.runner import aggregate_task
from harness.task import Problem
from reports.compare import compare_runs
from test_reports import SynthTask, make_run


def binary_run(root: Path, outcomes: dict[str, bool], model: str = "m") -> Path:
    """A single-sample run with the given per-problem outcomes (for exact McNemar checks)."""
    root.mkdir(parents=True)
    recs = [{"task": "math500", "problem_id": pid, "sample_idx": 0, "prompt_hash": "h", "completion": "x",
             "finish_reason": "stop", "completion_tokens": 10, "verdict": "correct" if ok else "incorrect",
             "answer_key": "gold" if ok else "bad"} for pid, ok in outcomes.items()]
    problems = [Problem(id=pid, gold="gold") for pid in outcomes]
    res = aggregate_task(SynthTask("math500"), problems, recs, 1)
    manifest = {"model": model, "backend": "llamacpp", "generation": {"temperature": 0.6}, "seed": 0,
                "tasks": {"math500": {"n": 1}}, "source": "eval"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "results.json").write_text(json.dumps({"tasks": {"math500": res}, "manifest": manifest}))
    return root


def _pass1_by_problem(run_dir: Path, task: str) -> dict[str, float]:
    by: dict[str, list[bool]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["task"] == task:
            by.setdefault(r["problem_id"], []).append(r["verdict"] == "correct")
    return {p: sum(v) / len(v) for p, v in by.items()}


def test_clear_difference_is_significant_and_delta_is_paired(tmp_path):
    a = make_run(tmp_path / "a", "m", {"aime2024": (30, 8)}, seed=1, skill=-1.0)
    b = make_run(tmp_path / "b", "m", {"aime2024": (30, 8)}, seed=2, skill=1.0)
    res = compare_runs(a, b)
    (t,) = res.tasks
    pa, pb = _pass1_by_problem(a, "aime2024"), _pass1_by_problem(b, "aime2024")
    assert t.n_shared == 30 and t.test.startswith("sign-flip")
    assert t.delta == pytest.approx(sum(pb[p] - pa[p] for p in pa) / 30)
    assert t.ci[0] < t.delta < t.ci[1] and t.ci[0] > 0
    assert t.p_value < 0.01 and t.verdict == "B better"
    assert compare_runs(b, a).tasks[0].verdict == "A better"


def test_same_skill_is_not_significant(tmp_path):
    a = make_run(tmp_path / "a", "m", {"math500": (30, 4)}, seed=1)
    b = make_run(tmp_path / "b", "m", {"math500": (30, 4)}, seed=2)
    (t,) = compare_runs(a, b).tasks
    assert t.p_value > 0.05 and t.verdict == "no significant difference"
    assert t.ci[0] < 0 < t.ci[1]


def test_no_shared_task_says_so(tmp_path):
    a = make_run(tmp_path / "a", "m", {"math500": (3, 2)})
    b = make_run(tmp_path / "b", "m", {"aime2024": (3, 2)})
    res = compare_runs(a, b)
    assert res.tasks == [] and "nothing to compare" in res.to_text()


def test_run_against_itself(tmp_path):
    a = make_run(tmp_path / "a", "m", {"math500": (10, 4)}, seed=1)
    (t,) = compare_runs(a, a).tasks
    assert t.delta == 0 and t.p_value == 1.0 and t.ci == (0.0, 0.0)


def test_single_sample_runs_use_exact_mcnemar(tmp_path):
    # 10 problems only A solves, 2 only B solves, 8 both, 5 neither.
    pids = [f"p{i:02d}" for i in range(25)]
    a_ok = [True] * 10 + [False] * 2 + [True] * 8 + [False] * 5
    b_ok = [False] * 10 + [True] * 2 + [True] * 8 + [False] * 5
    a = binary_run(tmp_path / "a", dict(zip(pids, a_ok)))
    b = binary_run(tmp_path / "b", dict(zip(pids, b_ok)))
    (t,) = compare_runs(a, b).tasks
    assert t.test == "McNemar exact" and t.discordant == (10, 2)
    assert t.p_value == pytest.approx(2 * (comb(12, 0) + comb(12, 1) + comb(12, 2)) / 2**12)  # 0.0386
    assert t.delta == pytest.approx((10 - 18) / 25) and t.verdict == "A better"
    assert "McNemar exact (10/2 discordant)" in compare_runs(a, b).to_text()


def test_partial_overlap_and_settings_are_reported(tmp_path):
    a = make_run(tmp_path / "a", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", {"math500": (12, 4), "aime2024": (5, 2)})
    b = make_run(tmp_path / "b", "other", {"math500": (8, 2), "gpqa_diamond": (3, 1)}, temperature=1.0)
    res = compare_runs(a, b)
    (t,) = res.tasks
    assert (t.n_shared, t.only_a, t.only_b) == (8, 4, 0)
    assert (t.samples_a, t.samples_b) == ("4", "2")
    assert res.only_in_a == ["aime2024"] and res.only_in_b == ["gpqa_diamond"]
    assert ("generation.temperature", "0.6", "1.0") in res.settings
    text = res.to_text()
    assert "4 problems only in A" in text and "tasks only in B (not compared): gpqa_diamond" in text
    md = res.to_markdown()
    row = next(ln for ln in md.splitlines() if ln.startswith("| math500 |"))
    assert row.split("|")[2].strip() == "8"
    page = res.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<td>math500</td>" in page
    assert not re.search(r'(href|src)="', page)


def test_prompt_change_is_noted(tmp_path):
    a = make_run(tmp_path / "a", "m", {"math500": (4, 2)})
    b = make_run(tmp_path / "b", "m", {"math500": (4, 2)})
    lines = (b / "samples.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    recs[0]["prompt_hash"] = "changed"
    (b / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (t,) = compare_runs(a, b).tasks
    assert t.notes == ["prompts differ on 1 of 8 paired samples (same problem and sample index)"]


def test_cli_compare_and_report(tmp_path):
    a = make_run(tmp_path / "a", "m", {"aime2024": (10, 4)}, seed=1, skill=-1.0)
    b = make_run(tmp_path / "b", "m", {"aime2024": (10, 4)}, seed=2, skill=1.0)
    out = run_r1("compare", str(a), str(b), "--markdown", "--html", str(tmp_path / "cmp.html")).stdout
    assert "| aime2024 | 10 |" in out and f"html: {tmp_path / 'cmp.html'}" in out
    assert "<table>" in (tmp_path / "cmp.html").read_text()
    text = run_r1("compare", str(a), str(b)).stdout
    assert re.search(r"^aime2024\s+10\s", text, re.M)
    rep = run_r1("report", str(a), str(b), "--out", str(tmp_path / "rep")).stdout
    assert f"report: {tmp_path / 'rep' / 'report.html'}" in rep
    md = (tmp_path / "rep" / "report.md").read_text().splitlines()
    assert [ln.split("|")[2].strip() for ln in md if ln.startswith("| aime2024 |")] == ["1: m [a]", "2: m [b]"]


def test_one_shared_problem_is_never_significant(tmp_path):
    # Every paired difference identical (one problem): the old bootstrap p was 1/10000, "B better *".
    a = binary_run(tmp_path / "a", {"p0": False})
    b = binary_run(tmp_path / "b", {"p0": True})
    (t,) = compare_runs(a, b).tasks
    assert t.delta == 1.0 and t.p_value is None and not t.significant
    assert t.verdict == "too few shared problems to test"
    assert "only 1 shared problem: too few for a significance test" in compare_runs(a, b).to_text()


def test_cli_compare_json_itself_and_one_problem_apart(tmp_path):
    pids = {f"p{i:02d}": i % 3 == 0 for i in range(20)}
    a = binary_run(tmp_path / "a", pids)
    b = binary_run(tmp_path / "b", {**pids, "p01": True})  # B also solves p01
    same = json.loads(run_r1("compare", str(a), str(a), "--json").stdout)
    (t,) = same["tasks"]
    assert (t["delta"], t["p_value"], t["ci"], t["significant"]) == (0.0, 1.0, [0.0, 0.0], False)
    assert t["verdict"] == "no significant difference" and same["settings_differ"] == []
    one = json.loads(run_r1("compare", str(a), str(b), "--json").stdout)
    (t,) = one["tasks"]
    assert t["delta"] == pytest.approx(1 / 20) and t["discordant"] == [0, 1] and t["p_value"] == 1.0
    assert t["test"] == "McNemar exact" and t["verdict"] == "no significant difference"
    assert t["pass@1_b"] - t["pass@1_a"] == pytest.approx(0.05)


def test_public_against_hidden_tests_is_noted(tmp_path):
    a = make_run(tmp_path / "a", "m", {"livecodebench": (6, 2)}, seed=1,
                 extras={"livecodebench": {"hidden_tests_absent": True}})
    b = make_run(tmp_path / "b", "m", {"livecodebench": (6, 2)}, seed=2,
                 extras={"livecodebench": {"hidden_tests_absent": False}})
    (t,) = compare_runs(a, b).tasks
    assert "A was scored on public/sample tests only, B on the hidden tests too: the delta mixes test sets" in t.notes
    (t,) = compare_runs(a, a).tasks
    assert t.notes == []
