"""Training datasets (training/datasets.py): every built-in format read from a small local file in its real layout,
column mappings and their errors, the hub-offline fallback, and decontamination counts per source."""
from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from harness.errors import DataMissing, UserError  # noqa: E402
from tests._training_files import (CLEAN, DAPO_HEAD, FORMAT_CASES, write_bespoke_stratos, write_dapo,  # noqa: E402
                                   write_gsm8k, write_math_train, write_mixture_of_thoughts, write_openr1_math)
from training import datasets as tds  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leftover_dataset_tasks(restore_task_registry):
    pass


def test_every_format_loads_and_decontaminates(tmp_path, capsys):
    """One row per built-in format: rows read, rows the mapping skipped, rows decontamination dropped (by benchmark).
    Each file carries exactly one row copied from a benchmark; it is the one dropped."""
    table = []
    for fmt, kind, write, hub, n_read, n_skipped, dropped in FORMAT_CASES:
        path = write(tmp_path)
        got = tds.load_decontaminated({"hf": hub, "path": str(path), "format": fmt}, kind)
        rep = got.report()
        assert rep["rows_read"] == n_read, fmt
        assert sum(rep["skipped"].values()) == n_skipped, (fmt, rep["skipped"])
        assert rep["decontamination"]["by_benchmark"] == dropped, (fmt, kind)
        assert rep["rows"] == n_read - n_skipped - sum(dropped.values())
        assert "hub offline" in rep["origin"] and str(path) in rep["origin"]  # which copy, and why
        for r in got.rows:
            if kind == "prompt":
                assert r["problem"].strip() and r["answer"].strip() and r["kind"] == "math"
            else:
                roles = [m["role"] for m in r["messages"]]
                assert roles[0] == "user" and roles[-1] == "assistant"
                if fmt != "numina_cot":  # NuminaMath's solutions are plain CoT, the others reasoning traces
                    assert r["messages"][-1]["content"].startswith("<think>\n")  # the R1 layout
                    assert "</think>" in r["messages"][-1]["content"]
        table.append((f"{fmt} ({hub})", kind, rep["rows_read"], sum(rep["skipped"].values()),
                      rep["decontamination"]["dropped"], rep["decontamination"]["by_benchmark"]))
    with capsys.disabled():
        print("\n| format | kind | rows read | skipped by mapping | dropped by decontamination |")
        print("|---|---|---|---|---|")
        for name, kind, n, sk, dr, by in table:
            print(f"| {name} | {kind} | {n} | {sk} | {dr} {by if by else ''} |")


def test_answers_and_problems_per_format(tmp_path):
    math = tds.load({"path": str(write_math_train(tmp_path)), "format": "math"}, "prompt")
    assert [r["answer"] for r in math.rows[:3]] == [a for _, a in CLEAN]
    assert math.skipped == {"no \\boxed{} answer in the solution": 1}
    gsm = tds.load({"path": str(write_gsm8k(tmp_path)), "format": "gsm8k"}, "prompt")
    assert [r["answer"] for r in gsm.rows] == ["42", "56", "50", "15000"]  # "#### 15,000" -> 15000
    dapo = tds.load({"path": str(write_dapo(tmp_path))}, "prompt")  # format auto, no hub id: from the columns
    assert dapo.format == "dapo_math"
    assert tds.load(str(write_gsm8k(tmp_path)), "prompt").format == "gsm8k"
    assert tds.load(str(write_openr1_math(tmp_path)), "trace").format == "openr1_math"
    assert tds.load(str(write_bespoke_stratos(tmp_path)), "trace").format == "sharegpt"
    dapo = tds.load({"hf": "BytedTsinghua-SIA/DAPO-Math-17k", "path": str(write_dapo(tmp_path))}, "prompt")
    assert dapo.format == "dapo_math"  # from the hub id
    assert dapo.rows[0]["problem"] == CLEAN[0][0] and not dapo.rows[0]["problem"].startswith(DAPO_HEAD[:20])
    assert dapo.rows[0]["id"] == "dapo-0" and dapo.rows[0]["answer"] == "42"
    assert tds.prompt_messages(dapo.rows[0])[0]["content"].endswith("within \\boxed{}.")  # the eval's prompt
    r1 = tds.load({"path": str(write_openr1_math(tmp_path)), "format": "openr1_math"}, "trace")
    assert r1.skipped == {"no verified-correct generation": 1}
    assert all(r["generation_index"] == 1 and r["verified_by"] == "correctness_math_verify" for r in r1.rows)
    st = tds.load({"path": str(write_bespoke_stratos(tmp_path)), "format": "bespoke_stratos"}, "trace")
    reply = st.rows[0]["messages"][-1]["content"]
    assert reply.startswith("<think>\nOkay") and "<|begin_of_solution|>" not in reply and reply.endswith("$.")
    assert [m["role"] for m in st.rows[0]["messages"]] == ["user", "assistant"]  # the tag-describing system dropped


