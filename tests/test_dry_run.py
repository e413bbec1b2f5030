"""`r1 eval --dry-run` and the think-prefix protocol end to end: the exact prompt for the embedded model and for a
GGUF carrying DeepSeek-R1-Distill's published chat template (a copy of the embedded GGUF written with the gguf
package), BOS exactly once on the llama.cpp and transformers tokenization paths, the auto decision in the manifest,
resuming a run whose manifest holds the old bool, and the hub-id error."""
from __future__ import annotations

import json

import pytest

from _gguf_copy import copy_gguf, r1_distill_template
from conftest import run_r1
from harness.models import embedded_gguf
from harness.task import sample_seed

R1_END = "<｜User｜>"  # R1 templates put the user turn after this tag
ASSISTANT_THINK = "<｜Assistant｜><think>\n"


@pytest.fixture(scope="module")
def r1_gguf(tmp_path_factory):
    """The embedded SmolLM2 weights with R1-Distill-Qwen-1.5B's current template and add_bos_token=true (as the
    R1 GGUFs have): the template writes {{ bos_token }} itself, so a naive tokenization gives two BOS tokens."""
    d = tmp_path_factory.mktemp("r1gguf")
    return copy_gguf(embedded_gguf(), d / "smollm2-with-r1-distill-template.gguf",
                     chat_template=r1_distill_template(), add_bos=True)


def _prompts(stdout: str) -> list[str]:
    out, cur = [], None
    for line in stdout.split("\n"):
        if line == ">>>>>>":
            cur = []
        elif line == "<<<<<<":
            out.append("\n".join(cur))
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


def test_dry_run_embedded_model_writes_nothing(tmp_path):
    out = tmp_path / "run"
    p = run_r1("eval", "--task", "arith", "--limit", "2", "-n", "2", "--dry-run", "--out", str(out))
    assert not out.exists()
    assert "think prefix: auto -> off (model registry:" in p.stdout and "SmolLM" in p.stdout
    prompts = _prompts(p.stdout)
    assert len(prompts) == 3 and "... 1 more request(s) not shown" in p.stdout  # default: the first 3
    for text in prompts:
        assert text.endswith("<|im_start|>assistant\n") and "<think>" not in text
    seeds = [int(line.split("seed=")[1].split()[0]) for line in p.stdout.splitlines() if line.startswith("sampling:")]
    from harness.task import get_task

    ids = [q.id for q in get_task("arith").problems(None, 2)]
    assert seeds == [sample_seed(0, "arith", ids[0], 0), sample_seed(0, "arith", ids[0], 1),
                     sample_seed(0, "arith", ids[1], 0)]
    assert "temperature=0.6 top_p=0.95 max_tokens=32768" in p.stdout
    # forcing the prefix on a plain chat model: added once, at the very end
    p = run_r1("eval", "--task", "arith", "--limit", "1", "-n", "1", "--think-prefix", "on", "--dry-run", "1",
               "--out", str(out))
    (text,) = _prompts(p.stdout)
    assert text.endswith("<|im_start|>assistant\n<think>\n") and text.count("<think>") == 1
    assert "think prefix: on -> on" in p.stdout and not out.exists()


def test_dry_run_r1_distill_template_gguf(r1_gguf, tmp_path):
    out = tmp_path / "run"
    for mode in ("auto", "on", "off"):
        p = run_r1("eval", "--model", str(r1_gguf), "--task", "arith", "--limit", "1", "-n", "1",
                   "--think-prefix", mode, "--dry-run", "--out", str(out))
        (text,) = _prompts(p.stdout)
        # the template ends with <think>\n itself: the model sees it exactly once, whatever the mode
        assert text.endswith(ASSISTANT_THINK) and text.count("<think>") == 1, (mode, text[-80:])
        assert text.startswith("<|im_start|>" + R1_END) and text.count("<|im_start|>") == 1  # BOS once, by template
        assert f"think prefix: {mode} -> on (the chat template" in p.stdout
        assert "llama.cpp adds no second one" in p.stdout
    assert not out.exists()
    # the hf backend renders the same text without loading weights
    p = run_r1("eval", "--model", str(r1_gguf), "--backend", "hf", "--task", "arith", "--limit", "1", "-n", "1",
               "--dry-run", "--out", str(out))
    assert _prompts(p.stdout) == [text]


