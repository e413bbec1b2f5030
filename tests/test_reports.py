"""Reports: paper tables as data, the alias map, and report.md against a golden file on a fixed synthetic run.

Run dirs here are built like the runner builds them: records with the contract's fields, results.json from the
runner's own aggregate_task, so the report is tested on what `r1 eval` really writes.
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import time
from pathlib import Path

import pytest

from harness.runner import aggregate_task
from harness.task import Problem, Task
from reports import paper_tables
from reports.report import write_report
from reports.runs import load_run

GOLDEN = Path(__file__).parent / "golden"
PAPER_MD = Path(__file__).resolve().parents[2] / "shared" / "PAPER.md"


# --- a synthetic run dir -------------------------------------------------------------------------------------------
class SynthTask(Task):
    """A stand-in task for aggregation: the real tasks need data files; aggregation only needs these class facts."""

    def __init__(self, name: str, cons_k: int | None = None, breakdowns: tuple = (), extras: dict | None = None):
        super().__init__()
        self.name, self.cons_k, self.breakdowns, self._extras = name, cons_k, breakdowns, extras or {}

    def extra_results(self, problems, records):
        return dict(self._extras)


TASK_SHAPES = {
    # name: (problem id pattern, cons_k, breakdown key, groups)
    "aime2024": ("2024-I-{i}", 64, None, None),
    "math500": ("test/algebra/{i}.json", None, "level", ["1", "2", "3", "4", "5"]),
    "gpqa_diamond": ("rec{i:03d}", None, "domain", ["Biology", "Chemistry", "Physics"]),
    "codeforces": ("20{i:02d}A", None, None, None),
    "livecodebench": ("abc{i:03d}_b", None, "difficulty", ["easy", "medium", "hard"]),
}


def make_run(root: Path, model: str, tasks: dict[str, tuple[int, int]], seed: int = 0, skill: float = 0.0,
             short: dict[str, dict[int, int]] | None = None, max_tokens: int = 8192, temperature: float = 0.6,
             extras: dict[str, dict] | None = None, completion_chars: int = 120, external: bool = False,
             tokens: bool = True, results: bool = True) -> Path:
    """A deterministic run dir. tasks: name -> (problems, samples per problem). Problem difficulty depends only on
    the problem (so two runs are paired on the same problems); ``skill`` shifts every problem's log-odds.
    short: name -> {problem index: samples actually written} (a run that came back with fewer samples)."""
    root.mkdir(parents=True, exist_ok=True)
    records, results_tasks = [], {}
    for name, (n_prob, k) in tasks.items():
        pattern, cons_k, bkey, groups = TASK_SHAPES[name]
        problems, trecs = [], []
        for i in range(n_prob):
            pid = pattern.format(i=i + 1)
            meta = {bkey: groups[i % len(groups)]} if bkey else {}
            problems.append(Problem(id=pid, gold="gold", meta=meta))
            logit = random.Random(f"difficulty/{name}/{pid}").gauss(0.0, 1.6) + skill
            p = 1 / (1 + math.exp(-logit))
            rng = random.Random(f"{seed}/{name}/{pid}")
            for j in range((short or {}).get(name, {}).get(i, k)):
                u = rng.random()
                fin, key = "stop", None
                if u < p:
                    verdict, key, ntok = "correct", "gold", int(rng.gauss(2000, 500))
                else:
                    v = rng.random()
                    if v < 0.2:
                        verdict, fin, ntok = "truncated", "length", max_tokens
                    elif v < 0.35:
                        verdict, ntok = "no_answer", int(rng.gauss(3000, 800))
                    else:
                        verdict, key, ntok = "incorrect", rng.choice(["w1", "w2", "w3"]), int(rng.gauss(3500, 900))
                ntok = max(50, min(ntok, max_tokens))
                body = ("step " * (completion_chars // 5))[:completion_chars]
                rec = {"task": name, "problem_id": pid, "sample_idx": j, "seed": rng.randrange(2**31),
                       "prompt_hash": f"{name}-{pid}", "prompt_meta": {}, "completion": f"<think>\n{body}</think> {key}",
                       "finish_reason": fin, "prompt_tokens": 100, "completion_tokens": ntok if tokens else None,
                       "latency": 1.0, "verdict": verdict, "answer": key, "answer_key": key, "verdict_detail": {}}
                if external:  # another grader that agrees with ours except on every 7th sample
                    rec["external"] = {"tool": "livecodebench", "passed": (verdict == "correct") != (j % 7 == 3)}
                trecs.append(rec)
        task = SynthTask(name, cons_k, (bkey,) if bkey else (), (extras or {}).get(name))
        results_tasks[name] = aggregate_task(task, problems, trecs, k)
        records += trecs
    manifest = {
        "model": model, "model_info": {"name": model}, "backend": "llamacpp",
        "generation": {"temperature": temperature, "top_p": 0.95, "max_tokens": max_tokens, "think_prefix": True,
                       "system_prompt": None},
        "tasks": {name: {"n": k, "limit": None, "data": {}} for name, (_, k) in tasks.items()},
        "seed": seed, "versions": {"python": "3.x"}, "git_revision": "0123abc", "created": "2025-01-20T10:00:00+0000",
        "updated": "2025-01-20T11:00:00+0000", "source": "eval",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with open(root / "samples.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    if results:
        (root / "results.json").write_text(json.dumps({"tasks": results_tasks, "manifest": manifest}, indent=2))
    return root


def golden_runs(tmp: Path) -> list[Path]:
    a = make_run(tmp / "distill-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
                 {"aime2024": (12, 8), "math500": (10, 4), "codeforces": (6, 2)}, seed=1, skill=-0.3,
                 short={"math500": {2: 1, 7: 3}}, extras={"codeforces": {"rating": 1012.5, "percentile": 28.4}})
    b = make_run(tmp / "my-model", "/models/my-model-Q4_K_M.gguf", {"aime2024": (12, 8), "math500": (10, 4)},
                 seed=2, skill=0.4, max_tokens=4096, temperature=1.0)
    return [a, b]


def normalize(md: str) -> str:
    return re.sub(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", "Generated <time>", md)


# --- paper tables ---------------------------------------------------------------------------------------------------
def _paper_md_tables() -> dict[str, list[list[str]]]:
    tables, cur = {}, None
    for line in PAPER_MD.read_text().splitlines():
        m = re.match(r"## Table (\d+)", line)
        if m:
            # The first section of a number is the one the CSV mirrors ("Table 4 — all rows" follows the core rows).
            cur = f"table{m.group(1)}" if f"table{m.group(1)}" not in tables else None
            if cur:
                tables[cur] = []
        elif cur and line.startswith("|") and not line.startswith("|---"):
            tables[cur].append([c.strip() for c in line.strip("|").split("|")])
        elif cur and tables[cur] and not line.startswith("|"):
            cur = None
    return tables


@pytest.mark.skipif(not PAPER_MD.exists(), reason="shared/PAPER.md not beside the repo")
def test_csvs_match_paper_md_cell_by_cell():
    md = _paper_md_tables()
    benchmark_cols = {  # PAPER.md header -> CSV column
        "AIME p@1": "aime2024.pass@1", "AIME cons@64": "aime2024.cons@64", "MATH-500": "math500.pass@1",
        "GPQA-D": "gpqa_diamond.pass@1", "LCB": "livecodebench.pass@1", "CF rating": "codeforces.rating",
    }
    table4_rows = {"MMLU": "mmlu.pass@1", "GPQA Diamond": "gpqa_diamond.pass@1",
                   "LiveCodeBench (CoT)": "livecodebench.pass@1", "Codeforces percentile": "codeforces.percentile",
                   "Codeforces rating": "codeforces.rating", "AIME 2024": "aime2024.pass@1",
                   "MATH-500": "math500.pass@1"}
    checked = 0
    for name in ("table2", "table4", "table5", "table6"):
        with open(paper_tables.PAPER_DIR / f"{name}.csv", newline="") as f:
            rows = {r["model"]: r for r in csv.DictReader(f)}
        header, *body = md[name]
        if name == "table4":  # the paper prints benchmarks as rows, models as columns
            for line in body:
                for model, cell in zip(header[1:], line[1:]):
                    assert float(rows[model][table4_rows[line[0]]]) == float(cell), (name, model, line[0])
                    checked += 1
            assert len(rows) == len(header) - 1
        else:
            assert [line[0] for line in body] == list(rows)
            for line in body:
                for col, cell in zip(header[1:], line[1:]):
                    assert float(rows[line[0]][benchmark_cols[col]]) == float(cell), (name, line[0], col)
                    checked += 1
    assert checked == 3 * 6 + 6 * 7 + 10 * 6 + 3 * 5


def test_tables_have_sources_and_agree_across_tables():
    by_key: dict[tuple, set] = {}
    for v in paper_tables.all_values():
        assert v.source.startswith("DeepSeek-R1 paper (arXiv:2501.12948v1) Table")
        assert v.table[-1] in v.source.split("Table")[1][:3]
        by_key.setdefault((v.model_id, v.task, v.metric), set()).add(v.value)
    # A model in several tables must have one value per metric, or lookups would depend on table order.
    assert {k: s for k, s in by_key.items() if len(s) > 1} == {}
    assert paper_tables.lookup("OpenAI-o1-mini", "codeforces", "rating").value == 1820
    assert paper_tables.lookup("DeepSeek-R1", "mmlu", "pass@1").fraction == pytest.approx(0.908)
    assert paper_tables.lookup("DeepSeek-R1-Distill-Qwen-1.5B", "aime2024", "cons@64").value == 52.7
    assert paper_tables.lookup("DeepSeek-R1-Distill-Qwen-1.5B", "aime2024", "cons@64").table == "table5"
    assert paper_tables.lookup("DeepSeek-R1-Distill-Qwen-1.5B", "codeforces", "rating").fraction is None
    assert "44.0" in paper_tables.lookup("QwQ-32B-Preview", "aime2024", "pass@1").note


@pytest.mark.parametrize("name,model_id", [
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "DeepSeek-R1-Distill-Qwen-1.5B"),
    ("/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", "DeepSeek-R1-Distill-Qwen-7B"),
    ("unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF", "DeepSeek-R1-Distill-Llama-8B"),
    ("DeepSeek-R1-Distill-Qwen-32B-bf16-00001-of-00002.gguf", "DeepSeek-R1-Distill-Qwen-32B"),
    ("deepseek-r1:70b", "DeepSeek-R1-Distill-Llama-70B"),
    ("deepseek-ai/DeepSeek-R1", "DeepSeek-R1"),
    ("deepseek-ai/DeepSeek-R1-Zero", "DeepSeek-R1-Zero"),
    ("Qwen/QwQ-32B-Preview", "QwQ-32B-Preview"),
    ("o1-mini", "OpenAI-o1-mini"),
    ("R1-Distill-Qwen-14B", "DeepSeek-R1-Distill-Qwen-14B"),
    ("embedded", None),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", None),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B-extra", None),
])
def test_resolve_model(name, model_id):
    assert paper_tables.resolve_model(name) == model_id


def test_resolve_model_falls_back_to_model_info():
    assert paper_tables.resolve_model("/tmp/x/model.gguf", {"repo_id": "bartowski/DeepSeek-R1-Distill-Qwen-7B-GGUF"}) \
        == "DeepSeek-R1-Distill-Qwen-7B"


# --- the report ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("golden")
    runs = golden_runs(tmp)
    paths = write_report(runs, tmp / "report")
    return runs, paths


def test_report_md_matches_golden(golden_report):
    _, paths = golden_report
    got = normalize(paths["markdown"].read_text())
    golden = GOLDEN / "report.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(got)
    assert got == golden.read_text(), "report.md changed; inspect, then UPDATE_GOLDEN=1 pytest tests/test_reports.py"


def test_report_numbers_are_the_runs_numbers(golden_report):
    runs, paths = golden_report
    md = paths["markdown"].read_text()
    res = json.loads((runs[0] / "results.json").read_text())["tasks"]["aime2024"]
    row = next(ln for ln in md.splitlines() if ln.startswith("| aime2024 | 1: "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{100 * res['pass@1']:.1f}"
    lo, hi = res["pass@1_ci"]
    assert cells[5] == f"{100 * lo:.1f}–{100 * hi:.1f}"
    assert cells[6] == "28.9"  # Table 5, R1-Distill-Qwen-1.5B
    inside = lo <= 0.289 <= hi
    assert cells[7] == ("yes" if inside else ("no (paper above)" if 0.289 > hi else "no (paper below)")) + \
        "; protocol differs: max_tokens, k"  # 8192 tokens, 8 samples (the paper: 32768, 64)
    assert cells[8] == f"{100 * res['cons@8']:.1f} (k=8)" and cells[9] == "52.7 (cons@64)"
    assert cells[10] == f"{100 * res['truncation_rate']:.1f}" and cells[11] == f"{100 * res['no_answer_rate']:.1f}"
    # The second run's GGUF file has no paper row: its paper columns stay empty.
    row2 = next(ln for ln in md.splitlines() if ln.startswith("| aime2024 | 2: "))
    assert [c.strip() for c in row2.strip("|").split("|")][6:8] == ["—", "—"]


def test_report_flags_short_runs_and_protocol(golden_report):
    _, paths = golden_report
    md = paths["markdown"].read_text()
    assert "math500, run 1: 2 of 10 problems have fewer than the 4 samples asked for (min 1): " \
           "test/algebra/3.json, test/algebra/8.json" in md
    assert "| math500 | 1: DeepSeek-R1-Distill-Qwen-1.5B [distill-1.5b] | 10 | 1–4 / 4 |" in md
    assert "temperature 1.0 (paper 0.6)" in md and "max_tokens 4096 (paper 32768)" in md
    assert "| codeforces | 1: DeepSeek-R1-Distill-Qwen-1.5B [distill-1.5b] | rating | 1012.5 | 954.0 |" in md
    assert "| codeforces | 1: DeepSeek-R1-Distill-Qwen-1.5B [distill-1.5b] | percentile | 28.4 | — |" in md


def test_report_writes_every_plot_it_references(golden_report):
    _, paths = golden_report
    md = paths["markdown"].read_text()
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    plots = {p.name for k, p in paths.items() if k.startswith("plot:")}
    assert set(refs) == plots
    assert {"aime2024_pass_at_k.png", "aime2024_cons_at_k.png", "aime2024_lengths.png",
            "aime2024_length_accuracy.png", "math500_by_level.png"} <= plots
    for name in refs:
        data = (paths["markdown"].parent / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_cons_curve_end_equals_runner_cons(tmp_path):
    run = load_run(make_run(tmp_path / "r", "m", {"aime2024": (9, 6)}, seed=5))
    tr = run.tasks["aime2024"]
    curve = tr.cons_at_k_curve([1, 6])
    assert curve[6][0] == pytest.approx(tr.results["cons@6"])
    # cons@1 over many random orders approaches the share of samples that are correct (a vote of one).
    assert curve[1][0] == pytest.approx(tr.results["pass@1"], abs=0.12)
    pk = tr.pass_at_k_curve()
    assert pk[1].value == pytest.approx(tr.results["pass@1"])
    assert {str(k): p.value for k, p in pk.items()} == pytest.approx(tr.results["pass@k"])


def test_report_on_run_without_results_or_tokens(tmp_path):
    """An interrupted run (no results.json) and an imported one (no token counts) still report, and say so."""
    r = make_run(tmp_path / "crashed", "embedded", {"math500": (5, 4)}, results=False, tokens=False, external=True)
    paths = write_report([r], tmp_path / "out")
    md = paths["markdown"].read_text()
    assert "no results.json" in md and "r1 score" in md
    assert "lengths are in characters" in md
    assert "the paper has no row for model `embedded`" in md
    assert "external grades beside ours" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| 1: embedded [crashed] | livecodebench"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "20" and cells[5] == "75.0"  # sample_idx 3 of each problem disagrees by construction


def test_stale_results_are_flagged(tmp_path):
    r = make_run(tmp_path / "r", "m", {"math500": (4, 2)})
    with open(r / "samples.jsonl", "a") as f:
        f.write(json.dumps({"task": "math500", "problem_id": "test/algebra/1.json", "sample_idx": 2,
                            "completion": "x", "finish_reason": "stop", "completion_tokens": 5,
                            "verdict": "correct", "answer_key": "gold"}) + "\n")
        f.write('{"task": "math500", "problem_id": "torn')  # a torn last line is skipped, not an error
    run = load_run(r)
    assert any("stale" in w for w in run.warnings)
    assert sum(len(v) for v in run.tasks["math500"].by_problem.values()) == 9


def test_report_speed_smoke(tmp_path):
    """A small run well inside the budget (the 64 x 30 x 3 goal is benchmarks/report_speed.py's)."""
    r = make_run(tmp_path / "r", "m", {"aime2024": (30, 16), "math500": (30, 4), "gpqa_diamond": (30, 8)})
    t0 = time.perf_counter()
    write_report([r], tmp_path / "out")
    assert time.perf_counter() - t0 < 10


# --- LiveCodeBench import ------------------------------------------------------------------------------------------
from harness.errors import UserError  # noqa: E402
from harness.importers import lcb, reader  # noqa: E402
from harness.task import registry  # noqa: E402


class _LcbTask(Task):
    name = "livecodebench"


def _lcb_record(qid: str, graded: list[bool], outputs: bool = True) -> dict:
    codes = [f"print({qid!r}, {j})" for j in range(len(graded))]
    rec = {"question_title": f"T {qid}", "question_content": "statement", "platform": "atcoder", "question_id": qid,
           "contest_id": qid.split("_")[0], "contest_date": "2024-08-03T00:00:00", "starter_code": "",
           "difficulty": "easy", "code_list": codes, "graded_list": graded,
           "pass@1": sum(graded) / len(graded),
           "metadata": [json.dumps({"execution time": 0.1} if g else
                                   {"error_code": -2, "error_message": "Wrong Answer", "inputs": "1\n" * 5000,
                                    "expected": "2", "output": "3"}) for g in graded]}
    if outputs:
        rec["output_list"] = [f"<think>\nhmm\n</think>\n```python\n{c}\n```" for c in codes]
    return rec


def test_lcb_reader_keeps_their_grades_beside_the_outputs(tmp_path):
    f = tmp_path / "Scenario.codegeneration_3_0.6_eval_all.json"
    f.write_text(json.dumps([_lcb_record("abc365_b", [True, False, True]), _lcb_record("abc365_a", [False] * 3)]))
    assert reader("lcb") is lcb.read
    got = list(lcb.read(f, _LcbTask()))
    assert [p.problem_id for p in got] == ["abc365_b", "abc365_a"] and [p.line for p in got] == [1, 2]
    p = got[0]
    assert p.completions[1] == "<think>\nhmm\n</think>\n```python\nprint('abc365_b', 1)\n```"
    assert p.external[0] == {"tool": "livecodebench", "passed": True}
    assert p.external[1] == {"tool": "livecodebench", "passed": False, "error_code": -2,
                             "error_message": "Wrong Answer"}  # test inputs/outputs are not copied
    assert p.meta == {"platform": "atcoder", "difficulty": "easy", "contest_id": "abc365",
                      "contest_date": "2024-08-03T00:00:00", "question_title": "T abc365_b"}
    assert p.gold is None and p.finish_reasons is None


def test_lcb_reader_without_raw_outputs_or_grades(tmp_path):
    rec = _lcb_record("1234", [True, False], outputs=False)
    del rec["graded_list"], rec["metadata"]
    f = tmp_path / "gen.json"
    f.write_text(json.dumps([rec]))
    (p,) = lcb.read(f, _LcbTask())
    assert p.completions == ["```python\nprint('1234', 0)\n```", "```python\nprint('1234', 1)\n```"]
    assert p.external is None


@pytest.mark.parametrize("content,message", [
    ([{"pass@1": 0.3, "detail": {}}, {}, []], "summary file (*_eval.json)"),
    ({"question_id": "x"}, "expected a JSON array"),
    ([{"code_list": ["x"], "graded_list": [True]}], "record 1: missing field 'question_id'"),
    ([{"question_id": "q", "code_list": ["x"], "graded_list": [True, False]}], "record 1 (q): 'graded_list' has 2"),
    ([{"question_id": "q", "code_list": ["x"], "graded_list": [1]}], "must be a list of true/false"),
    ([{"question_id": "q", "output_list": ["a", "b"], "code_list": ["x"]}], "'output_list' has 2 entries"),
    ([{"question_id": "q"}], "nothing to import"),
])
def test_lcb_reader_errors_name_the_record(tmp_path, content, message):
    f = tmp_path / "x_eval_all.json"
    f.write_text(json.dumps(content))
    with pytest.raises(UserError, match=re.escape(message)):
        list(lcb.read(f, _LcbTask()))


def test_lcb_reader_refuses_other_tasks(tmp_path):
    f = tmp_path / "x_eval_all.json"
    f.write_text(json.dumps([_lcb_record("abc1_a", [True])]))
    with pytest.raises(UserError, match="use --task livecodebench"):
        list(lcb.read(f, SynthTask("math500")))
    f.write_text("[{")
    with pytest.raises(UserError, match="not valid JSON"):
        list(lcb.read(f, _LcbTask()))


@pytest.mark.skipif("livecodebench" not in registry(), reason="the livecodebench task module has not landed yet")
def test_cli_import_lcb_then_report(tmp_path, r1, data_dir):
    rows = [json.loads(x) for x in (data_dir / "livecodebench" / "lcb_2408_2501.jsonl")
            .read_text().splitlines()[:3]]
    f = tmp_path / "Scenario.codegeneration_2_0.6_eval_all.json"
    f.write_text(json.dumps([_lcb_record(r["question_id"], [True, False]) for r in rows]))
    r1("import", "--format", "lcb", "--task", "livecodebench", "--model", "deepseek-r1:7b", str(f),
       "--out", str(tmp_path / "run"))
    recs = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(recs) == 6 and all(r["external"]["tool"] == "livecodebench" for r in recs)
    assert all(r["verdict"] in ("correct", "incorrect", "no_answer", "error", "timeout") for r in recs)
    r1("report", str(tmp_path / "run"), "--out", str(tmp_path / "rep"))
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "livecodebench: external grades beside ours" in md and "37.6" in md  # Table 5, R1-Distill-Qwen-7B


def test_cli_report_on_imported_run(tmp_path, r1):
    """`r1 import` (generic jsonl, on the data-free arith task) then `r1 report`: imported runs report like any."""
    from tasks.arith import make_problem

    lines = []
    for i in range(6):
        gold = make_problem(i).gold
        lines.append({"problem_id": f"arith-{i}", "completions": [f"<think>x</think> \\boxed{{{gold}}}",
                                                                    "<think>never closed"]})
    f = tmp_path / "gen.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r1("import", "--format", "jsonl", "--task", "arith", "--model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
       str(f), "--out", str(tmp_path / "run"))
    out = r1("report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")).stdout
    assert f"report: {tmp_path / 'rep' / 'report.html'}" in out
    md = (tmp_path / "rep" / "report.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| arith |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["6", "2 / 2", "50.0"] and cells[10] == "50.0"  # the unclosed think blocks are truncated
    assert "generation settings unknown (imported run)" in md


# --- comparability with the paper (issue 13) ------------------------------------------------------------------------
def _run_from_records(root: Path, task: SynthTask, recs: list[dict], manifest_extra: dict, n: int) -> Path:
    """A run dir whose results.json comes from the runner's aggregate_task over exactly these records."""
    root.mkdir(parents=True)
    problems = [Problem(id=pid, gold="g") for pid in dict.fromkeys(r["problem_id"] for r in recs)]
    manifest = {"model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "backend": "llamacpp", "source": "eval",
                "generation": {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768, "think_prefix": True,
                               "system_prompt": None},
                "tasks": {task.name: {"n": n}}, **manifest_extra}
    res = aggregate_task(task, problems, recs, n)
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "results.json").write_text(json.dumps({"tasks": {task.name: res}, "manifest": manifest}))
    return root


