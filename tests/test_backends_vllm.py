"""vLLM is CUDA-only: here, the clear one-line error, and the request -> SamplingParams translation."""
from __future__ import annotations

import importlib.util

import pytest

from _backend_fixtures import req
from harness.backends.base import make_backend
from harness.backends.vllm import sampling_kwargs
from harness.errors import UserError


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_is_one_clear_user_error():
    with pytest.raises(UserError) as e:
        make_backend("vllm", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", tensor_parallel_size=2)
    msg = str(e.value)
    assert "\n" not in msg and "vllm" in msg.lower() and "CUDA" in msg


def test_unknown_option_named():
    with pytest.raises(UserError, match="base_url"):
        make_backend("vllm", "m", base_url="http://127.0.0.1:1/v1")


def test_sampling_kwargs():
    r = req("q", seed=42, temperature=0.6, top_p=0.95, max_tokens=32768, stop=("</answer>",))
    assert sampling_kwargs(r) == {"n": 1, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32768, "seed": 42,
                                  "stop": ["</answer>"], "skip_special_tokens": True}
    greedy = sampling_kwargs(req("q", temperature=0, top_p=0.5))
    assert greedy["temperature"] == 0.0 and greedy["top_p"] == 1.0 and greedy["stop"] is None


def test_context_grant():
    """vLLM gets at most what the context leaves after the prompt; the smaller budget goes on the record."""
    from harness.backends.vllm import grant_max_tokens

    assert grant_max_tokens(32768, 500, 16384) == 15884
    assert grant_max_tokens(1000, 500, 16384) == 1000
    assert grant_max_tokens(1000, 20000, 16384) == 1  # over-long prompt: cut at once, still a record
    assert grant_max_tokens(1000, 500, None) == 1000
