"""Crash torture: `r1 eval` (its whole process group) killed with SIGKILL at 20 seeded moments over generation,
scoring and the final fold, resumed each time; `r1 score` killed mid-way; a torn last line in scores.jsonl; a full
disk (RLIMIT_FSIZE in the child, SIGXFSZ ignored). In the end no sample is lost or duplicated, completions are
byte-identical to an uninterrupted run's and results.json is equal. Real embedded model, tiny job."""
from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_r1, sample_records
from harness.store import read_jsonl_tolerant

pytestmark = pytest.mark.slow

LIMIT, N = 6, 3
TOTAL = LIMIT * N
ARGS = ["eval", "--task", "arith", "--limit", str(LIMIT), "-n", str(N), "--max-tokens", "24", "--no-progress",
        "--batch-size", "1", "--workers", "1", "--threads", "1", "--gen-batch-size", "4"]
KILLS = 20
SEED = 14
# results.json fields that hold the evaluation (not timings or timestamps)
RESULT_FIELDS = ("pass@1", "pass@1_ci", "pass@k", "cons@3", "verdicts", "n_samples", "n_problems",
                 "missing_problems", "incomplete_problems", "truncation_rate", "no_answer_rate",
                 "mean_completion_tokens")


def _lines(path: Path) -> list[bytes]:
    return [ln for ln in path.read_bytes().split(b"\n") if ln.strip()] if path.exists() else []


_records = sample_records


def _assert_same_run(run: Path, ref: Path) -> None:
    a, b = _records(run), _records(ref)
    assert len(a) == len(b) == TOTAL and a.keys() == b.keys()
    for k in a:
        assert a[k]["completion"].encode() == b[k]["completion"].encode(), f"sample {k} differs"
        for f in ("verdict", "answer", "answer_key", "finish_reason", "completion_tokens", "seed", "prompt_hash"):
            assert a[k][f] == b[k][f], (k, f)
    assert not (run / "scores.jsonl").exists()
    ra = json.loads((run / "results.json").read_text())["tasks"]["arith"]
    rb = json.loads((ref / "results.json").read_text())["tasks"]["arith"]
    assert {f: ra.get(f) for f in RESULT_FIELDS} == {f: rb.get(f) for f in RESULT_FIELDS}


def _check_readable(run: Path) -> None:
    """What a kill leaves is readable as it is: every line but a torn last one parses, and no key is there twice."""
    for name in ("samples.jsonl", "scores.jsonl"):
        recs = read_jsonl_tolerant(run / name)
        keys = [(r["task"], r["problem_id"], r["sample_idx"]) for r in recs]
        if name == "samples.jsonl":
            assert len(keys) == len(set(keys)), "duplicate sample after a kill"


def _start(args: list[str], preexec=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=preexec)


def _tmp_sig(run: Path):
    """Identity of samples.jsonl.tmp: a fold killed earlier leaves one behind, which is not a fold in progress."""
    try:
        st = (run / "samples.jsonl.tmp").stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _folding(run: Path, stale) -> bool:
    sig = _tmp_sig(run)
    return sig is not None and sig != stale


def _phase(run: Path, stale) -> str:
    """Where a kill landed, read off the run dir right after it."""
    if _folding(run, stale):
        return "fold"
    if (run / "results.json").exists():
        return "after_results"
    if len(_lines(run / "samples.jsonl")) < TOTAL:
        return "generation"
    return "scoring"


def _kill_when(proc: subprocess.Popen, run: Path, target: str, rng: random.Random) -> str | None:
    """SIGKILL the process group once ``target`` is reached; None if the process ended first."""
    samples = run / "samples.jsonl"
    start_lines = len(_lines(samples))
    stale = _tmp_sig(run)
    want = None
    if target == "generation":
        want = start_lines + rng.randint(1, max(1, TOTAL - start_lines - 1))
    delay = rng.uniform(0.0, 0.05)
    t_ready = None
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if target == "generation":
            hit = len(_lines(samples)) >= want
        elif target == "fold":
            hit = _folding(run, stale)
        else:  # scoring: every sample generated, results not written yet
            hit = len(_lines(samples)) >= TOTAL and not _folding(run, stale)
            if hit and t_ready is None:
                t_ready = time.monotonic()
            hit = hit and time.monotonic() - t_ready >= delay
        if hit:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return _phase(run, stale)
        time.sleep(0.0005 if target != "generation" else 0.01)
    proc.wait()
    return None


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("torture") / "ref"
    run_r1(*ARGS, "--out", str(ref))
    assert len(_records(ref)) == TOTAL
    return ref