def _rec(task: str, pid: str, j: int, completion: str, verdict: str, finish: str = "stop", **extra) -> dict:
    return {"task": task, "problem_id": pid, "sample_idx": j, "prompt_hash": "h", "completion": completion,
            "finish_reason": finish, "completion_tokens": 100, "verdict": verdict, "answer_key": None, **extra}


def test_public_tests_only_is_never_beside_the_paper(tmp_path):
    extras = {"hidden_tests_absent": True, "tests_source": "public examples parsed from the statements",
              "interactive_skipped": 2, "interactive_skipped_ids": ["1983F", "1990G"], "rating": 1189.0,
              "rating_method": "problem_difficulty_elo", "rating_problems": 4, "rating_clamped": False}
    recs = [_rec("codeforces", f"19{i}A", j, "<think>x</think> code", "correct" if (i + j) % 3 else "incorrect")
            for i in range(4) for j in range(8)]
    cf = _run_from_records(tmp_path / "cf", SynthTask("codeforces", extras=extras), recs, {}, 8)
    recs = [_rec("livecodebench", f"abc{i}_b", j, "<think>x</think> code", "correct" if j else "incorrect")
            for i in range(5) for j in range(16)]
    lcb = _run_from_records(tmp_path / "lcb", SynthTask("livecodebench", extras={
        "hidden_tests_absent": True, "tests_source": "public examples parsed from the statements"}), recs, {}, 16)
    md = write_report([lcb, cf], tmp_path / "rep")["markdown"].read_text()
    head = md.split("## Runs")[0]
    assert "**Not comparable to the paper: livecodebench, run 1 (lcb)** is scored on public/sample tests only" in head
    assert "**Not comparable to the paper: codeforces, run 2 (cf)**" in head and "pass@1 and rating overstate" in head
    row = next(ln for ln in md.splitlines() if ln.startswith("| livecodebench | 1:"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[6] == "37.6" and cells[7] == "not comparable (public tests only)"  # Table 5, R1-Distill-Qwen-7B
    assert "> ⚠ Run 1: scored on public/sample tests only" in md.split("## Task livecodebench")[1]
    t4 = next(ln for ln in md.splitlines() if ln.startswith("| Code | LiveCodeBench"))  # the Table 4 view too
    assert "(not comparable: public tests only)" in t4.split("|")[5]
    rating = next(ln for ln in md.splitlines() if ln.startswith("| codeforces | 2:") and "| rating |" in ln)
    assert "1189.0 | 1189.0 (not comparable: public tests only) |" in rating  # paper's 1189 for the 7B distill
    assert "problem-difficulty Elo estimator (4 rated problems)" in rating
    assert "codeforces, run 2: 2 interactive problems skipped (not generated, not scored; fixed stdin/stdout tests " \
           "cannot judge an interactive protocol): 1983F, 1990G." in md


def test_prompt_health_and_think_prefix_are_reported(tmp_path):
    # 3 of 4 samples stop with <think> unclosed (a chat model given the prefix); 2 carry max_tokens_granted.
    recs = [_rec("math500", "p1", 0, "<think>\nthe answer is 4", "truncated"),
            _rec("math500", "p1", 1, "<think>\nit is 4", "truncated", max_tokens_granted=900),
            _rec("math500", "p2", 0, "<think>\nok", "truncated", finish="length", max_tokens_granted=700),
            _rec("math500", "p2", 1, "<think>\nno idea", "truncated")]
    tp = {"think_prefix": {"mode": "auto", "enabled": True, "reason": "chat template marks a reasoning model"},
          "model_info": {"options": {"n_ctx": 4096}}}
    run = _run_from_records(tmp_path / "r", SynthTask("math500"), recs, tp, 2)
    res = json.loads((run / "results.json").read_text())["tasks"]["math500"]
    assert res["unclosed_think_stop_rate"] == 0.75 and res["context_capped_samples"] == 2  # the runner's counts
    md = write_report([run], tmp_path / "rep")["markdown"].read_text()
    assert "Run 1: think prefix on (--think-prefix auto): chat template marks a reasoning model." in md
    assert "75% of samples stopped on their own with their <think> block never closed" in md
    assert "Re-run with `--think-prefix off`." in md
    assert "math500, run 1: 2 samples had their generation budget cut below --max-tokens by a full context" in md
    assert "context length 4096 tokens (paper: prompt + 32768 generated)" in md
    assert "math500, run 1 differs from the paper's protocol for this task: k 2 samples per problem (protocol 4)" in md
    assert "| unclosed_think_stop_rate |" not in md and "| context_capped_samples |" not in md


def test_protocol_diffs_name_each_field():
    from reports import comparability as cmp

    gen = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 2048, "think_prefix": False, "system_prompt": "Be brief."}
    m = {"generation": gen, "think_prefix": {"mode": "auto", "enabled": False, "reason": "plain chat template"},
         "model_info": {"options": {"n_ctx": "auto"}}}
    got = cmp.protocol_diffs(m, "aime2024", 16)
    assert got == ["temperature 0.0 (paper 0.6)", "top_p 1.0 (paper 0.95)", "max_tokens 2048 (paper 32768)",
                   "think prefix off (paper on; plain chat template)", "system prompt set (paper none)",
                   "k 16 samples per problem (protocol 64)"]
    assert [cmp.diff_name(d) for d in got] == ["temperature", "top_p", "max_tokens", "think prefix", "system prompt",
                                               "k"]
    assert cmp.protocol_diffs({"generation": dict(gen, temperature=0.6, top_p=0.95, max_tokens=32768,
                                                   think_prefix=True, system_prompt=None)}, "aime2024", 64) == []
    assert cmp.think_prefix_text({"generation": {"think_prefix": False}}) == "think prefix off"  # old manifests
    assert cmp.think_prefix({"source": "import"}) is None
    assert cmp.rating_estimator({"rating_method": "codeelo_standings", "rating_contests": 3}) == \
        "CodeElo standings estimator (3 contests)"
    assert cmp.task_warnings({"rating_method": None, "rating": None}) == [
        "no Codeforces rating: neither a CodeElo standings file nor problem difficulty ratings were available to "
        "estimate one."]
