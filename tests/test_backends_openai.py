"""The openai backend against real local servers: two llama-cpp-python servers (scale-out, n>1 fallback, local
chat-template rendering with the assistant prefix, chat endpoint) and scripted http.server stubs (retries with
backoff, errors, n>1 grouping, round-robin counts, /props)."""
from __future__ import annotations

import re
import time

import pytest

from _backend_fixtures import (ScriptedServer, chat_body, completion_body, free_port, req, start_llama_server,
                               stop_server)
from harness.backends.base import make_backend
from harness.backends.openai import ServerError
from harness.errors import UserError
from harness.models import embedded_gguf


# ------------------------------------------------------------------------------------------ real llama.cpp servers
@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    pytest.importorskip("llama_cpp.server.app")
    logs = tmp_path_factory.mktemp("llama-servers")
    procs, urls = [], []
    try:
        for k in range(2):
            port = free_port()
            procs.append(start_llama_server(embedded_gguf(), port, logs / f"server{k}.log"))
            urls.append(f"http://127.0.0.1:{port}/v1")
        yield urls, [logs / f"server{k}.log" for k in range(2)]
    finally:
        for p in procs:
            stop_server(p)


@pytest.fixture(scope="module")
def vocab():
    import llama_cpp

    v = llama_cpp.Llama(str(embedded_gguf()), vocab_only=True, verbose=False)
    yield v
    v.close()


def _posts(log) -> int:
    return len(re.findall(r'"POST /v1/(?:chat/)?completions HTTP/1.1" 200', log.read_text()))


def test_completions_endpoint_with_local_template_round_robin(servers, vocab):
    urls, logs = servers
    before = [_posts(p) for p in logs]
    b = make_backend("openai", "smollm", base_url=",".join(urls), chat_template=str(embedded_gguf()), concurrency=4)
    assert b.endpoint == "/completions"
    reqs = [req(f"What is {k}+{k}?", seed=k, temperature=0, max_tokens=16, assistant_prefix="<think>\n")
            for k in range(4)]
    out = b.generate(reqs)
    for r, c in zip(reqs, out):
        prompt = b.render_prompt(r)
        assert prompt.endswith("<|im_start|>assistant\n<think>\n")
        # usage from the server = our own tokenization of the locally rendered prompt
        assert c.prompt_tokens == len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))
        assert 0 < c.completion_tokens <= 16 and c.finish_reason in ("stop", "length")
        if c.finish_reason == "length":
            assert c.completion_tokens == 16
    assert [_posts(p) - n for p, n in zip(logs, before)] == [2, 2]  # round-robin over both servers
    d = b.describe()
    assert d["endpoint"].startswith("/v1/completions") and d["chat_template"]["source"].startswith("gguf:")
    assert d["served_models"] and "api_key" not in str(d)


def test_n_greater_than_one_falls_back_when_server_ignores_n(servers):
    urls, _ = servers
    b = make_backend("openai", "smollm", base_url=urls[0], chat_template=str(embedded_gguf()), n_grouping=True)
    reqs = [req("Name a color.", seed=s, temperature=0.9, max_tokens=12) for s in (1, 2, 3)]
    out = b.generate(reqs)
    # llama-cpp-python's server answers n=3 with one choice: the other two go one by one with their own seeds
    assert len(out) == 3 and all(c.completion_tokens > 0 for c in out)
    assert all(not c.extra.get("completion_tokens_estimated") for c in out)
    assert b.describe()["options"]["n_grouping"] is False
    # the first member's seed was the group's seed: same text as that request alone
    assert b.generate([reqs[0]])[0].text == out[0].text


def test_stop_and_length_from_server(servers):
    urls, _ = servers
    b = make_backend("openai", "smollm", base_url=urls[1], chat_template=str(embedded_gguf()))
    full = b.generate([req("List three fruits.", temperature=0, max_tokens=32)])[0]
    assert full.finish_reason == "length" and full.completion_tokens == 32
    cut = b.generate([req("List three fruits.", temperature=0, max_tokens=32, stop=("2.",))])[0]
    assert cut.finish_reason == "stop" and "2." not in cut.text and full.text.startswith(cut.text)


def test_chat_endpoint_without_template(servers):
    urls, _ = servers
    b = make_backend("openai", "smollm", base_url=urls[0])  # llama-cpp-python has no /props: chat endpoint
    assert b.endpoint == "/chat/completions"
    c = b.generate([req("Say hello.", temperature=0, max_tokens=12)])[0]
    assert c.text and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 12