def test_bos_once_on_llamacpp_tokenization(r1_gguf):
    import llama_cpp as L

    from harness.backends.chat import from_gguf
    from harness.backends.llamacpp import tokenize_prompt

    text = from_gguf(r1_gguf).render([{"role": "user", "content": "hi"}], "<think>\n")
    llm = L.Llama(str(r1_gguf), vocab_only=True, verbose=False)
    try:
        bos = llm.token_bos()
        ids = tokenize_prompt(L, L.llama_model_get_vocab(llm.model), text)
        assert ids[0] == bos and ids.count(bos) == 1
        # what a naive tokenization (add BOS + parse specials) does to the same text
        assert llm.tokenize(text.encode(), add_bos=True, special=True)[:2] == [bos, bos]
        # a template that writes no BOS still gets the one the model wants
        plain = tokenize_prompt(L, L.llama_model_get_vocab(llm.model), "hello")
        assert plain[0] == bos and plain.count(bos) == 1
    finally:
        llm.close()


def test_bos_once_on_hf_tokenization(r1_gguf):
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    from harness.backends.chat import from_gguf
    from harness.backends.hf import encode_prompts

    tok = AutoTokenizer.from_pretrained(str(r1_gguf.parent), gguf_file=r1_gguf.name)
    text = from_gguf(r1_gguf).render([{"role": "user", "content": "hi"}], "<think>\n")
    ids = encode_prompts(tok, [text])["input_ids"][0].tolist()
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok(text, add_special_tokens=True)["input_ids"][:2] == [tok.bos_token_id] * 2  # the trap avoided


