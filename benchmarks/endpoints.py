"""One job, one server vs two: `r1 eval --backend openai --base-url U1` against `--base-url U1,U2`, two real
llama_cpp.server processes on 127.0.0.1 serving the embedded model with one thread each (the box has 2 cores).

    python benchmarks/endpoints.py [--limit 8] [-n 2] [--max-tokens 64] [--rounds 1]

Both runs are the same `r1 eval` (in this process, so start-up is not timed), with fresh run dirs; rounds alternate
one/two so a burst of other load hits both alike, and the best round of each counts. Prints one JSON line:
ratio = wall time with one server / wall time with two (throughput two / one; goal >= 1.5).

Two servers can only beat one when the box has a second core to give. ``cpu_parallel_speedup`` is measured in the
same run as that ceiling: two processes of pure Python arithmetic, serial vs side by side. On a box shared with
other work it can be ~1.0, and then no number of endpoints on this box helps (``ratio_of_ceiling`` = ratio / it).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from _backend_fixtures import free_port, start_llama_server, stop_server  # noqa: E402  (the tests' server launcher)
from harness.cli import main as r1  # noqa: E402
from harness.models import embedded_gguf  # noqa: E402


def _burn(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def cpu_parallel_speedup(n: int = 4_000_000) -> float:
    """How much faster two CPU-bound processes finish side by side than one after the other, right now."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_burn, [1000, 1000])  # workers up before timing
        t = time.perf_counter()
        pool.apply(_burn, (n,))
        pool.apply(_burn, (n,))
        serial = time.perf_counter() - t
        t = time.perf_counter()
        pool.map(_burn, [n, n], chunksize=1)
        parallel = time.perf_counter() - t
    return serial / parallel


def run_eval(urls: list[str], out: Path, args) -> float:
    argv = ["eval", "--backend", "openai", "--model", "smollm", "--base-url", ",".join(urls),
            "--chat-template", str(embedded_gguf()), "--task", "arith", "--limit", str(args.limit), "-n", str(args.n),
            "--max-tokens", str(args.max_tokens), "--no-progress", "--out", str(out), "--overwrite"]
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = r1(argv)
    dt = time.perf_counter() - t
    if rc != 0:
        raise SystemExit(f"r1 eval exited {rc}")
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="r1-endpoints-"))
    procs, urls = [], []
    try:
        for k in range(2):
            port = free_port()
            # one thread for generation and for prompts: two servers on two cores, no OpenMP oversubscription
            procs.append(start_llama_server(embedded_gguf(), port, tmp / f"server{k}.log",
                                            extra=["--n_threads_batch", "1"]))
            urls.append(f"http://127.0.0.1:{port}/v1")
        run_eval(urls, tmp / "warm", argparse.Namespace(limit=1, n=2, max_tokens=4))  # both servers answered once
        best = {"one": float("inf"), "two": float("inf")}
        ceiling = [cpu_parallel_speedup()]
        samples = {}
        for _ in range(args.rounds):
            for name, use in (("one", urls[:1]), ("two", urls)):
                out = tmp / name
                best[name] = min(best[name], run_eval(use, out, args))
                recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines() if x.strip()]
                samples[name] = (len(recs), sum(r["completion_tokens"] for r in recs))
                stats = json.loads((out / "manifest.json").read_text()).get("backend_stats", {})
                samples[name + "_endpoints"] = {u.rsplit(":", 1)[-1]: v["requests"]
                                                for u, v in (stats.get("endpoints") or {}).items()}
            ceiling.append(cpu_parallel_speedup())
    finally:
        for p in procs:
            stop_server(p)
    ratio = best["one"] / best["two"]
    cpu = sum(ceiling) / len(ceiling)
    line = {
        "benchmark": "endpoints",
        "ratio": round(ratio, 3),
        "goal": ">= 1.5",
        "cpu_parallel_speedup": round(cpu, 3),
        "ratio_of_ceiling": round(ratio / cpu, 3),
        "one_server_s": round(best["one"], 2),
        "two_servers_s": round(best["two"], 2),
        "samples": samples["one"][0],
        "completion_tokens": {"one": samples["one"][1], "two": samples["two"][1]},
        "requests_per_endpoint": {"one": samples["one_endpoints"], "two": samples["two_endpoints"]},
        "server_threads": 1,
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other load on the box skews every number here
        "rounds": args.rounds,
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
