"""Same sample, same seed? Measured per backend on the embedded model (issue 13, item 4).

    python benchmarks/seed_determinism.py [--requests 8] [--max-tokens 48]

1. in-process llamacpp: the same seeded requests generated (a) 2 workers x 4 slots in order, (b) 1 worker x 8 slots in
   reverse order, (c) "resumed": the first half in one backend, the second half in a fresh one. Identical texts?
2. llama-cpp-python's OpenAI server (``llama_cpp.server`` on 127.0.0.1) through our openai backend, one request at a
   time: the same seeded requests in order, again, in reverse order; then r1 eval's own pattern, k samples of one
   prompt (own seeds) back to back, against each regenerated alone after another prompt (a resume); then the same
   with ``cache_prompt: false`` in the body (llama.cpp's C++ server option). Its Llama reuses the KV cache of the
   longest prefix shared with the previous prompt, so how much of a prompt is evaluated fresh depends on what came
   before it.

Prints one JSON line: ratio = fraction of the server's k samples of one prompt that came out the same when regenerated
one by one (goal "== 1.0" is what a batch-invariant server gives), with every comparison in ``details``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.backends.base import GenRequest, make_backend  # noqa: E402
from harness.models import embedded_gguf  # noqa: E402


def requests(n: int, max_tokens: int) -> list[GenRequest]:
    return [GenRequest(messages=({"role": "user", "content": f"Write a short story about robot number {i}."},),
                       max_tokens=max_tokens, temperature=0.6, top_p=0.95, seed=1000 + i) for i in range(n)]


def same(a: list[str], b: list[str]) -> int:
    return sum(x == y for x, y in zip(a, b))


def in_process(reqs: list[GenRequest]) -> dict:
    with make_backend("llamacpp", "embedded", workers=2, threads=1, batch_size=4) as b:
        a = [c.text for c in b.generate(reqs)]
    with make_backend("llamacpp", "embedded", workers=1, threads=1, batch_size=8) as b:
        rev = [c.text for c in b.generate(reqs[::-1])][::-1]
    half = len(reqs) // 2
    with make_backend("llamacpp", "embedded", workers=1, threads=1, batch_size=2) as b:
        first = [c.text for c in b.generate(reqs[:half])]
    with make_backend("llamacpp", "embedded", workers=2, threads=1, batch_size=4) as b:  # a "resumed" process
        second = [c.text for c in b.generate(reqs[half:])]
    return {"n": len(reqs), "reverse_order_other_layout_identical": same(a, rev),
            "resumed_in_two_processes_identical": same(a, first + second)}


def hf(reqs: list[GenRequest]) -> dict:
    """transformers backend (the embedded GGUF dequantized): per-request seeded generators; does the batch a request
    lands in change its sample?"""
    def run(batch_size: int, order: list[GenRequest]) -> list[str]:
        with make_backend("hf", "embedded", batch_size=batch_size, threads=1) as b:
            return [c.text for c in b.generate(order)]

    a = run(4, reqs)
    again = run(4, reqs)
    rev = run(4, reqs[::-1])[::-1]  # same batch size, other batch companions
    single = run(1, reqs)
    return {"n": len(reqs), "same_batches_again_identical": same(a, again),
            "reverse_order_same_batch_size_identical": same(a, rev), "batch_size_1_vs_4_identical": same(a, single)}


class _Body:
    """The openai backend's payload with extra fields (e.g. cache_prompt) for one measurement."""

    def __init__(self, backend, extra: dict):
        self.b, self.extra, self.orig = backend, extra, backend._payload

    def __enter__(self):
        self.b._payload = lambda r, n: {**self.orig(r, n), **self.extra}

    def __exit__(self, *exc):
        self.b._payload = self.orig


def server(reqs: list[GenRequest], k: int = 4) -> dict:
    from _backend_fixtures import free_port, start_llama_server, stop_server

    logs = Path(tempfile.mkdtemp(prefix="r1-seed-"))
    port = free_port()
    proc = start_llama_server(embedded_gguf(), port, logs / "server.log")
    try:
        b = make_backend("openai", "smollm", base_url=f"http://127.0.0.1:{port}/v1",
                         chat_template=str(embedded_gguf()), concurrency=1)
        gen = lambda rs: [c.text for c in b.generate(rs)]  # noqa: E731
        flush = GenRequest(messages=({"role": "user", "content": "Name a color."},), max_tokens=4, temperature=0.6,
                           top_p=0.95, seed=1)
        a = gen(reqs)
        again = gen([flush] + reqs)[1:]
        rev = gen([flush] + reqs[::-1])[1:][::-1]
        # r1 eval's case: k samples of one problem (same prompt, own seeds) one after another, then each sample
        # regenerated alone after another prompt (what a resume or another order does)
        ks = [GenRequest(messages=reqs[0].messages, max_tokens=r.max_tokens, temperature=0.6, top_p=0.95,
                         seed=2000 + j) for j, r in enumerate(reqs[:k])]
        together = gen([flush] + ks)[1:]
        alone = [gen([flush, r])[1] for r in ks]
        with _Body(b, {"cache_prompt": False}):
            together_nc = gen([flush] + ks)[1:]
            alone_nc = [gen([flush, r])[1] for r in ks]
        b.close()
    finally:
        stop_server(proc)
    return {"n": len(reqs), "same_order_again_identical": same(a, again), "reverse_order_identical": same(a, rev),
            "k_samples_of_one_prompt": k,
            "k_samples_back_to_back_vs_alone_identical": same(together, alone),
            "k_samples_with_cache_prompt_false_identical": same(together_nc, alone_nc)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--backends", default="llamacpp,server,hf",
                    help="comma-separated subset of llamacpp (in-process), server (llama_cpp.server), hf")
    a = ap.parse_args()
    which = set(a.backends.split(","))
    reqs = requests(a.requests, a.max_tokens)
    details: dict = {"max_tokens": a.max_tokens, "temperature": 0.6, "top_p": 0.95}
    if "llamacpp" in which:
        details["llamacpp_in_process"] = in_process(reqs)
    if "hf" in which:
        details["hf"] = hf(reqs)
    ratio = None
    if "server" in which:
        sv = details["llama_cpp_python_server"] = server(reqs)
        ratio = sv["k_samples_back_to_back_vs_alone_identical"] / sv["k_samples_of_one_prompt"]
    print(json.dumps({"benchmark": "seed_determinism", "ratio": ratio,
                      "goal": "== 1.0 (batch-invariant); in-process llamacpp must be n/n",
                      "details": details}))


if __name__ == "__main__":
    main()