def test_hub_id_with_default_backend_names_the_backends(tmp_path):
    p = run_r1("eval", "--model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "--task", "arith", "--limit", "1",
               "--out", str(tmp_path / "x"), check=False)
    assert p.returncode == 2
    assert "--backend hf|vllm|openai" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_auto_decision_in_manifest_and_old_bool_manifest_resumes(tmp_path):
    """A short real run: auto resolves off for SmolLM2 (manifest + summary); a run dir whose manifest says the old
    bool true (made before auto existed) resumes under auto with the prefix it started with."""
    out = tmp_path / "run"
    args = ["eval", "--task", "arith", "--limit", "1", "-n", "2", "--max-tokens", "24", "--no-progress",
            "--temperature", "0"]
    p = run_r1(*args, "--out", str(out))
    m = json.loads((out / "manifest.json").read_text())
    assert m["think_prefix"]["mode"] == "auto" and m["think_prefix"]["enabled"] is False
    assert m["generation"]["think_prefix"] is False
    assert "think prefix: auto -> off" in p.stdout
    res = json.loads((out / "results.json").read_text())["tasks"]["arith"]
    assert res["unclosed_think_stop_rate"] == 0.0 and res["context_capped_samples"] == 0

    old = tmp_path / "old"
    run_r1(*args[:6], "1", *args[7:], "--think-prefix", "on", "--out", str(old))  # 1 sample per problem
    m = json.loads((old / "manifest.json").read_text())
    del m["think_prefix"]  # as written before --think-prefix auto existed
    (old / "manifest.json").write_text(json.dumps(m))
    first = (old / "samples.jsonl").read_text().splitlines()
    p = run_r1(*args, "--out", str(old))  # -n 2 under auto: one more sample per problem, same prefix as before
    m = json.loads((old / "manifest.json").read_text())
    assert m["generation"]["think_prefix"] is True and m["think_prefix"]["enabled"] is True
    assert m["think_prefix"]["reason"].startswith("resumed run")
    recs = [json.loads(line) for line in (old / "samples.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and all(r["completion"].startswith("<think>\n") for r in recs)
    assert json.loads(first[0])["completion"] == recs[0]["completion"]
    # an explicit, different choice is another experiment: refused, nothing lost
    p = run_r1(*args, "--think-prefix", "off", "--out", str(old), check=False)
    assert p.returncode == 2 and "another generation" in p.stderr
    assert len((old / "samples.jsonl").read_text().splitlines()) == 2


def test_unclosed_think_rate_and_summary_warning(tmp_path):
    """SmolLM2 forced to start with <think>: it answers and ends its turn without ever closing the block. The rate
    in results.json is exactly the records' fraction, and the summary warns (naming the flag) when it is > 50%."""
    from harness.prompting import unclosed_think_stop

    assert unclosed_think_stop({"finish_reason": "stop", "completion": "<think>\nso 4"})
    assert not unclosed_think_stop({"finish_reason": "length", "completion": "<think>\nso 4"})
    assert not unclosed_think_stop({"finish_reason": "stop", "completion": "<think>\nso</think> 4"})
    assert not unclosed_think_stop({"finish_reason": "stop", "completion": "4"})

    out = tmp_path / "run"
    p = run_r1("eval", "--task", "arith", "--limit", "4", "-n", "1", "--max-tokens", "256", "--think-prefix", "on",
               "--temperature", "0", "--no-progress", "--out", str(out))
    recs = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    rate = json.loads((out / "results.json").read_text())["tasks"]["arith"]["unclosed_think_stop_rate"]
    assert rate == sum(map(unclosed_think_stop, recs)) / len(recs)
    assert rate > 0.5  # measured: greedy SmolLM2 closes no <think> here
    assert "without closing <think>" in p.stdout and "--think-prefix off" in p.stdout


def test_real_run_matches_dry_run_r1_template(r1_gguf, tmp_path):
    """The run feeds the model exactly the dry-run text (token count = that text tokenized with one BOS), and the
    stored completion starts with "<think>\\n" although the template, not the harness, wrote it into the prompt."""
    import llama_cpp as L

    from harness.backends.llamacpp import tokenize_prompt

    args = ["eval", "--model", str(r1_gguf), "--task", "arith", "--limit", "1", "-n", "1", "--max-tokens", "8",
            "--temperature", "0", "--no-progress", "--out", str(tmp_path / "run")]
    (text,) = _prompts(run_r1(*args, "--dry-run").stdout)
    run_r1(*args)
    (rec,) = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    llm = L.Llama(str(r1_gguf), vocab_only=True, verbose=False)
    try:
        assert rec["prompt_tokens"] == len(tokenize_prompt(L, L.llama_model_get_vocab(llm.model), text))
    finally:
        llm.close()
    assert rec["completion"].startswith("<think>\n")
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["think_prefix"]["enabled"] and "not added again" in m["think_prefix"]["reason"]


def test_distill_dry_run_shows_the_teachers_prompts(r1_gguf, tmp_path):
    """`r1 distill --dry-run` prints the teacher's first requests as `r1 eval --dry-run` does (the teacher generates
    through the same runner): here a GGUF teacher with R1-Distill's template, whose prompt already ends with
    <think>\\n, so the prefix is not added twice."""
    sets = ["--set", "teacher.backend=llamacpp", "--set", f"teacher.model={r1_gguf}", "--set",
            "teacher.backend_options={}", "--set", "teacher.think_prefix=auto", "--out", str(tmp_path / "d")]
    p = run_r1("distill", "--recipe", "cpu_demo", "--dry-run", *sets)
    assert "teacher dry run: nothing is generated" in p.stdout and "sampling: temperature=0.0 top_p=0.95" in p.stdout
    prompts = _prompts(p.stdout)
    assert len(prompts) == 2 and all(x.endswith(ASSISTANT_THINK) for x in prompts)
    assert all(x.count("<think>") == 1 for x in prompts) and "seed=" in p.stdout
    assert not (tmp_path / "d").exists()
    programmatic = run_r1("distill", "--recipe", "cpu_demo", "--dry-run", "--out", str(tmp_path / "d"))
    assert "teacher prompts: none (the programmatic teacher is a program" in programmatic.stdout


def test_dry_run_withholds_gpqa_questions(tmp_path, data_dir):
    """GPQA's authors forbid publishing its questions: the dry-run shows the template around a placeholder.
    Asserts on counts only; no question text is printed by this test either."""
    import csv

    p = run_r1("eval", "--task", "gpqa_diamond,math500", "--limit", "2", "-n", "1", "--dry-run", "4",
               "--out", str(tmp_path / "r"), "--data-dir", str(data_dir))
    rows = list(csv.DictReader(open(data_dir / "gpqa_diamond" / "gpqa_diamond.csv", encoding="utf-8")))
    fields = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
    leaked = sum(1 for r in rows for f in fields if len(r[f].strip()) > 12 and r[f].strip() in p.stdout)
    assert leaked == 0
    assert p.stdout.count("turn withheld") == 2  # the two GPQA requests; math500's are shown in full
    assert not (tmp_path / "r").exists()