def test_mapping_errors_name_the_column_and_the_columns_present(tmp_path):
    path = write_gsm8k(tmp_path)
    with pytest.raises(UserError) as e:
        tds.load({"path": str(path), "format": "math"}, "prompt")
    msg = str(e.value)
    assert "'problem'" in msg and "columns present: answer, question" in msg
    with pytest.raises(UserError, match="'my_q'"):
        tds.load({"path": str(path), "format": "gsm8k", "columns": {"problem": "my_q"}}, "prompt")
    ok = tds.load({"path": str(path), "format": "prompt", "columns": {"problem": "question"}}, "prompt")
    assert ok.rows[0]["answer"].endswith("#### 42")  # generic: the column as is
    with pytest.raises(UserError, match="no trace mapping"):
        tds.load({"path": str(path), "format": "gsm8k"}, "trace")
    with pytest.raises(UserError, match="unknown format 'alpaca'"):
        tds.load({"path": str(path), "format": "alpaca"}, "prompt")
    with pytest.raises(UserError, match="unknown data source key"):
        tds.parse_source({"path": str(path), "colums": {}}, "grpo.data")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x"}\nnot json\n')
    with pytest.raises(UserError, match="bad.jsonl:2"):
        tds.load(str(bad), "prompt")


def test_local_fallback_and_missing_copy(tmp_path, monkeypatch):
    path = write_mixture_of_thoughts(tmp_path)
    got = tds.load({"hf": "open-r1/Mixture-of-Thoughts", "config": "math", "path": path.name}, "trace",
                   data_dir=tmp_path)  # relative path: found in the data dir
    assert got.format == "messages" and "hub offline (HF_HUB_OFFLINE=1)" in got.origin and str(path) in got.origin
    with pytest.raises(DataMissing, match=r"hub offline.*no local copy at \S*nope\.jsonl"):
        tds.load({"hf": "open-r1/Mixture-of-Thoughts", "path": "nope.jsonl"}, "trace")
    with pytest.raises(UserError, match="needs `hf`"):
        tds.parse_source({"format": "messages"}, "cold_start_data")
    # Online but unreachable hub (this machine has no route to it): the local copy, saying why.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # closed port: fails at once, no network wait
    got = tds.load({"hf": "open-r1/Mixture-of-Thoughts", "path": str(path)}, "trace")
    assert "cannot reach 127.0.0.1:9" in got.origin and str(path) in got.origin


def test_slices_and_sft_rows(tmp_path):
    path = write_mixture_of_thoughts(tmp_path)
    got = tds.load({"path": str(path), "offset": 1, "limit": 2}, "trace")
    assert got.rows_read == 2 and [r["id"] for r in got.rows] == ["1", "2"]
    rows = tds.sft_rows(got)
    from training.sft import load_messages

    assert load_messages(rows) == rows  # what run_sft accepts


def test_prompt_dataset_as_a_harness_task(tmp_path):
    """Rejection sampling and teacher generation run the harness runner on a dataset: it becomes a task."""
    from harness.task import ScoreItem, get_task

    got = tds.load({"path": str(write_dapo(tmp_path)), "format": "dapo_math"}, "prompt")
    task = tds.prompt_task("data_test_dapo", got.rows)
    assert get_task("data_test_dapo") is task
    probs = task.problems()
    assert [p.id for p in probs] == [r["id"] for r in got.rows]
    pr = task.prompt(probs[0], 0)
    assert pr.messages == tds.prompt_messages(got.rows[0])
    v = task.score_many([ScoreItem(probs[0], "<think>\nadd\n</think>\n\\boxed{42}", "stop", {})])[0]
    assert v.correct
    with pytest.raises(UserError, match="benchmark's name"):
        tds.prompt_task("math500", got.rows)


