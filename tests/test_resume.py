"""Crash safety: SIGKILL an eval mid-run, re-run the same command, and get exactly the uninterrupted result."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_r1, sample_records

ARGS = ["eval", "--task", "arith", "--limit", "6", "-n", "4", "--max-tokens", "48", "--no-progress",
        "--batch-size", "2"]


_records = sample_records


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *ARGS, "--out", str(killed)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    samples = killed / "samples.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if samples.exists() and len(samples.read_bytes().splitlines()) >= 6:
            break
        if proc.poll() is not None:
            pytest.fail(f"eval ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    else:
        pytest.fail("no samples written within 300 s")
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: CLI and its backend workers
    proc.wait()
    n_before = len([line for line in samples.read_bytes().splitlines() if line.strip()])
    assert 0 < n_before < 24, "the kill must land mid-run"
    assert not (killed / "results.json").exists()

    run_r1(*ARGS, "--out", str(killed))
    full = tmp_path / "full"
    run_r1(*ARGS, "--out", str(full))

    a, b = _records(killed), _records(full)
    assert len(a) == len(b) == 24
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["completion"] == b[k]["completion"], f"sample {k} differs after resume"
        assert a[k]["verdict"] == b[k]["verdict"]
    ra = json.loads((killed / "results.json").read_text())["tasks"]["arith"]
    rb = json.loads((full / "results.json").read_text())["tasks"]["arith"]
    for field in ("pass@1", "pass@1_ci", "pass@k", "cons@4", "verdicts", "n_samples"):
        assert ra[field] == rb[field], field
    assert json.loads((killed / "manifest.json").read_text())["resumed"] == 1


def test_rerun_of_finished_run_generates_nothing(tmp_path):
    out = tmp_path / "run"
    args = ["eval", "--task", "arith", "--limit", "2", "-n", "2", "--max-tokens", "16", "--no-progress", "--out", str(out)]
    run_r1(*args)
    before = (out / "samples.jsonl").read_text()
    run_r1(*args)
    assert (out / "samples.jsonl").read_text() == before
    # asking for more samples extends the run and keeps the first ones byte-identical
    run_r1("eval", "--task", "arith", "--limit", "2", "-n", "3", "--max-tokens", "16", "--no-progress", "--out", str(out))
    recs = _records(out)
    assert len(recs) == 6
    old = {(json.loads(line)["problem_id"], json.loads(line)["sample_idx"]): json.loads(line)["completion"]
           for line in before.splitlines()}
    for (t, pid, idx), r in recs.items():
        if (pid, idx) in old:
            assert r["completion"] == old[(pid, idx)]
