"""distill/ and training/curation.py: rejection filters (table-driven), the programmatic teacher and the enforced
`correct` filter, dataset prompt reconstruction on a real run, report row, end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill import report as rpt
from training import curation as ds
from training import curation as flt
from distill.pipeline import apply_overrides, load_recipe, recipe_path
from harness.errors import UserError

RECIPES = sorted((Path(__file__).resolve().parent.parent / "distill" / "recipes").glob("*.yaml"))


def rec(completion="<think>\nadd the numbers\n</think>\nThe answer is \\boxed{4}.", *, task="arith", pid="arith-0",
        idx=0, verdict="correct", finish="stop", tokens=20):
    return {"task": task, "problem_id": pid, "sample_idx": idx, "completion": completion, "finish_reason": finish,
            "completion_tokens": tokens, "verdict": verdict}


LONG = "word " * 700  # 3,500 characters without a blank line
FENCED = "<think>\nLet me check in code:\n```python\nprint(2 + 2)\n```\n</think>\n\\boxed{4}"

# (filter, params, record, keep, reason fragment)
CASES = [
    ("correct", {}, rec(), True, ""),
    ("correct", {}, rec(verdict="incorrect"), False, "verdict=incorrect"),
    ("correct", {}, rec(verdict="no_answer"), False, "verdict=no_answer"),
    ("correct", {}, rec(verdict="truncated"), False, "verdict=truncated"),
    ("correct", {}, rec(verdict=None), False, "unscored"),
    ("truncated", {}, rec(), True, ""),
    ("truncated", {}, rec(finish="length"), False, "finish_reason=length"),
    ("truncated", {}, rec(verdict="truncated"), False, "verdict=truncated"),
    ("truncated", {}, rec("<think>\nstill thinking", verdict="incorrect"), False, "unclosed <think>"),
    ("max_tokens", {"limit": 20}, rec(tokens=20), True, ""),
    ("max_tokens", {"limit": 20}, rec(tokens=21), False, "completion_tokens=21>20"),
    ("max_tokens", {"limit": 20}, rec(tokens=None), False, "no token count"),
    ("long_paragraph", {}, rec(), True, ""),
    ("long_paragraph", {}, rec(f"<think>\n{LONG}\n</think>\n\\boxed{{4}}"), False, "paragraph of 3"),
    ("long_paragraph", {"max_chars": 5000}, rec(f"<think>\n{LONG}\n</think>\n\\boxed{{4}}"), True, ""),
    # paragraphs split on blank lines: the same text in short paragraphs passes
    ("long_paragraph", {}, rec("<think>\n" + "\n\n".join(["word " * 100] * 7) + "\n</think>\n4"), True, ""),
    # the summary is not the CoT: a long final answer is not a long reasoning paragraph
    ("long_paragraph", {}, rec(f"<think>\nshort\n</think>\n{LONG}"), True, ""),
    ("code_in_cot", {}, rec(), True, ""),
    ("code_in_cot", {}, rec(FENCED), False, "code block in CoT"),
    ("code_in_cot", {}, rec(FENCED, task="livecodebench"), True, ""),
    ("code_in_cot", {"code_tasks": ["arith"]}, rec(FENCED), True, ""),
    ("code_in_cot", {}, rec("<think>\nshort\n</think>\n```python\nprint(4)\n```"), True, ""),  # code in the summary
    ("mixed_language", {}, rec(), True, ""),
    ("mixed_language", {}, rec("<think>\nFirst we add 这些数字 and then 得到结果 四。\n</think>\n\\boxed{4}"), False,
     "mixed language"),
    ("mixed_language", {"target": "zh"}, rec("<think>\n我们把这些数字加起来得到四\n</think>\n\\boxed{4}"), True, ""),
    # a summary in another language does not make the CoT mixed
    ("mixed_language", {}, rec("<think>\nadd two and two\n</think>\n答案是 \\boxed{4}"), True, ""),
]


@pytest.mark.parametrize("name,params,record,keep,reason", CASES,
                         ids=[f"{c[0]}-{i}-{'keep' if c[3] else 'drop'}" for i, c in enumerate(CASES)])
def test_filter_table(name, params, record, keep, reason):
    d = flt.parse_filters([{name: params}])[0].decide([record])[0]
    assert d.keep is keep
    assert (d.reason == "") if keep else (reason in d.reason)


def test_duplicates_keep_first_per_problem():
    a = rec("<think>\nx\n</think>\n4", idx=0)
    b = rec("<think>\nx \n</think>\n 4", idx=1)  # same up to whitespace
    c = rec("<think>\nx\n</think>\n4", pid="arith-1", idx=0)  # same text, another problem
    d = rec("<think>\ny\n</think>\n4", idx=2)
    out = flt.duplicates([a, b, c, d])
    assert [x.keep for x in out] == [True, False, True, True]
    assert out[1].reason == "duplicate of sample 0"


def test_funnel_counts_and_report_only():
    records = [rec(idx=0), rec("<think>\nz\n</think>\n5", idx=1, verdict="incorrect"),
               rec("<think>\nw", idx=2, verdict="truncated", finish="length"), rec(idx=3),
               rec(FENCED, idx=4)]
    specs = flt.parse_filters(["truncated", "correct", "code_in_cot", "duplicates"])
    res = flt.run_filters(records, specs)
    # truncated takes #2 first, so correct sees (and counts) only #1
    assert res.counts == {"truncated": 1, "correct": 1, "code_in_cot": 1, "duplicates": 1}
    assert [r["sample_idx"] for r in res.kept] == [0]
    rep = res.report()
    assert rep["input"] == 5 and rep["kept"] == 1 and rep["dropped"] == res.counts
    assert rep["reasons"]["duplicates"] == {"duplicate of sample N": 1}

    demo = flt.run_filters(records, flt.parse_filters(["truncated", "correct"], report_only=["correct"]))
    assert demo.counts == {"truncated": 1, "correct": 1}
    assert len(demo.kept) == 4 and demo.report()["report_only"] == ["correct"]


def test_default_filters_and_bad_specs():
    specs = flt.parse_filters(None)
    assert [s.name for s in specs] == list(flt.DEFAULT_FILTERS)
    res = flt.run_filters([rec(idx=0), rec(idx=1), rec(idx=2, tokens=40000), rec(idx=3, verdict="incorrect")], specs)
    assert [r["sample_idx"] for r in res.kept] == [0]
    assert res.counts == {"truncated": 0, "correct": 1, "max_tokens": 1, "mixed_language": 0, "long_paragraph": 0,
                          "code_in_cot": 0, "duplicates": 1}
    with pytest.raises(UserError, match="unknown filter"):
        flt.parse_filters(["nope"])
    with pytest.raises(UserError, match="report_only"):
        flt.parse_filters(["correct"], report_only=["duplicates"])


# ------------------------------------------------------------------------------------------------ dataset
@pytest.fixture(scope="module")
def arith_run(tmp_path_factory, r1):
    out = tmp_path_factory.mktemp("distill") / "arith"
    r1("eval", "--task", "arith", "--limit", "2", "-n", "2", "--max-tokens", "32", "--out", str(out), "--no-progress",
       "--think-prefix", "on")
    return out


def test_dataset_prompts_match_generation(arith_run, tmp_path):
    from distill.generate import load_teacher_records
    from tasks.arith import make_problem

    records = load_teacher_records([arith_run])
    assert len(records) == 4
    examples, checks = ds.build_examples(records)
    assert checks == {"matched": 4, "unchecked": 0}
    for r, e in zip(records, examples):
        user, assistant = e["messages"]
        assert user["role"] == "user" and make_problem(int(r["problem_id"].split("-")[1])).question in user["content"]
        assert assistant == {"role": "assistant", "content": r["completion"]}
        assert assistant["content"].startswith("<think>\n")

    man = ds.write_dataset(examples, tmp_path / "ds", [arith_run], {"input": 4, "kept": 4}, checks, "think")
    lines = (tmp_path / "ds" / ds.DATASET_FILE).read_text().splitlines()
    assert len(lines) == man["n_examples"] == 4 and man["n_problems"] == 2
    assert man["sources"][0]["samples_sha256"] and man["sources"][0]["model"] == "embedded"
    assert json.loads((tmp_path / "ds" / ds.MANIFEST_FILE).read_text())["dataset_sha256"] == man["dataset_sha256"]
    assert ds.load_dataset(tmp_path / "ds") == [{"messages": e["messages"]} for e in examples]

    # A record whose prompt no longer matches what the task builds stops the build.
    bad = [dict(records[0], prompt_hash="0" * 16)]
    with pytest.raises(UserError, match="prompt changed"):
        ds.build_examples(bad)


def test_reverify_uses_the_task_verifier(arith_run):
    from distill.generate import load_teacher_records

    records = load_teacher_records([arith_run])
    forged = [dict(r, verdict="correct") for r in records]
    again = flt.reverify(forged)
    assert [r["verdict"] for r in again] == [r["verdict"] for r in records]
    assert forged[0]["verdict"] == "correct"  # not in place


def test_readable_format():
    assert ds.readable("<think>\nadd\n</think>\n\nIt is 4.") == "|special_token|add|special_token|It is 4."
    assert ds.readable("no think", "<sep>") == "<sep><sep>no think"


# ------------------------------------------------------------------------------------------------ recipes, report
@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipes_load_and_validate(path):
    from distill.train import check_sft_params

    r = load_recipe(path)
    check_sft_params(r["sft"])
    flt.parse_filters(r.get("filters"), r.get("report_only") or ())
    if path.stem != "cpu_demo":
        assert rpt.build_row("x", r["student"]["paper_model"], {"tasks": {}})["paper_row"], path
        assert r["sft"]["num_train_epochs"] == 2 and r["sft"]["max_length"] == 32768
        assert r.get("decontaminate", True)


def test_all_students_have_a_recipe():
    names = {p.stem for p in RECIPES}
    assert {"qwen2.5-math-1.5b", "qwen2.5-math-7b", "qwen2.5-14b", "qwen2.5-32b", "llama-3.1-8b",
            "llama-3.3-70b-instruct", "cpu_demo"} <= names
    assert recipe_path("cpu_demo").name == "cpu_demo.yaml"
    with pytest.raises(UserError, match="shipped recipes"):
        recipe_path("no-such-recipe")


def test_overrides():
    r = {"teacher": {"limit": 10}, "sft": {"max_steps": -1}}
    assert apply_overrides(r, {"teacher.limit": 2, "sft.max_steps": 1}) == {"teacher": {"limit": 2}, "sft": {"max_steps": 1}}
    assert apply_overrides(r, ["teacher.tasks=[arith, math500]", "out=/tmp/x"])["teacher"] == {
        "limit": 10, "tasks": ["arith", "math500"]}
    assert r["teacher"] == {"limit": 10}  # not mutated
    with pytest.raises(UserError):
        apply_overrides(r, ["no-equals-sign"])


def test_report_row_against_table5(tmp_path):
    results = {"tasks": {"math500": {"pass@1": 0.8, "pass@1_ci": [0.7, 0.9], "n_problems": 500, "samples_per_problem": 4},
                         "aime2024": {"pass@1": 0.5, "pass@1_ci": [0.3, 0.7], "cons@64": 0.8, "n_problems": 30,
                                      "samples_per_problem": 64}}}
    row = rpt.build_row("my-7b", "deepseek-r1:7b", results)
    assert row["paper_model_id"] == "DeepSeek-R1-Distill-Qwen-7B" and row["paper_row"] == "R1-Distill-Qwen-7B"
    cells = {(c["task"], c["metric"]): c for c in row["columns"]}
    assert cells[("math500", "pass@1")]["paper"] == pytest.approx(0.928)
    assert cells[("math500", "pass@1")]["delta"] == pytest.approx(0.8 - 0.928)
    assert cells[("codeforces", "rating")]["paper"] == 1189 and cells[("codeforces", "rating")]["ours"] is None
    assert cells[("aime2024", "cons@64")]["ours"] == 0.8
    paths = rpt.write_report(row, tmp_path)
    md = paths["markdown"].read_text()
    assert "| paper: R1-Distill-Qwen-7B | 55.5 | 83.3 | 92.8 | 49.1 | 37.6 | 1189 |" in md
    assert "| ours: my-7b | 50.0 [30.0, 70.0] | 80.0 | 80.0 [70.0, 90.0] | — | — | — |" in md
    assert "| ours − paper | -5.5 | -3.3 | -12.8 | — | — | — |" in md
    assert json.loads(paths["json"].read_text())["paper_model_id"] == "DeepSeek-R1-Distill-Qwen-7B"
    assert "no paper row" in rpt.render(rpt.build_row("x", "not-a-model", results))


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_pipeline_end_to_end_cpu(tmp_path):
    """cpu_demo at toy sizes: programmatic teacher -> enforced filters -> dataset -> 1 SFT step of the embedded
    student -> before/after eval -> report row + summary.json, run the way a GPU cluster runs it: pipeline up to the
    dataset, the SFT step alone (distill.train, as under accelerate launch), then the pipeline again, which finds the
    student current and evaluates it."""
    import yaml

    from distill import train as dtrain
    from distill.pipeline import main

    recipe = yaml.safe_load(recipe_path("cpu_demo").read_text())
    recipe["teacher"]["limit"] = 12
    recipe["teacher"]["backend_options"] = {"slip_rate": 0.3}
    recipe["eval"].update(limit=4, max_tokens=16, backend_options={"batch_size": 4})
    recipe["sft"].update(max_steps=1, per_device_train_batch_size=2, logging_steps=1)
    rpath = tmp_path / "demo.yaml"
    rpath.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "demo"

    first = main(rpath, {"out": str(out), "stop_after": "dataset"})
    assert first["stopped_after"] == "dataset" and not (out / "student").exists()
    assert dtrain.main([str(rpath), str(out)]) == 0
    row = main(rpath, {"out": str(out)})
    assert row["timings_s"]["train_s"] < 5  # trained by distill.train above, not again

    assert row["paper_row"] == "R1-Distill-Qwen-1.5B"
    f = row["filters"]
    assert f["input"] == 12 and row["dataset"]["n_examples"] == f["kept"] and f["report_only"] == []
    assert list(f["dropped"]) == ["decontaminate", "truncated", "correct", "max_tokens", "mixed_language",
                                  "long_paragraph", "code_in_cot", "duplicates"]
    # the student is evaluated on arith-0..3: the teacher's samples on them never reach it
    assert f["dropped"]["decontaminate"] == 4 and row["train_eval_overlap"] == [f"arith/arith-{i}" for i in range(4)]
    assert row["held_out"]["arith"] == {"eval_problems": 4, "train_problems": f["kept"], "overlap": 0,
                                        "teacher_problems": 12}
    lines = (out / "dataset" / "dataset.jsonl").read_text().splitlines()
    sources = [json.loads(line)["source"] for line in lines]
    assert sources and all(s["verdict"] == "correct" for s in sources)  # nothing wrong is trained on
    assert {s["problem_id"] for s in sources} <= {f"arith-{i}" for i in range(4, 12)}
    assert row["train"]["global_step"] == 1 and row["train"]["train_loss"] > 0
    assert row["train"]["trainer"] == "training.sft.run_sft"  # the project's one SFT path
    model_dir = Path(row["train"]["model_dir"])
    assert (model_dir / "config.json").is_file() and out / "student" in model_dir.parents
    res = json.loads((out / "eval" / "results.json").read_text())
    assert res["manifest"]["model"] == str(model_dir) and res["manifest"]["backend"] == "hf"
    summary = json.loads((out / "summary.json").read_text())
    for when in ("before", "after"):
        cell = summary["eval"]["arith"][when]
        assert cell["n"] == 4 and 0 <= cell["pass@1"] <= 1 and len(cell["ci"]) == 2
        assert sum(cell["verdicts"].values()) == 4
    assert summary["filters"] == f["dropped"] and summary["held_out"]["arith"]["overlap"] == 0
    md = (out / "report_row.md").read_text()
    assert "paper: R1-Distill-Qwen-1.5B" in md and "contaminated" not in md
    # Re-running resumes: no new teacher samples, no retraining, the same eval run.
    again = main(rpath, {"out": str(out)})
    assert again["dataset"]["dataset_sha256"] == row["dataset"]["dataset_sha256"]
    assert again["timings_s"]["train_s"] < 5 and again["columns"] == row["columns"]


def test_distill_sft_params_use_the_training_vocabulary(tmp_path):
    """One vocabulary for sft: SFTSettings fields, TRL SFTConfig fields through extra, typos refused up front."""
    from distill import train as dtrain
    from training.sft import sft_settings

    s = sft_settings({"max_steps": 3, "activation_checkpointing": False, "use_liger_kernel": True,
                      "extra": {"save_total_limit": 1}})
    assert s.max_steps == 3 and s.gradient_checkpointing is False
    assert s.extra == {"save_total_limit": 1, "use_liger_kernel": True}
    with pytest.raises(UserError, match="learning_rte"):
        dtrain.check_sft_params({"learning_rte": 1e-5})
    with pytest.raises(UserError, match="dtype"):  # a load setting: student.dtype
        dtrain.check_sft_params({"dtype": "float32"})
    with pytest.raises(UserError, match="empty"):
        dtrain.train([], "embedded", {}, tmp_path / "y")


def test_dry_run_plans_without_running(tmp_path, capsys):
    """`r1 distill --recipe cpu_demo --dry-run`: the held-out split is planned (arith-0..59 evaluated, their teacher
    samples dropped), nothing is generated or trained; a bad recipe fails in one line naming the key."""
    from distill.pipeline import plan
    from harness.cli import main as r1_main

    p = plan("cpu_demo", {"out": str(tmp_path / "x")})
    assert p["held_out"] == {"arith": {"teacher_problems": 660, "eval_problems": 60, "dropped_as_evaluated": 60,
                                       "train_problems": 600}}
    assert p["teacher"]["backend"] == "programmatic" and "correct" in p["filters"] and p["sft"]["max_steps"] == 40
    assert r1_main(["distill", "--recipe", "cpu_demo", "--dry-run", "--out", str(tmp_path / "x")]) == 0
    assert "nothing ran" in capsys.readouterr().out and not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="teacher.backend"):
        plan("cpu_demo", {"teacher.backend": "nope"})
    with pytest.raises(UserError, match="learning_rte"):
        plan("cpu_demo", {"sft.learning_rte": 1})


def test_programmatic_teacher_and_enforced_filters(tmp_path):
    """The demo's teacher is a harness backend: its samples are an eval run scored by the math verifier. Its slips
    are scored incorrect, the enforced `correct` filter drops every one, and assert_enforced proves it."""
    from distill.generate import TeacherConfig, generate, load_teacher_records
    from distill.teacher import worked_solution
    from tasks.arith import make_problem

    for i in range(60):  # exact on every problem shape (2-4 terms, products, negatives)
        p = make_problem(i)
        text, stated = worked_solution(p.question[len("Compute "):-1])
        assert str(stated) == p.gold and text.endswith(f"\\boxed{{{p.gold}}}.") and "</think>" in text

    cfg = TeacherConfig.from_dict({"model": "arith", "backend": "programmatic", "tasks": ["arith"], "limit": 200,
                                   "n": 1, "max_tokens": 2048, "backend_options": {"slip_rate": 0.2}})
    records = load_teacher_records(generate(cfg, tmp_path / "teacher"))
    verdicts = [r["verdict"] for r in records]
    assert len(records) == 200 and set(verdicts) == {"correct", "incorrect"}
    assert 20 <= verdicts.count("incorrect") <= 60  # slip_rate 0.2, seeded per sample
    specs = flt.parse_filters(["truncated", "correct", "duplicates"])
    res = flt.run_filters(records, specs)
    assert res.counts["correct"] == verdicts.count("incorrect") and len(res.kept) == verdicts.count("correct")
    flt.assert_enforced(res, specs)
    examples, checks = ds.build_examples(res.kept)
    assert checks == {"matched": len(res.kept), "unchecked": 0}
    assert all(e["messages"][-1]["content"].startswith("<think>\n") for e in examples)

    # a wrong sample in the kept set (a filter bug) is caught before any SFT
    bad = flt.FilterResult(res.kept + [next(r for r in records if r["verdict"] == "incorrect")], [], {}, [], 0)
    with pytest.raises(AssertionError, match="correct is enforced"):
        flt.assert_enforced(bad, specs)
    # a report-only `correct` is not enforced: nothing to assert
    flt.assert_enforced(bad, flt.parse_filters(["correct"], report_only=["correct"]))
    # max_tokens cuts like a model: finish_reason length, and the truncated filter drops it
    short = TeacherConfig.from_dict({"model": "arith", "backend": "programmatic", "tasks": ["arith"], "limit": 3,
                                     "max_tokens": 5})
    cut = load_teacher_records(generate(short, tmp_path / "short"))
    assert all(r["finish_reason"] == "length" for r in cut)
    assert flt.run_filters(cut, flt.parse_filters(["truncated"])).kept == []


def test_decontamination(tmp_path, arith_run):
    """Teacher samples on the evaluation's problems are dropped and counted; here that is all of them, and SFT
    refuses an empty dataset before loading any model."""
    from distill.pipeline import main

    with pytest.raises(UserError, match="dataset is empty"):
        main("cpu_demo", {"out": str(tmp_path / "x"), "teacher.tasks": [], "teacher.run_dirs": [str(arith_run)]})
    man = json.loads((tmp_path / "x" / "dataset" / "manifest.json").read_text())
    assert man["filters"]["dropped"]["decontaminate"] == 4 and man["n_examples"] == 0


def test_decontaminate_filter():
    out = flt.decontaminate([rec(pid="arith-0"), rec(pid="arith-5"), rec(task="math500", pid="arith-0")],
                            ["arith/arith-0"])
    assert [d.keep for d in out] == [False, True, True] and out[0].reason == "evaluation problem"
