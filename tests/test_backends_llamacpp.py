"""The llamacpp backend on the real embedded model: determinism across workers, slots, history and fresh backends;
stop strings, max_tokens, EOS, token counts, assistant prefix, both cores busy."""
from __future__ import annotations

import hashlib
import os

import pytest

from _backend_fixtures import req
from harness.backends.base import make_backend
from harness.errors import UserError
from harness.models import embedded_gguf, usable_cpus

pytest.importorskip("llama_cpp")

STORY = "Write a short story about a robot."


@pytest.fixture(scope="module")
def backend():
    b = make_backend("llamacpp", "embedded", workers=2, threads=1, batch_size=4)
    yield b
    b.close()


@pytest.fixture(scope="module")
def vocab():
    import llama_cpp

    v = llama_cpp.Llama(str(embedded_gguf()), vocab_only=True, verbose=False)
    yield v
    v.close()


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_seed_determinism_across_workers_slots_and_neighbours(backend):
    target = req(STORY, seed=7, max_tokens=32)
    others = [req(f"Name {k} animals.", seed=100 + k, max_tokens=24 + k) for k in range(6)]
    # 8 copies of one request spread over 2 workers x 4 slots, beside each other
    copies = backend.generate([target] * 8)
    assert len({c.text for c in copies}) == 1
    # the same request at other positions, next to different requests, after other work ran
    mixed = backend.generate(others[:3] + [target] + others[3:] + [target])
    assert mixed[3].text == copies[0].text and mixed[-1].text == copies[0].text
    # another seed gives another sample
    assert backend.generate([req(STORY, seed=8, max_tokens=32)])[0].text != copies[0].text


def test_fresh_backend_other_layout_same_text(backend):
    r = req(STORY, seed=11, max_tokens=24)
    first = backend.generate([r, req("Say hi.", seed=1, max_tokens=16)])[0]
    # one process, one sequence at a time, 2 threads: nothing shared with the first backend's layout
    with make_backend("llamacpp", "embedded", workers=1, threads=2, batch_size=1) as fresh:
        again = fresh.generate([r])[0]
    assert again.text == first.text
    assert again.completion_tokens == first.completion_tokens == 24


def test_max_tokens_length_and_token_counts(backend, vocab):
    r = req(STORY, seed=3, max_tokens=16, assistant_prefix="<think>\n")
    c = backend.generate([r])[0]
    assert c.finish_reason == "length" and c.completion_tokens == 16
    prompt = backend.render(r)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    assert c.prompt_tokens == len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))
    assert not c.text.startswith("<think>")  # the continuation only
    assert c.latency > 0


def test_eos_is_stop(backend):
    c = backend.generate([req("Reply with only the word yes.", temperature=0, max_tokens=64)])[0]
    assert c.finish_reason == "stop" and c.completion_tokens < 64
    assert c.text.strip().lower().startswith("yes")


def test_stop_strings(backend):
    base = req("List three fruits.", temperature=0, max_tokens=48)
    full = backend.generate([base])[0]
    assert full.finish_reason == "length"
    stop = "2."
    assert stop in full.text
    cut = backend.generate([req("List three fruits.", temperature=0, max_tokens=48, stop=("never-there", stop))])[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[:full.text.index(stop)]
    assert cut.completion_tokens < full.completion_tokens


def test_both_cores_busy(backend):
    if usable_cpus() < 2:
        pytest.skip("one CPU")
    pids = [p.pid for p in backend._procs]
    assert len(pids) == 2
    before = [_cpu_ticks(p) for p in pids]
    backend.generate([req(f"Tell me about the number {k}.", seed=k, max_tokens=48) for k in range(8)])
    used = [_cpu_ticks(p) - b for p, b in zip(pids, before)]
    assert all(u >= 20 for u in used), used  # >= 0.2 s of CPU each (100 ticks/s): both workers decoded


def test_stream_closed_early_then_reused(backend):
    it = backend.stream([req(f"Count to {k}.", seed=k, max_tokens=32) for k in range(6)])
    r, c = next(it)
    assert c.completion_tokens > 0
    it.close()  # the rest is dropped with the workers; the next call starts new ones
    again = backend.generate([req(STORY, seed=7, max_tokens=32)])
    assert again[0].completion_tokens == 32


def test_context_full_is_length():
    with make_backend("llamacpp", "embedded", workers=1, batch_size=2, n_ctx=48) as small:
        fits, too_long = small.generate([req("List three fruits.", temperature=0, max_tokens=64),
                                         req("word " * 60, max_tokens=8)])
    assert fits.finish_reason == "length" and fits.extra["context_full"] == 48
    assert fits.completion_tokens == 48 - fits.prompt_tokens + 1  # the last sampled token needs no cell
    assert too_long.finish_reason == "length" and too_long.completion_tokens == 0 and too_long.text == ""
    assert "does not fit" in too_long.extra["error"]


def test_describe(backend):
    d = backend.describe()
    with open(embedded_gguf(), "rb") as f:
        assert d["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert d["backend"] == "llamacpp" and d["model"] == "embedded"
    assert d["path"] == str(embedded_gguf())
    assert d["chat_template"]["source"].startswith("gguf:")
    assert d["options"]["workers"] == 2 and d["options"]["batch_size"] == 4 and d["options"]["threads"] == 1


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="no-such-model.gguf"):
        make_backend("llamacpp", "no-such-model.gguf")
    fake = tmp_path / "x.gguf"
    fake.write_bytes(b"not a gguf")
    with pytest.raises(UserError, match="not a GGUF"):
        make_backend("llamacpp", str(fake))
    with pytest.raises(UserError, match="base_url"):
        make_backend("llamacpp", "embedded", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(UserError, match="workers"):
        make_backend("llamacpp", "embedded", workers=0)
    assert os.path.isfile(embedded_gguf())


def test_context_cap_is_recorded(tmp_path):
    """A context smaller than prompt + max_tokens: the sample ends "length" below max_tokens and says what it was
    granted; the run record carries max_tokens_granted and results.json counts it (context_capped_samples)."""
    import json

    b = make_backend("llamacpp", "embedded", n_ctx=128, workers=1, threads=1)
    try:
        c = b.generate([req("Write a long story about a robot who learns to paint.", temperature=0, max_tokens=400)])[0]
    finally:
        b.close()
    assert c.finish_reason == "length" and c.completion_tokens < 400
    assert c.extra["max_tokens_granted"] == c.completion_tokens == 128 - c.prompt_tokens + 1

    from conftest import run_r1

    out = tmp_path / "run"
    p = run_r1("eval", "--task", "arith", "--limit", "2", "-n", "1", "--max-tokens", "400", "--n-ctx", "128",
               "--temperature", "0", "--think-prefix", "on", "--workers", "1", "--threads", "1", "--no-progress",
               "--out", str(out))
    recs = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    capped = [r for r in recs if "max_tokens_granted" in r]
    for r in recs:
        cut = r["finish_reason"] == "length" and r["completion_tokens"] < 400
        assert ("max_tokens_granted" in r) == cut
        if cut:
            assert r["max_tokens_granted"] == r["completion_tokens"] == 128 - r["prompt_tokens"] + 1
    res = json.loads((out / "results.json").read_text())["tasks"]["arith"]
    assert res["context_capped_samples"] == len(capped) == 2  # greedy, so the same two cuts every time
    assert "2 sample(s) were cut by the model's context" in p.stdout
