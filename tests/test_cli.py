"""The CLI as a user meets it: fast help, one clear line on bad input, nothing already written lost."""
import json
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_r1


def _err(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode != 0
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert lines[0].startswith("r1: error: ")
    return lines[0]


def test_help_is_fast_and_imports_no_torch():
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "harness.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0 and "eval" in p.stdout
    assert time.perf_counter() - t0 < 1.0
    code = "import sys, harness.cli, harness.runner, harness.store, harness.metrics, harness.task; " \
           "harness.task.registry(); print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "False False"


# Unknown task/backend/model, missing data, bad flag values: the table in tests/test_bad_input.py.


def test_import_scores_and_malformed_import_is_one_line(tmp_path):
    good = tmp_path / "gen.jsonl"
    good.write_text("\n".join(json.dumps(x) for x in [
        {"problem_id": "arith-0", "completions": ["<think>\nhm\n</think>\n\\boxed{%s}" % "X", "no answer here"]},
        {"problem_id": "custom-1", "gold": "42", "completion": "<think>\n6*7\n</think>\nThe answer is \\boxed{42}"},
    ]) + "\n")
    from tasks.arith import make_problem

    gold0 = make_problem(0).gold
    good.write_text(good.read_text().replace("{X}", "{%s}" % gold0))
    out = tmp_path / "imp"
    run_r1("import", "--format", "jsonl", "--task", "arith", "--model", "someone/model-7B", str(good), "--out", str(out))
    res = json.loads((out / "results.json").read_text())["tasks"]["arith"]
    assert res["n_problems"] == 2 and res["n_samples"] == 3
    assert res["verdicts"]["correct"] == 2 and res["verdicts"]["no_answer"] == 1
    assert res["pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    # rescoring gives the same results
    run_r1("score", str(out))
    assert json.loads((out / "results.json").read_text())["tasks"]["arith"]["pass@1"] == res["pass@1"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": "arith-1", "completions": ["a"]}\n{"problem_id": "arith-2", "completions": [\n')
    line = _err(run_r1("import", "--format", "jsonl", "--task", "arith", str(bad), "--out", str(tmp_path / "b"), check=False))
    assert "bad.jsonl:2" in line
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"problem_id": "zzz", "completions": ["a"]}\n')
    line = _err(run_r1("import", "--format", "jsonl", "--task", "arith", str(unknown), "--out", str(tmp_path / "c"), check=False))
    assert "unknown.jsonl:1" in line and "zzz" in line
    # an existing run dir is never clobbered by a failed import
    line = _err(run_r1("import", "--format", "jsonl", "--task", "arith", str(bad), "--out", str(out), check=False))
    assert (out / "results.json").exists() and len((out / "samples.jsonl").read_text().splitlines()) == 3



def test_a_library_warning_is_printed_once():
    """A library logger with its own handler (huggingface_hub has one) is not printed again by r1's root handler."""
    code = ("import logging, sys\n"
            "from harness import cli\n"
            "logging.getLogger('somelib').addHandler(logging.StreamHandler())\n"
            "cli.main(['tasks'])\n"
            "logging.getLogger('somelib.sub').warning('from the library')\n"
            "logging.getLogger('harness.somewhere').warning('from r1')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("from the library") == 1 and "r1: WARNING: from the library" not in proc.stderr
    assert "r1: WARNING: from r1" in proc.stderr