def test_twenty_sigkills_then_identical_run(reference, tmp_path):
    """Five rounds, each in a fresh run dir: killed twice during generation, once while scoring (every sample
    generated, results not folded yet) and once during the fold, then resumed to the end and compared."""
    rng = random.Random(SEED)
    landed: dict[str, int] = {}
    trail: list[tuple] = []  # (target, samples before, where it landed, samples after)
    kills, invocations, t0 = 0, 0, time.monotonic()
    for rnd in range(KILLS // 4):
        run = tmp_path / f"run{rnd}"
        for target in ("generation", "generation", "scoring", "fold"):
            if target == "generation" and len(_lines(run / "samples.jsonl")) >= TOTAL - 1:
                target = rng.choice(["scoring", "fold"])
            for _ in range(5):  # a fold too quick to catch: the run finished; try the next moment in a new dir
                before = len(_lines(run / "samples.jsonl"))
                proc = _start([*ARGS, "--out", str(run)])
                invocations += 1
                phase = _kill_when(proc, run, target, rng)
                if phase is not None:
                    break
                assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
                _assert_same_run(run, reference)
                run = run.with_name(run.name + "x")
            assert phase is not None, f"could not catch the {target} phase in 5 runs"
            kills += 1
            landed[phase] = landed.get(phase, 0) + 1
            trail.append((target, before, phase, len(_lines(run / "samples.jsonl"))))
            _check_readable(run)
        run_r1(*ARGS, "--out", str(run))
        invocations += 1
        _assert_same_run(run, reference)
    elapsed = time.monotonic() - t0
    print("torture:", json.dumps({"kills": kills, "landed": landed, "invocations": invocations,
                                  "samples_checked": TOTAL * (KILLS // 4), "seconds": round(elapsed, 1)}))
    assert kills == KILLS
    assert landed.get("generation", 0) >= 5 and landed.get("fold", 0) >= 3, trail


def test_score_killed_mid_way_then_rerun(reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = (run / "samples.jsonl").read_bytes()
    rng = random.Random(SEED)
    for _ in range(10):  # the fold of 18 samples is short: try until the kill lands inside it
        proc = _start(["score", str(run)])
        phase = _kill_when(proc, run, "fold", rng)
        if phase == "fold":
            break
        assert (run / "samples.jsonl").read_bytes() == before  # a re-score of the same samples: same file
    assert phase == "fold", phase  # killed while the new samples.jsonl was being written
    assert (run / "samples.jsonl").read_bytes() == before  # the old file is whole until the rename
    run_r1("score", str(run))
    _assert_same_run(run, reference)


def test_torn_last_line_in_scores_jsonl(reference, tmp_path):
    run = tmp_path / "run"
    proc = _start([*ARGS, "--out", str(run)])
    assert _kill_when(proc, run, "generation", random.Random(SEED + 1)) == "generation"
    scores = run / "scores.jsonl"
    with open(scores, "ab") as f:  # a verdict cut mid-write
        f.write(b'{"task": "arith", "problem_id": "0", "sample_idx": 0, "verdict": "corr')
    run_r1(*ARGS, "--out", str(run))
    _assert_same_run(run, reference)


def _limit_file_size(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _between_unfolded_and_folded(lines: list[bytes]) -> int:
    """A size limit that samples.jsonl as generated fits under but the fold's copy (with verdicts) does not. Halfway
    between the two: latencies and token counts differ by a few bytes from run to run, the verdict fields by far more."""
    from harness.verifiers.base import Verdict

    verdict_keys = set(Verdict("correct").to_dict())
    folded = sum(len(ln) + 1 for ln in lines)
    unfolded = sum(len(json.dumps({k: v for k, v in json.loads(ln).items() if k not in verdict_keys},
                                  ensure_ascii=False)) + 1 for ln in lines)
    assert folded - unfolded > 40 * len(lines), (folded, unfolded)
    return (folded + unfolded) // 2


@pytest.mark.parametrize("where", ["manifest", "generation", "fold"])
def test_full_disk_is_one_clear_line_and_resumable(reference, tmp_path, where):
    """The file-size limit lets the run write up to a point: not even the manifest, a few samples, or every sample
    but not the fold's new copy of samples.jsonl (which carries the verdicts)."""
    run = tmp_path / "run"
    manifest = (reference / "manifest.json").stat().st_size
    lines = _lines(reference / "samples.jsonl")
    limit = {"manifest": manifest // 2, "generation": manifest + 4 * max(map(len, lines)),
             "fold": _between_unfolded_and_folded(lines)}[where]
    proc = _start([*ARGS, "--out", str(run)], preexec=_limit_file_size(limit))
    _, err = proc.communicate(timeout=600)
    err_lines = [ln for ln in err.decode().splitlines() if ln.strip()]
    assert proc.returncode == 2, err.decode()[-3000:]
    assert len(err_lines) == 1 and err_lines[0].startswith("r1: error: "), err_lines
    assert "re-run the same command" in err_lines[0], err_lines[0]
    named = "manifest.json" if where == "manifest" else "samples.jsonl"
    assert f"{named}: cannot write (File too large)" in err_lines[0], err_lines[0]
    assert not (run / "results.json").exists()
    assert not list(run.glob("*.tmp")), "a half-written temp file was left behind"
    _check_readable(run)
    ref = _records(reference)
    n_kept = 0
    for line in _lines(run / "samples.jsonl"):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # the torn last line; the resume cuts it
        n_kept += 1
        assert r["completion"] == ref[(r["task"], r["problem_id"], r["sample_idx"])]["completion"]
    assert n_kept == {"manifest": 0, "generation": n_kept or 1, "fold": TOTAL}[where], n_kept
    if where == "generation":
        assert 0 < n_kept < TOTAL
    run_r1(*ARGS, "--out", str(run))
    _assert_same_run(run, reference)