def test_grpo_rows_render_the_eval_prompt(tmp_path):
    from training.config import GRPOSettings

    s = GRPOSettings(data={"hf": "BytedTsinghua-SIA/DAPO-Math-17k", "path": str(write_dapo(tmp_path))},
                     template="r1_zero", think_prefix=True)
    loaded = tds.grpo_prompts(s)
    rows = tds.grpo_rows(s)
    assert len(rows) == 3 and loaded.decontamination["by_benchmark"] == {"aime2025": 1}
    assert rows[0]["prompt"].startswith("A conversation between User and Assistant.")
    assert rows[0]["prompt"].endswith("Assistant: <think>\n") and rows[0]["gold"] == "42"
    assert json.dumps(rows)  # plain values: TRL builds an Arrow dataset from them
    with pytest.raises(UserError, match="set one of grpo.data"):
        tds.grpo_prompts(GRPOSettings(data={"path": "x.jsonl"}, task="arith"))
    with pytest.raises(UserError, match="grpo.data"):
        tds.grpo_prompts(GRPOSettings())


def test_teacher_answers_a_prompt_dataset_and_the_sft_prompt_is_rebuilt(tmp_path):
    """Distillation's teacher (distill/generate.py ``teacher.data``) samples a decontaminated prompt dataset with
    the harness runner on the embedded model; curation rebuilds each SFT prompt from the registered dataset task and
    checks it against the hash the teacher was asked with."""
    from distill.generate import TeacherConfig, generate
    from training.curation import build_examples, load_records

    src = {"hf": "open-r1/OpenR1-Math-220k", "format": "openr1_math", "path": str(write_openr1_math(tmp_path))}
    cfg = TeacherConfig.from_dict({"model": "embedded", "backend": "llamacpp", "data": [src], "tasks": [], "n": 1,
                                   "max_tokens": 8, "backend_options": {"workers": 1}})
    dirs = generate(cfg, tmp_path / "teacher")
    records = load_records(dirs)
    task = tds.task_name_for(tds.parse_source(src, "teacher.data"))
    assert {r["task"] for r in records} == {task}
    assert sorted(r["problem_id"] for r in records) == ["uuid-0", "uuid-1", "uuid-2", "uuid-none"]  # bench row gone
    rec = json.loads((tmp_path / "teacher" / "teacher_data.json").read_text())
    assert rec[0]["task"] == task and rec[0]["by_benchmark"] == {"math500": 1} and rec[0]["kept"] == 4
    examples, checks = build_examples(records)
    assert checks == {"matched": 4, "unchecked": 0}
    assert examples[0]["messages"][0]["content"] == tds.prompt_messages({"problem": CLEAN[0][0]})[0]["content"]


def test_chat_prompt_carries_the_think_prefix_once(tmp_path, data_dir):
    """A chat template that already ends with "<think>\\n" (R1-Distill since 2025-02) gets no second one in training,
    exactly as in evaluation (harness.prompting.add_prefix)."""
    from training.config import GRPOSettings
    from training.grpo import load_tokenizer, model_dir

    tok = load_tokenizer(model_dir("embedded"))
    tpl = json.loads((data_dir / "chat_templates" /
                      "deepseek-ai__DeepSeek-R1-Distill-Qwen-1.5B__think-unofficial-copy.json").read_text())
    s = GRPOSettings(data={"path": str(write_dapo(tmp_path))}, template="chat", think_prefix=True)
    plain = tds.grpo_rows(s, tok)[0]["prompt"]
    assert plain.endswith("<|im_start|>assistant\n<think>\n")  # SmolLM's template: the prefix added once
    tok.chat_template = tpl["chat_template"]
    r1 = tds.grpo_rows(s, tok)[0]["prompt"]
    assert r1.endswith("<｜Assistant｜><think>\n") and r1.count("<think>") == 1