# ------------------------------------------------------------------------------------------ scripted stubs
def test_retry_on_429_then_success():
    script = [(429, {"error": "slow down"}, {"Retry-After": "0"}), (200, completion_body(["ok"], 7, 1), None)]
    with ScriptedServer(script) as s:
        b = make_backend("openai", "stub", base_url=s.url, chat_template="{{ messages[0]['content'] }}",
                         api_key="sk-test")
        c = b.generate([req("hi")])[0]
    assert c.text == "ok" and c.prompt_tokens == 7 and c.completion_tokens == 1
    assert len(s.requests) == 2 and s.requests[0]["body"] == s.requests[1]["body"]
    assert s.requests[0]["auth"] == "Bearer sk-test"
    assert s.requests[0]["body"]["prompt"] == "hi" and s.requests[0]["body"]["seed"] == 0


def test_backoff_grows_then_clear_error():
    with ScriptedServer([(503, {"error": "overloaded"}, None)]) as s:
        b = make_backend("openai", "stub", base_url=s.url, chat_template="{{ messages[0]['content'] }}",
                         max_retries=3)
        t = time.monotonic()
        with pytest.raises(ServerError, match=r"failed after 4 attempts.*HTTP 503"):
            b.generate([req("hi")])
    assert len(s.requests) == 4
    assert time.monotonic() - t < 10  # full jitter over 0.5, 1, 2 s caps


def test_connection_refused_is_retried_then_reported():
    port = free_port()  # nothing listens there
    b = make_backend("openai", "stub", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1,
                     chat_template="{{ messages[0]['content'] }}")
    with pytest.raises(UserError, match=rf"failed after 2 attempts .*127.0.0.1:{port}.*ConnectError"):
        b.generate([req("hi")])


def test_client_error_is_not_retried():
    with ScriptedServer([(401, {"error": "bad key"}, None)]) as s:
        b = make_backend("openai", "stub", base_url=s.url, chat_template="{{ messages[0]['content'] }}")
        with pytest.raises(ServerError, match="HTTP 401.*bad key"):
            b.generate([req("hi")])
    assert len(s.requests) == 1


def test_one_seeded_request_per_sample_by_default():
    """Same sample, same seed: without the n_grouping opt-in, samples of one prompt are never merged into an n>1
    call (which would send only the first member's seed)."""
    def single(body):
        return completion_body([f"seed {body['seed']}"], 3, 2)

    with ScriptedServer([(200, single, None)]) as s:
        b = make_backend("openai", "stub", base_url=s.url, chat_template="{{ messages[0]['content'] }}")
        out = b.generate([req("same", seed=k) for k in (11, 12, 13)])
    assert [c.text for c in out] == ["seed 11", "seed 12", "seed 13"]
    assert len(s.requests) == 3 and all("n" not in r["body"] for r in s.requests)
    assert sorted(r["body"]["seed"] for r in s.requests) == [11, 12, 13]
    assert b.describe()["options"]["n_grouping"] is False


def test_n_grouping_when_supported():
    body = completion_body(["a b c", "a", "a b c d e f"], prompt_tokens=4, completion_tokens=16)
    body["choices"][2]["finish_reason"] = "length"
    with ScriptedServer([(200, body, None)]) as s:
        b = make_backend("openai", "stub", base_url=s.url, chat_template="{{ messages[0]['content'] }}",
                         n_grouping=True)
        reqs = [req("same", seed=s_, max_tokens=8) for s_ in (5, 6, 7)]
        out = b.generate(reqs)
    assert len(s.requests) == 1 and s.requests[0]["body"]["n"] == 3 and s.requests[0]["body"]["seed"] == 5
    assert [c.text for c in out] == ["a b c", "a", "a b c d e f"]
    assert out[2].finish_reason == "length" and out[2].completion_tokens == 8  # exact for the cut choice
    assert out[0].completion_tokens + out[1].completion_tokens == 8  # the rest, split by length
    assert all(c.extra["completion_tokens_estimated"] for c in out)


def test_n_rejected_falls_back_to_single_requests():
    def single(body):
        return completion_body([f"seed {body['seed']}"], 3, 2)

    with ScriptedServer([(400, {"error": "n must be 1"}, None), (200, single, None)]) as s:
        b = make_backend("openai", "stub", base_url=s.url, chat_template="{{ messages[0]['content'] }}",
                         n_grouping=True)
        out = b.generate([req("same", seed=k) for k in (1, 2)])
    assert [c.text for c in out] == ["seed 1", "seed 2"]
    assert "n" in s.requests[0]["body"] and all("n" not in r["body"] for r in s.requests[1:])


def test_round_robin_over_two_stubs_and_concurrency():
    with ScriptedServer([(200, completion_body(["x"]), None)]) as a, \
            ScriptedServer([(200, completion_body(["y"]), None)]) as b_:
        b = make_backend("openai", "stub", base_url=f"{a.url},{b_.url}", concurrency=2,
                         chat_template="{{ messages[0]['content'] }}")
        out = b.generate([req(f"q{k}", temperature=0) for k in range(6)])  # greedy: never grouped
    assert len(a.requests) == 3 and len(b_.requests) == 3
    assert sorted(c.text for c in out) == ["x"] * 3 + ["y"] * 3


