"""lm-evaluation-harness interop, offline: our backends as lm-eval's model "r1-harness", and lm-eval's --log_samples
read back by `r1 import --format lm-eval`. lm-eval runs for real (subprocess, local task YAML over the MMLU CSVs)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_r1
from harness.errors import UserError
from harness.importing import import_run

TEMPLATE = REPO / "tests" / "data" / "lm_eval_mmlu" / "r1_mmlu_template.yaml"
SUBJECTS = ("abstract_algebra", "anatomy")

lm_eval = pytest.importorskip("lm_eval")


def write_tasks(dest: Path, data_dir: Path, subjects=SUBJECTS, **override) -> list[str]:
    """One lm-eval task YAML per subject, with the data path filled in (lm-eval needs it absolute)."""
    dest.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.read_text()
    names = []
    for s in subjects:
        cfg = yaml.safe_load(text.replace("@SUBJECT@", s).replace("@R1_DATA_DIR@", str(Path(data_dir).resolve())))
        cfg.update(override)
        if "output_type" in override:
            cfg["task"] += "_" + override["output_type"]
        cfg = {k: v for k, v in cfg.items() if v is not None}
        (dest / f"{cfg['task']}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        names.append(cfg["task"])
    return names


def run_lm_eval(args: list[str], tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    # cwd is the tmp dir (lm-eval writes beside it), so the repo goes on the path explicitly
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, HF_DATASETS_CACHE=str(tmp_path / "hf_cache"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PYTHONPATH=path)
    return subprocess.run([sys.executable, "-m", "harness.lm_eval_model", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- lm-eval -> our backend -> lm-eval's samples -> r1 import -------------------------------------------------------
@pytest.mark.slow
def test_lm_eval_cli_runs_our_backend_and_r1_import_rescores(tmp_path, data_dir):
    names = write_tasks(tmp_path / "tasks", data_dir)
    out = tmp_path / "lm_out"
    p = run_lm_eval(["--model", "r1-harness", "--model_args", "backend=llamacpp,model=embedded,seed=3,max_gen_toks=16",
                     "--tasks", ",".join(names), "--include_path", str(tmp_path / "tasks"), "--limit", "2",
                     "--gen_kwargs", "max_gen_toks=16", "--log_samples", "--output_path", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    files = sorted(out.rglob("samples_*.jsonl"))
    assert [f.name.split("_20")[0] for f in files] == [f"samples_{n}" for n in names]
    assert len(list(out.rglob("results_*.json"))) == 1
    lines = read_jsonl(files[0])
    assert len(lines) == 4  # 2 docs x 2 filters
    assert {ln["filter"] for ln in lines} == {"strict-match", "flexible-extract"}
    resps = {ln["doc_id"]: ln["resps"][0][0] for ln in lines}
    assert all(isinstance(r, str) for r in resps.values())
    assert lines[0]["arguments"]["gen_args_0"]["arg_1"]["max_gen_toks"] == 16

    # the CLI import of lm-eval's output directory, rescored by our verifier
    run_dir = tmp_path / "imported"
    run_r1("import", "--format", "lm-eval", "--task", "mmlu", "--model", "embedded", str(out), "--out", str(run_dir),
           "--data-dir", str(data_dir))
    res = json.loads((run_dir / "results.json").read_text())["tasks"]["mmlu"]
    assert (res["n_problems"], res["n_samples"]) == (4, 4)
    assert {s: v["n_problems"] for s, v in res["breakdowns"]["subject"].items()} == {"abstract_algebra": 2, "anatomy": 2}
    assert sum(res["extraction"].values()) == 4 and res["accuracy"]["n_subjects"] == 2
    recs = read_jsonl(run_dir / "samples.jsonl")
    assert sorted(r["problem_id"] for r in recs) == ["abstract_algebra/0", "abstract_algebra/1", "anatomy/0", "anatomy/1"]
    by_id = {r["problem_id"]: r for r in recs}
    assert [by_id[f"abstract_algebra/{i}"]["completion"] for i in (0, 1)] == [resps[0], resps[1]]
    assert all(r["verdict"] in ("correct", "incorrect", "no_answer") for r in recs)
    assert all(r["external"]["lm_eval_filter"] == "strict-match" and "lm_eval_exact_match" in r["external"] for r in recs)


@pytest.mark.slow
def test_loglikelihood_tasks_refused_by_llamacpp_and_scored_with_hf(tmp_path, data_dir):
    names = write_tasks(tmp_path / "tasks", data_dir, subjects=("anatomy",), output_type="multiple_choice",
                        doc_to_choice=["A", "B", "C", "D"], generation_kwargs=None, filter_list=None,
                        metric_list=[{"metric": "acc", "aggregation": "mean", "higher_is_better": True}])
    common = ["--tasks", names[0], "--include_path", str(tmp_path / "tasks"), "--limit", "2"]
    p = run_lm_eval(["--model", "r1-harness", "--model_args", "backend=llamacpp", *common], tmp_path)
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("lm_eval: error: r1-harness: backend 'llamacpp' cannot score log-likelihoods")
    assert "backend=hf" in last and "generative" in last
    assert "Traceback" not in p.stderr

    out = tmp_path / "hf_out"
    p = run_lm_eval(["--model", "r1-harness", "--model_args", "backend=hf,model=embedded", "--device", "cpu", *common,
                     "--log_samples", "--output_path", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(next(out.rglob("results_*.json")).read_text())["results"][names[0]]
    assert 0.0 <= res["acc,none"] <= 1.0
    lines = read_jsonl(next(out.rglob("samples_*.jsonl")))
    assert len(lines) == 2
    for ln in lines:
        assert len(ln["resps"]) == 4  # one (log-likelihood, is-greedy) pair per choice
        ll = [float(r[0][0]) for r in ln["resps"]]
        assert all(x < 0 for x in ll) and ln["acc"] == float(ll.index(max(ll)) == "ABCD".index(ln["target"]))


# --- the model class in-process -----------------------------------------------------------------------------------
def _instance(ctx, gen_kwargs, idx=0):
    from lm_eval.api.instance import Instance

    return Instance(request_type="generate_until", doc={}, arguments=(ctx, gen_kwargs), idx=idx,
                    metadata=("t", idx, 1))


def test_registered_and_built_from_lm_eval_arg_string():
    from lm_eval.api.registry import get_model

    from harness.lm_eval_model import R1HarnessLM

    assert get_model("r1-harness") is R1HarnessLM
    lm = R1HarnessLM.create_from_arg_string(
        "backend=llamacpp,model=embedded,max_gen_toks=8,think_prefix=true,temperature=0.6,top_p=0.95,seed=7,threads=1",
        {"batch_size": 1, "max_batch_size": None, "device": None})
    assert (lm.backend_name, lm.model_name, lm.max_gen_toks, lm.seed) == ("llamacpp", "embedded", 8, 7)
    assert lm.assistant_prefix == "<think>\n" and lm.backend_options == {"threads": 1}
    assert lm._backend is None  # no model load until a request needs one
    assert lm.tokenizer_name == "r1-harness:llamacpp:embedded"


def test_request_mapping_follows_lm_eval_semantics():
    from harness.lm_eval_model import R1HarnessLM

    # defaults are the paper protocol, and it wins over a task YAML's greedy/short settings
    proto = R1HarnessLM()
    assert proto._sampling({}) == (0.6, 0.95, 32768, [])
    assert proto._sampling({"until": ["", "</s>"], "do_sample": False, "temperature": 0.0, "max_gen_toks": 256}) \
        == (0.6, 0.95, 32768, ["</s>"])
    # gen_kwargs=task: lm-eval's semantics (do_sample=false is greedy; the task's values win; protocol fills gaps)
    task = R1HarnessLM(gen_kwargs="task")
    assert task._sampling({"until": "\n", "do_sample": False, "temperature": 0.7}) == (0.0, 0.95, 32768, ["\n"])
    assert task._sampling({"do_sample": True, "temperature": 1.0, "top_p": 0.5, "max_gen_toks": 5}) == (1.0, 0.5, 5, [])
    # values given as model args win over everything
    lm = R1HarnessLM(temperature=0.6, top_p=0.95, max_gen_toks=32, gen_kwargs="task")
    assert lm._sampling({"until": "\n", "do_sample": False, "temperature": 0.7}) == (0.6, 0.95, 32, ["\n"])
    assert lm._sampling({}) == (0.6, 0.95, 32, [])
    with pytest.raises(UserError, match="gen_kwargs"):
        R1HarnessLM(gen_kwargs="yaml")
    with pytest.raises(UserError, match="think_prefix"):
        R1HarnessLM(think_prefix="maybe")
    # plain context -> one user turn; chat (--apply_chat_template) -> turns, a trailing assistant turn is a prefill
    assert lm._messages("Q: 2+2?\nA:") == ([{"role": "user", "content": "Q: 2+2?\nA:"}], "")
    chat = lm.apply_chat_template([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                   {"role": "assistant", "content": "The answer is"}])
    assert lm._messages(chat) == ([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "The answer is")
    assert lm._messages(str(chat))[1] == "The answer is"  # still read as chat when lm-eval rebuilt the string
    think = R1HarnessLM(think_prefix=True, system_prompt="be brief")
    assert think._messages("q") == ([{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}],
                                    "<think>\n")
    # reasoning dropped before stop sequences are applied, as lm-eval's own models do
    r = R1HarnessLM(think_end_token="</think>", think_prefix="on")
    assert r._postprocess("<think>\na\nb</think>\n\nAnswer: C\nmore", ["\n"]) == "Answer: C"
    assert R1HarnessLM(think_prefix="off")._postprocess("x STOP y", ["STOP"]) == "x "
    # with thinking on, `until` cuts only the answer after </think>, never the reasoning
    on = R1HarnessLM(think_prefix="on")
    assert on._postprocess("<think>\na\n\nb</think>\nC\n\nmore", ["\n\n"]) == "<think>\na\n\nb</think>\nC"
    assert on._postprocess("<think>\na\n\nb", ["\n\n"]) == "<think>\na\n\nb"


@pytest.mark.slow
def test_generate_until_repeats_sample_differently_and_reproducibly():
    from harness.lm_eval_model import R1HarnessLM

    def run():
        lm = R1HarnessLM(backend="llamacpp", model="embedded", seed=1, gen_kwargs="task")
        try:
            reqs = [_instance("Write one word.", {"do_sample": True, "temperature": 1.0, "max_gen_toks": 12}, i)
                    for i in range(3)]
            reqs.append(_instance("Write one word.", {"do_sample": False, "max_gen_toks": 12, "until": ["."]}, 3))
            return lm.generate_until(reqs, disable_tqdm=True)
        finally:
            lm.close()

    a, b = run(), run()
    assert a == b
    assert len(set(a[:3])) > 1  # lm-eval's `repeats` copies get distinct seeds
    assert "." not in a[3]


def test_loglikelihood_refused_without_loading_a_model():
    from harness.lm_eval_model import LoglikelihoodUnsupported, R1HarnessLM

    lm = R1HarnessLM(backend="openai", model="whatever")
    with pytest.raises(LoglikelihoodUnsupported, match="backend 'openai' cannot score log-likelihoods"):
        lm.loglikelihood([])
    with pytest.raises(LoglikelihoodUnsupported):
        lm.loglikelihood_rolling([])
    assert lm._backend is None


# --- the importer on lm-eval sample files -------------------------------------------------------------------------
def _line(doc_id, doc, target, resps, filt="strict-match", **extra):
    return json.dumps({"doc_id": doc_id, "doc": doc, "target": target, "arguments": {}, "resps": resps,
                       "filtered_resps": [r[0] for r in resps], "filter": filt, "metrics": ["exact_match"],
                       "exact_match": 1.0, **extra})


@pytest.fixture(scope="module")
def mmlu_rows(data_dir):
    from harness.task import get_task

    return {p.id: p for p in get_task("mmlu").problems(data_dir)}


def test_import_cais_mmlu_style_docs_checked_against_our_data(tmp_path, data_dir, mmlu_rows):
    a0, a3 = mmlu_rows["anatomy/0"], mmlu_rows["anatomy/3"]
    f = tmp_path / "samples_mmlu_anatomy_generative_2025-01-01T00-00-00.000001.jsonl"
    lines = [
        _line(0, {"question": a0.question, "subject": "anatomy", "choices": list(a0.options), "answer": 0}, a0.gold,
              [[f"Answer: {a0.gold}", "no idea"]]),
        _line(0, {"question": a0.question, "subject": "anatomy"}, a0.gold, [[f"Answer: {a0.gold}", "no idea"]],
              filt="flexible-extract"),
        # doc_id 7 but the question of row 3 (a shuffled or filtered dataset): found by its text
        _line(7, {"question": a3.question, "subject": "anatomy"}, a3.gold, [["\\boxed{" + a3.gold + "}"]]),
    ]
    f.write_text("\n".join(lines) + "\n")
    res = import_run("lm-eval", "mmlu", f, tmp_path / "run", "m", data_dir=str(data_dir))["tasks"]["mmlu"]
    assert (res["n_problems"], res["samples_per_problem"]) == (2, 2)
    recs = {(r["problem_id"], r["sample_idx"]): r for r in read_jsonl(tmp_path / "run" / "samples.jsonl")}
    assert set(recs) == {("anatomy/0", 0), ("anatomy/0", 1), ("anatomy/3", 0)}
    assert [recs[k]["verdict"] for k in sorted(recs)] == ["correct", "no_answer", "correct"]
    assert recs[("anatomy/3", 0)]["verdict_detail"]["extraction"] == "boxed"


def test_import_mmlu_subject_from_task_name_and_gold_without_data(tmp_path, mmlu_rows):
    from harness.importers.lm_eval import read
    from harness.task import get_task

    hs = mmlu_rows["high_school_physics/2"]
    f = tmp_path / "samples_r1_mmlu_high_school_physics_2025-01-01T00-00-00.000001.jsonl"
    f.write_text(_line(2, {"question": hs.question, "A": "x", "B": "y", "C": "z", "D": "w", "answer": hs.gold}, hs.gold,
                       [["Answer: A"]]) + "\n")
    ips = list(read(f, get_task("mmlu")))
    assert [(ip.problem_id, ip.gold, ip.completions) for ip in ips] == [("high_school_physics/2", None, ["Answer: A"])]
    # with no data to check against, the target is the gold
    ips = list(read(f, get_task("mmlu"), data_dir=tmp_path / "no_data"))
    assert (ips[0].problem_id, ips[0].gold, ips[0].meta) == ("high_school_physics/2", hs.gold, {"subject": "high_school_physics"})


@pytest.mark.parametrize("line,words", [
    (_line(0, {"question": "x"}, "A", [["Answer: A"]]), ["names no MMLU subject"]),
    (_line(0, {"subject": "anatomy"}, "A", [[[-1.5, False]]]), ["generative", "'resps'"]),
    (_line(0, {"subject": "anatomy", "question": "not an anatomy question"}, "A", [["x"]]), ["matches no unique question"]),
    (_line(99999, {"subject": "anatomy"}, "A", [["x"]]), ["has no row 99999"]),
    ('{"doc_id": 0, "resps": [["x"]]}', ["missing field 'doc'"]),
    ("[1, 2]", ["expected a JSON object"]),
    ("{not json", ["not valid JSON"]),
])
def test_import_bad_mmlu_lines_name_file_and_line(tmp_path, data_dir, line, words):
    f = tmp_path / "samples_r1_mmlu_x_2025-01-01T00-00-00.000001.jsonl"
    f.write_text("\n" + line + "\n")
    with pytest.raises(UserError) as e:
        import_run("lm-eval", "mmlu", f, tmp_path / "run", "m", data_dir=str(data_dir))
    msg = str(e.value)
    assert f"{f}:2" in msg and all(w in msg for w in words), msg


def test_import_mmlu_target_disagreeing_with_our_gold_is_an_error(tmp_path, data_dir, mmlu_rows):
    a0 = mmlu_rows["anatomy/0"]
    wrong = next(L for L in "ABCD" if L != a0.gold)
    f = tmp_path / "samples_mmlu_anatomy_2025-01-01T00-00-00.000001.jsonl"
    f.write_text(_line(0, {"subject": "anatomy", "question": a0.question}, wrong, [["Answer: A"]]) + "\n")
    with pytest.raises(UserError, match="differs from our gold letter"):
        import_run("lm-eval", "mmlu", f, tmp_path / "run", "m", data_dir=str(data_dir))


def test_import_gpqa_recovers_lm_eval_shuffle(tmp_path, data_dir):
    """lm-eval's gpqa docs keep the original columns beside its shuffled choices; synthetic option text here."""
    from harness.task import get_task

    rid = get_task("gpqa_diamond").problems(data_dir)[5].id
    orig = {"Correct Answer": "right one", "Incorrect Answer 1": "wrong  one [title] x", "Incorrect Answer 2": "w2",
            "Incorrect Answer 3": " w3\n"}
    shown = ["w2", "wrong one. x", "w3", "right one"]  # lm-eval's preprocess: strip, " [title]" -> ". ", "  " -> " "
    doc = {"Record ID": rid, "High-level domain": "Physics", **orig, "choices": shown,
           **{f"choice{i + 1}": c for i, c in enumerate(shown)}, "answer": "(D)"}
    f = tmp_path / "samples_gpqa_diamond_cot_zeroshot_2025-01-01T00-00-00.000001.jsonl"
    f.write_text(_line(0, doc, "(D)", [["The answer is (D)", "Answer: A", "<think>\nAnswer: D"]]) + "\n")
    res = import_run("lm-eval", "gpqa_diamond", f, tmp_path / "run", "m", data_dir=str(data_dir))["tasks"]["gpqa_diamond"]
    assert res["n_problems"] == 1 and res["samples_per_problem"] == 3
    recs = sorted(read_jsonl(tmp_path / "run" / "samples.jsonl"), key=lambda r: r["sample_idx"])
    assert recs[0]["prompt_meta"] == {"gold_letter": "D", "perm": [2, 1, 3, 0], "source": "lm-eval"}
    assert [(r["verdict"], r["answer_key"]) for r in recs] == [("correct", "opt:0"), ("incorrect", "opt:2"),
                                                               ("truncated", None)]
    # a doc whose target contradicts the recovered order is refused
    f.write_text(_line(0, doc, "(A)", [["x"]]) + "\n")
    with pytest.raises(UserError, match="disagree"):
        import_run("lm-eval", "gpqa_diamond", f, tmp_path / "run2", "m", data_dir=str(data_dir))


def test_import_generic_task_and_directory_errors(tmp_path, data_dir):
    d = tmp_path / "out" / "model"
    d.mkdir(parents=True)
    (d / "samples_arith_2025-01-01T00-00-00.000001.jsonl").write_text(
        _line(0, {"id": "arith-3"}, "", [["</think> \\boxed{0}"]]) + "\n")
    res = import_run("lm-eval", "arith", tmp_path / "out", tmp_path / "run", "m")["tasks"]["arith"]
    assert res["n_problems"] == 1
    with pytest.raises(UserError, match="no lm-eval samples_"):
        import_run("lm-eval", "arith", tmp_path / "run", tmp_path / "run3", "m")
    (d / "samples_arith_2025-01-01T00-00-00.000001.jsonl").write_text(_line(0, {"text": "x"}, "", [["y"]]) + "\n")
    with pytest.raises(UserError, match="none of the fields problem_id"):
        import_run("lm-eval", "arith", tmp_path / "out", tmp_path / "run4", "m")
