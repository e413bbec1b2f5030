"""A million samples through `r1 import`, `r1 score` and `r1 report`: time and peak memory of each command.

The run is synthetic and written here: 500 MATH-500 problems x 2,000 short completions (a generic-jsonl import file,
one line per problem). Each answer is the gold, one of a few wrong numbers, or missing, with a per-problem accuracy,
so verdicts, votes and curves are not degenerate. Each command runs in its own process as a user runs it; its peak
memory is the largest sum of resident memory over the command's process tree (the verifier's worker processes
included), polled every 20 ms. The metrics (pass@k for every k, cons@64, bootstrap CIs) are timed in process on the
compact per-problem tally that `r1 score` aggregates from.

Goal: every command under 1 GiB; ratio = the largest peak / 1 GiB (lower is better, goal <= 1.0).
`--reference DIR` also runs the commands of another checkout (e.g. `git worktree add /tmp/old <rev>`) on the same
files, for a before/after in the same run. Prints one JSON line at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL_BYTES = 1 << 30
if "R1_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["R1_DATA_DIR"] = str(REPO.parent / "shared" / "data")  # the gold answers of MATH-500
os.environ.setdefault("HF_HUB_OFFLINE", "1")
WRONG = ("0", "1", "2", "12", "-3")


def build_import(path: Path, problems: int, samples: int, seed: int = 0) -> tuple[int, int]:
    from harness.task import get_task

    task = get_task("math500")
    probs = task.problems(None, problems)
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for p in probs:
            acc = rng.random()
            comps = []
            for _ in range(samples):
                u = rng.random()
                if u < acc:
                    ans = task.gold_answer(p.gold)
                elif u < acc + (1 - acc) * 0.85:
                    ans = rng.choice(WRONG)
                else:
                    comps.append("<think>\nI am not sure.\n</think>\nI cannot finish this one.")
                    continue
                comps.append(f"<think>\nshort reasoning\n</think>\nThe answer is $\\boxed{{{ans}}}$.")
            f.write(json.dumps({"problem_id": p.id, "completions": comps}) + "\n")
    return len(probs), len(probs) * samples


def run_measured(args: list[str], cwd: Path) -> dict:
    """Run a command; wall time, CPU time (user + system, the command and every process it waited for) and peak RSS
    summed over its process tree. CPU time is the steadier number on a shared machine."""
    import resource

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            done.wait(0.02)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    out, err = proc.communicate()
    done.set()
    t.join()
    secs = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": round(secs, 2), "cpu_s": round(cpu, 2), "peak_mib": round(peak[0] / 2**20, 1)}


def time_metrics(run: Path) -> dict:
    """Metrics over the compact tally: pass@k for all k, cons@64, the bootstrap CI (the results.json path)."""
    from harness.runner import aggregate_task, planned_problems
    from harness.store import RunStore
    from harness.tally import TaskTally, cons_at_k_ids
    from harness.task import get_task

    store = RunStore(run)
    manifest = store.read_manifest()
    task = get_task("math500")
    tman = {**manifest["tasks"]["math500"], "source": manifest.get("source")}
    problems = planned_problems(task, tman, store, None)
    t0, c0 = time.perf_counter(), time.process_time()
    tally = TaskTally(problems).add_all(store.iter_samples())
    tally_s, tally_cpu = time.perf_counter() - t0, time.process_time() - c0

    class NoRecords:  # the metrics alone: task extras (which re-read the file) are timed with the commands
        def __iter__(self):
            return iter(())

    t0, c0 = time.perf_counter(), time.process_time()
    res = aggregate_task(task, problems, NoRecords(), int(tman["n"]), tally=tally)
    # MATH-500 votes over all its samples; the paper's cons@64 is computed beside it
    cons64 = [cons_at_k_ids(*tally.outcomes(i), 64) for i in range(len(problems)) if tally.n_of(i) >= 64]
    metrics_s, metrics_cpu = time.perf_counter() - t0, time.process_time() - c0
    stored = json.loads(store.results_path.read_text())["tasks"]["math500"]
    cons_key = f"cons@{res['cons_k']}"
    same = all(res[k] == stored[k] for k in ("pass@1", "pass@1_ci", "pass@k", cons_key))
    return {"metrics_s": round(metrics_s, 3), "metrics_cpu_s": round(metrics_cpu, 3), "tally_s": round(tally_s, 2),
            "tally_cpu_s": round(tally_cpu, 2), "pass@k_values": len(res["pass@k"]),
            "cons@64": sum(cons64) / len(cons64) if cons64 else None, cons_key: res[cons_key],
            "pass@1": res["pass@1"], "equal_to_results_json": same}


def commands(checkout: Path, src: Path, run: Path, report: Path) -> dict:
    py = [sys.executable, "-m", "harness.cli"]
    out = {}
    out["import"] = run_measured(py + ["import", "--format", "jsonl", "--task", "math500", "--model", "synthetic",
                                       str(src), "--out", str(run)], checkout)
    out["score"] = run_measured(py + ["score", str(run)], checkout)
    out["report"] = run_measured(py + ["report", str(run), "--out", str(report)], checkout)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--samples", type=int, default=2000, help="completions per problem")
    ap.add_argument("--reference", type=Path, default=None, help="another checkout to run the same commands with")
    ap.add_argument("--keep", type=Path, default=None, help="build in this dir and keep it")
    a = ap.parse_args()
    tmp = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="r1-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        src = tmp / "generations.jsonl"
        t0 = time.perf_counter()
        n_problems, n_samples = build_import(src, a.problems, a.samples)
        build_s = time.perf_counter() - t0
        ours = commands(REPO, src, tmp / "run", tmp / "report")
        size_mb = (tmp / "run" / "samples.jsonl").stat().st_size / 1e6
        met = time_metrics(tmp / "run")
        ref = commands(a.reference, src, tmp / "ref_run", tmp / "ref_report") if a.reference else None
        peak = max(v["peak_mib"] for v in ours.values())
        line = {"benchmark": "scale", "ratio": round(peak * 2**20 / GOAL_BYTES, 4), "goal": "<= 1.0",
                "problems": n_problems, "samples": n_samples, "samples_mb": round(size_mb, 1), **{
                    f"{cmd}_{k}": v for cmd, d in ours.items() for k, v in d.items()},
                **met, "metrics_goal_s": 5.0, "build_s": round(build_s, 1),
                "load_average_1m": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}
        if ref:
            line["reference"] = str(a.reference)
            line.update({f"ref_{cmd}_{k}": v for cmd, d in ref.items() for k, v in d.items()})
            line["peak_vs_reference"] = round(peak / max(v["peak_mib"] for v in ref.values()), 4)
        print(json.dumps(line))
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