def test_chat_mode_continues_assistant_prefix():
    with ScriptedServer([(200, chat_body("so 4.\n</think>\n\\boxed{4}"), None)]) as s:
        b = make_backend("openai", "stub", base_url=s.url)
        c = b.generate([req("2+2?", assistant_prefix="<think>\n")])[0]
    body = s.requests[0]["body"]
    assert s.requests[0]["path"] == "/v1/chat/completions"
    assert body["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert c.text.startswith("so 4.")


def test_template_from_llama_cpp_props():
    props = {"chat_template": "{{ bos_token }}[{{ messages[0]['content'] }}]", "bos_token": "<s>", "eos_token": "</s>"}
    with ScriptedServer([(200, completion_body(["ok"]), None)], get={"/props": props}) as s:
        b = make_backend("openai", "stub", base_url=s.url)
        assert b.endpoint == "/completions"
        c = b.generate([req("2+2?", assistant_prefix="<think>\n")])[0]
    # rendered here with the server's template; the BOS is left to the server's tokenizer
    assert s.requests[-1]["body"]["prompt"] == "[2+2?]<think>\n"
    assert c.text == "ok" and b.describe()["chat_template"]["source"].startswith("server:")
    with ScriptedServer([(200, completion_body(["ok"]), None)]) as s:
        assert make_backend("openai", "stub", base_url=s.url).endpoint == "/chat/completions"


def test_option_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="base_url"):
        make_backend("openai", "m", base_url="")
    with pytest.raises(UserError, match="not an http"):
        make_backend("openai", "m", base_url="ftp://x/v1")
    with pytest.raises(UserError, match="workers"):
        make_backend("openai", "m", base_url="http://127.0.0.1:1/v1", workers=2)


def test_dry_run_view_of_both_paths():
    """What --dry-run shows for the openai backend: the locally rendered /completions text (think prefix once), or
    the /chat/completions body with the continued assistant message."""
    from harness.prompting import decide_think_prefix, preview

    with ScriptedServer([(200, completion_body(["x"]), None)]) as s:
        local = make_backend("openai", "deepseek-r1", base_url=s.url,
                             chat_template="{{ messages[0]['content'] }}|A|<think>\n")
        d = decide_think_prefix("auto", local.template, local.model_names())
        assert d.enabled and d.template_adds_it
        w = local.wire(req("2+2?", assistant_prefix=d.prefix))
        assert w["text"] == "2+2?|A|<think>\n" and w["to"].endswith("/v1/completions")
        served = make_backend("openai", "deepseek-r1", base_url=s.url)
        d = decide_think_prefix("auto", served.template, served.model_names())
        assert d.enabled and "registry" in d.reason  # no template visible: the model name decides
        out = preview(served, [req("2+2?", assistant_prefix=d.prefix, key=("t", "p", 0))], d)
        assert '"continue_final_message": true' in out and '"content": "<think>\\n"' in out
        assert "request 0: t / p / 0" in out
    assert s.requests == []  # a dry run posts nothing


@pytest.mark.slow  # 86 s on the shared 2-core box (a llama.cpp server start)
def test_completions_prompt_has_one_bos_on_a_real_server(tmp_path):
    """R1-family templates write BOS; the /completions prompt leaves it out and the server adds its own: a real
    llama.cpp server (embedded weights carrying R1-Distill's template, add_bos_token=true) counts exactly the
    tokens of the rendered text with one BOS."""
    pytest.importorskip("llama_cpp.server.app")
    import llama_cpp as L

    from _gguf_copy import copy_gguf, r1_distill_template
    from harness.backends.llamacpp import tokenize_prompt

    gguf = copy_gguf(embedded_gguf(), tmp_path / "r1.gguf", chat_template=r1_distill_template(), add_bos=True)
    port = free_port()
    proc = start_llama_server(gguf, port, tmp_path / "server.log")
    try:
        b = make_backend("openai", "r1", base_url=f"http://127.0.0.1:{port}/v1", chat_template=str(gguf))
        r = req("2+2?", temperature=0, max_tokens=2, assistant_prefix="<think>\n")
        c = b.generate([r])[0]
        sent = b.wire(r)["text"]
    finally:
        stop_server(proc)
    full = b.template.render(r.messages, r.assistant_prefix)
    assert full.startswith(b.template.bos_token) and not sent.startswith(b.template.bos_token)
    assert sent.endswith("<｜Assistant｜><think>\n") and sent.count("<think>") == 1
    llm = L.Llama(str(gguf), vocab_only=True, verbose=False)
    try:
        ids = tokenize_prompt(L, L.llama_model_get_vocab(llm.model), full)
        assert ids.count(llm.token_bos()) == 1 and c.prompt_tokens == len(ids)
    finally:
        llm.close()
