"""`r1 eval --backend openai` against a real llama_cpp.server behind a fault-injecting proxy (tests/_fault_proxy.py):
500/503s, 429 with Retry-After, resets, stalls past the timeout, bodies cut mid-way and unfinished 200s. Every
request finishes, no partial completion is recorded, Retry-After is honoured, the manifest and summary count the
retries by kind; a server that stays down ends the run with one clear line and the same command resumes it. Two
servers, one killed mid-run: the other finishes everything (failover, not round-robin into a dead server)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _backend_fixtures import free_port, start_llama_server, stop_server
from _fault_proxy import FaultProxy
from conftest import REPO, run_r1
from harness.models import embedded_gguf

pytestmark = pytest.mark.slow

# Faults a proxy turns into: the retry kind the backend must count for it.
KIND = {"500": "http_500", "503": "http_503", "429": "http_429", "reset": "disconnect", "cut": "disconnect",
        "stall": "timeout", "unfinished": "incomplete"}


def _eval_args(url: str, out: Path, *extra: str) -> list[str]:
    return ["eval", "--backend", "openai", "--model", "smollm", "--base-url", url,
            "--chat-template", str(embedded_gguf()), "--task", "arith", "--limit", "4", "-n", "2",
            "--max-tokens", "12", "--temperature", "0", "--no-progress", "--out", str(out), *extra]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("llama_cpp.server.app")
    port = free_port()
    proc = start_llama_server(embedded_gguf(), port, tmp_path_factory.mktemp("llama") / "server.log")
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def test_every_fault_is_retried_and_counted(server, tmp_path):
    script = ["500", "ok", "429", "reset", "ok", "cut", "stall", "unfinished", "503", "ok", "cut", "unfinished",
              "500"]
    retry_after, timeout = 1.5, 10.0
    # the timeout leaves room for a busy box (a slow answer that times out would count as a timeout, not its fault)
    with FaultProxy(server, script, retry_after=retry_after, stall_s=12.0) as proxy:
        out = tmp_path / "run"
        proc = run_r1(*_eval_args(proxy.url, out, "--timeout", str(timeout), "--concurrency", "2",
                                  "--max-retries", "12"))
        log = list(proxy.log)
    injected = {f: n for f, n in proxy.counts().items() if f != "ok"}
    assert sum(injected.values()) == len([f for f in script if f != "ok"]) == 10

    recs = _records(out)
    assert len(recs) == 8 and len({(r["problem_id"], r["sample_idx"]) for r in recs}) == 8
    # Each recorded completion is the whole text of a forwarded answer that was delivered intact, never the half
    # an unfinished or cut answer carried.
    full = {e["text"] for e in log if e["fault"] == "ok" and e.get("text") is not None}
    partial = {e["text"] for e in log if e["fault"] in ("unfinished", "cut") and e.get("text")}
    for r in recs:
        assert r["finish_reason"] in ("stop", "length")
        gen = r["completion"]
        assert any(gen.endswith(t) and t for t in full) or gen in full, r
        assert not any(gen.endswith(p) and p not in full for p in partial)

    # Retry-After: nothing sent after the client read the 429 reached the server before the wait it asked for ended.
    # With --concurrency 2 the other worker may already have a request on the wire when the 429 leaves the proxy
    # (seen in CI: one arrived 1 ms after it); that one cannot be recalled, so the first in_flight_s are exempt.
    # Anything later and sooner than the wait is a request the client chose to send to a benched URL.
    in_flight_s = 0.25
    t429 = next(e["t_out"] for e in log if e["fault"] == "429")
    early = [round(e["t_in"] - t429, 3) for e in log if t429 + in_flight_s < e["t_in"] < t429 + retry_after - 0.05]
    assert not early, early
    assert any(e["t_in"] >= t429 + retry_after - 0.05 for e in log), "nothing was sent after the Retry-After wait"

    stats = json.loads((out / "manifest.json").read_text())["backend_stats"]
    print("faults:", json.dumps({"injected": injected, "backend_stats": stats}))
    want: dict[str, int] = {}
    for e in log:
        # an answer slower than --timeout (a busy box) is the client's timeout, whatever the proxy meant to do
        kind = "timeout" if e["t_out"] - e["t_in"] >= timeout - 0.2 else KIND.get(e["fault"])
        if kind:
            want[kind] = want.get(kind, 0) + 1
    assert stats["retries_by_kind"] == want
    assert stats["retries"] == sum(want.values()) >= 10
    assert stats["requests"] == len(log) and stats["retry_after_waits"] == 1
    assert json.loads((out / "results.json").read_text())["manifest"]["backend_stats"] == stats
    summary = [line for line in proc.stdout.splitlines() if line.startswith("server:")]
    assert summary == [f"server: {len(log)} requests, {sum(want.values())} retries (" + ", ".join(
        f"{k} {v}" for k, v in sorted(want.items())) + "), 0 failovers, 1 Retry-After waits"]


def test_server_that_stays_down_stops_the_run_then_the_same_command_resumes(server, tmp_path):
    out = tmp_path / "run"
    with FaultProxy(server, ["ok"] * 3, default="503") as proxy:
        args = _eval_args(proxy.url, out, "--concurrency", "1", "--max-retries", "2")
        proc = run_r1(*args, check=False)
        port = proxy.port
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("r1: error: ")
    assert "failed after 3 attempts" in err[0] and "HTTP 503" in err[0]
    assert "3 sample(s) are saved" in err[0] and "re-run the same command to resume" in err[0]
    before = (out / "samples.jsonl").read_bytes()
    assert len(before.splitlines()) == 3
    assert not (out / "results.json").exists()
    stats = json.loads((out / "manifest.json").read_text())["backend_stats"]
    assert stats["retries_by_kind"] == {"http_503": 2}

    with FaultProxy(server, port=port) as proxy:  # the server is back, at the same address
        proc = run_r1(*args)
        assert proxy.counts() == {"ok": 5}  # only the five missing samples were asked for
    after = (out / "samples.jsonl").read_bytes()
    recs = _records(out)
    assert len(recs) == 8 and len({(r["problem_id"], r["sample_idx"]) for r in recs}) == 8
    first = [json.loads(line) for line in before.splitlines()]
    by_key = {(r["problem_id"], r["sample_idx"]): r for r in recs}
    for r in first:  # the samples saved before the outage are kept as they were
        assert by_key[(r["problem_id"], r["sample_idx"])]["completion"] == r["completion"]
    res = json.loads((out / "results.json").read_text())
    assert res["tasks"]["arith"]["n_samples"] == 8
    assert res["manifest"]["backend_stats"]["requests"] == 3 + 3 + 5  # summed over both invocations
    assert "server: 11 requests, 2 retries (http_503 2)" in proc.stdout
    assert after != before


def test_two_servers_one_killed_mid_run_the_other_finishes(tmp_path):
    pytest.importorskip("llama_cpp.server.app")
    ports = [free_port(), free_port()]
    procs = [start_llama_server(embedded_gguf(), p, tmp_path / f"server{k}.log") for k, p in enumerate(ports)]
    try:
        urls = [f"http://127.0.0.1:{p}/v1" for p in ports]
        out = tmp_path / "run"
        # one retry only: a round-robin that sends the retry back to the dead server loses samples; failover does not
        args = ["eval", "--backend", "openai", "--model", "smollm", "--base-url", ",".join(urls),
                "--chat-template", str(embedded_gguf()), "--task", "arith", "--limit", "8", "-n", "2",
                "--max-tokens", "24", "--temperature", "0", "--no-progress", "--out", str(out),
                "--concurrency", "2", "--max-retries", "1"]
        cli = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        samples = out / "samples.jsonl"
        deadline = time.monotonic() + 300
        while not (samples.exists() and len(samples.read_bytes().splitlines()) >= 3):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "no samples within 300 s"
            time.sleep(0.05)
        os.kill(procs[0].pid, signal.SIGKILL)  # server 0 dies with requests in flight
        procs[0].wait()
        n_at_kill = len(samples.read_bytes().splitlines())
        stdout, stderr = cli.communicate(timeout=600)
        assert cli.returncode == 0, stderr[-3000:]
        assert n_at_kill < 16
        recs = _records(out)
        assert len(recs) == 16 and len({(r["problem_id"], r["sample_idx"]) for r in recs}) == 16
        stats = json.loads((out / "manifest.json").read_text())["backend_stats"]
        print("failover:", json.dumps({"samples_at_kill": n_at_kill, **stats}))
        dead, alive = stats["endpoints"][urls[0]], stats["endpoints"][urls[1]]
        assert dead["failed"] >= 1 and stats["failovers"] >= 1
        # once benched, the dead server gets only occasional probes (bench doubling from 0.5 s), not every other
        # request: round-robin would have sent it about half of the remaining ones
        assert dead["failed"] <= 8, stats
        assert alive["requests"] - alive["failed"] >= 16 - n_at_kill
        assert "failovers" in stdout
    finally:
        for p in procs:
            if p.poll() is None:
                stop_server(p)
