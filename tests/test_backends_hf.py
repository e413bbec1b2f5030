"""The transformers backend on the embedded GGUF (dequantized): batched generation with per-request seeds, stop
strings, max_tokens, token counts that agree with llama.cpp's tokenizer."""
from __future__ import annotations

import pytest

from _backend_fixtures import req
from harness.backends.base import make_backend
from harness.errors import UserError
from harness.models import embedded_gguf

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

pytestmark = pytest.mark.slow  # GGUF -> transformers conversion takes ~20-60 s on 2 cores


@pytest.fixture(scope="module")
def backend():
    return make_backend("hf", "embedded", batch_size=4, threads=1)


def test_batch_lengths_stops_and_counts(backend):
    reqs = [
        req("List three fruits.", temperature=0, max_tokens=20),
        req("Write a short story about a robot.", seed=5, max_tokens=12, assistant_prefix="<think>\n"),
        req("What is 2+2? Answer with a number.", temperature=0, max_tokens=24),
    ]
    out = backend.generate(reqs)
    assert out[0].finish_reason == "length" and out[0].completion_tokens == 20
    assert out[1].finish_reason == "length" and out[1].completion_tokens == 12  # its own max_tokens in the batch
    assert out[2].finish_reason == "stop" and "4" in out[2].text  # EOS, not included in the text
    assert out[2].completion_tokens < 24
    try:
        import llama_cpp
    except ImportError:
        return
    vocab = llama_cpp.Llama(str(embedded_gguf()), vocab_only=True, verbose=False)
    try:
        for r, c in zip(reqs, out):
            assert c.prompt_tokens == len(vocab.tokenize(backend.render(r).encode(), add_bos=False, special=True))
    finally:
        vocab.close()


def test_seeds_and_stop_string(backend):
    reqs = [req("Write a short story about a robot.", seed=s, max_tokens=12) for s in (1, 2, 1)]
    out = backend.generate(reqs)
    assert out[0].text == out[2].text != out[1].text  # per-request generators: seed 1 twice in one batch
    again = backend.generate(reqs)
    assert [c.text for c in again] == [c.text for c in out]  # same batch -> same texts
    full = backend.generate([req("List three fruits.", temperature=0, max_tokens=20)])[0]
    assert "Bananas" in full.text
    cut = backend.generate([req("List three fruits.", temperature=0, max_tokens=20, stop=("Bananas",))])[0]
    assert cut.finish_reason == "stop" and cut.text == full.text[:full.text.index("Bananas")]


def test_describe_and_errors(backend, tmp_path):
    d = backend.describe()
    assert d["backend"] == "hf" and d["format"] == "gguf" and len(d["sha256"]) == 64
    assert d["chat_template"]["source"].startswith("gguf:") and d["options"]["batch_size"] == 4
    with pytest.raises(UserError, match="concurrency"):
        make_backend("hf", "embedded", concurrency=3)
    with pytest.raises(UserError, match="missing-model.gguf"):
        make_backend("hf", str(tmp_path / "missing-model.gguf"))
