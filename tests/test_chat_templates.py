"""The prompt the model really sees, on the REAL published chat templates (../shared/data/chat_templates: every
revision each paper model's hub repo published; see its SOURCE.md): the generation prompt's ending under
--think-prefix auto/on/off, "<think>" exactly once, BOS exactly once, our renderer == transformers' renderer, and
what the OpenAI chat path makes a server render (transformers' continue_final_message, which vLLM uses)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.backends.chat import ChatTemplate, from_tokenizer_dir
from harness.prompting import add_prefix, decide_think_prefix, template_forces_think

from conftest import data_file


def history() -> Path:
    """../shared/data/chat_templates/history via the data mirror (R1_DATA_DIR)."""
    return data_file("chat_templates/history")


THINK = "<think>\n"
USER = [{"role": "user", "content": "What is 2+2? Please reason step by step, and put your final answer within "
                                    "\\boxed{}."}]
R1_BOS = "<｜begin▁of▁sentence｜>"

# Per history file: the generation prompt's ending (after the user turn) under auto / on / off, for the template
# revisions that end with <think>\n themselves ("new") and those that do not ("old"). Written from SOURCE.md's table.
R1_OLD = {"auto": "<｜Assistant｜><think>\n", "on": "<｜Assistant｜><think>\n", "off": "<｜Assistant｜>"}
R1_NEW = {"auto": "<｜Assistant｜><think>\n", "on": "<｜Assistant｜><think>\n", "off": "<｜Assistant｜><think>\n"}
IM_PLAIN = {"auto": "<|im_start|>assistant\n", "on": "<|im_start|>assistant\n<think>\n",
            "off": "<|im_start|>assistant\n"}
IM_REASON = {"auto": "<|im_start|>assistant\n<think>\n", "on": "<|im_start|>assistant\n<think>\n",
             "off": "<|im_start|>assistant\n"}
IM_NEW = {m: "<|im_start|>assistant\n<think>\n" for m in ("auto", "on", "off")}
EXPECTED = {
    "deepseek-ai__DeepSeek-R1.json": {"abf9bba58b81": R1_OLD, "8a58a132790c": R1_NEW},
    "deepseek-ai__DeepSeek-R1-Distill-Qwen-1.5B.json": {"e164738bb96d": R1_OLD, "530ca3e1ad39": R1_NEW},
    "deepseek-ai__DeepSeek-R1-Distill-Qwen-7B.json": {"a7468adba1c2": R1_OLD, "6602cadec947": R1_NEW},
    "deepseek-ai__DeepSeek-R1-Distill-Llama-8B.json": {"3c896db5da4a": R1_OLD, "74fbf131a939": R1_NEW},
    "Qwen__QwQ-32B.json": {"883729b9c747": IM_REASON, "d76cadcb178b": IM_NEW, "2d67d9d78582": IM_NEW,
                           "976055f8c83f": IM_NEW},
    "Qwen__Qwen2.5-Math-1.5B.json": {"b53e4e3adbbb": IM_PLAIN, "37193e87a152": IM_PLAIN, "32c01b0b4180": IM_PLAIN},
    "Qwen__Qwen2.5-Math-7B.json": {"8269ffffe7d9": IM_PLAIN, "03004f923aea": IM_PLAIN, "49db7ad6b457": IM_PLAIN},
    "Qwen__Qwen2.5-7B-Instruct.json": {"d1e200fcf95e": IM_PLAIN, "929d90a7473b": IM_PLAIN, "acbd96531cda": IM_PLAIN},
    "HuggingFaceTB__SmolLM2-135M-Instruct.json": {"e682e54cd28b": IM_PLAIN, "eba0825ddc77": IM_PLAIN},
}


def revisions(fname: str) -> list[tuple[str, str, ChatTemplate]]:
    d = json.loads((history() / fname).read_text(encoding="utf-8"))
    return [(d["mid"], t["sha"], ChatTemplate(t["template"], f"history:{fname}@{t['sha']}", t["bos"] or "",
                                              t["eos"] or "")) for t in d["_templates"]]


def test_every_history_file_is_covered():
    files = {p.name for p in history().glob("*.json")}
    assert files == set(EXPECTED)
    for f in files:
        assert [sha for _, sha, _ in revisions(f)] == list(EXPECTED[f])  # every revision, in published order


@pytest.mark.parametrize("fname", sorted(EXPECTED))
def test_rendered_prompt_ending_under_auto_on_off(fname):
    from transformers.utils.chat_template_utils import render_jinja_template

    for mid, sha, tmpl in revisions(fname):
        base = tmpl.render(USER)
        # our sandboxed renderer and transformers' own give the same generation prompt
        ref = render_jinja_template([USER], chat_template=tmpl.template, add_generation_prompt=True,
                                    bos_token=tmpl.bos_token, eos_token=tmpl.eos_token)[0][0]
        assert base == ref, (fname, sha)
        for mode, ending in EXPECTED[fname][sha].items():
            d = decide_think_prefix(mode, tmpl, [mid])
            prompt = tmpl.render(USER, d.prefix)
            assert prompt.endswith(USER[0]["content"] + ("<|im_end|>\n" if "im_start" in ending else "") + ending), \
                (fname, sha, mode, prompt[-80:])
            assert prompt.count("<think>") == (1 if d.enabled else 0), (fname, sha, mode)
            assert d.enabled == ending.endswith(THINK)
            assert d.template_adds_it == template_forces_think(tmpl)
            if tmpl.bos_token == R1_BOS:  # R1 family: the template writes BOS once, at the start
                assert prompt.startswith(tmpl.bos_token) and prompt.count(tmpl.bos_token) == 1


@pytest.mark.parametrize("fname", sorted(EXPECTED))
def test_openai_chat_path_sends_think_prefix_once(fname):
    """Without a local template the openai backend sends the messages plus an assistant message "<think>\\n" with
    continue_final_message=true, add_generation_prompt=false. A server rendering with transformers' logic (vLLM
    does) then ends the prompt with "<think>\\n" exactly once, also for templates that write it themselves."""
    from transformers.utils.chat_template_utils import render_jinja_template

    for _, sha, tmpl in revisions(fname):
        msgs = USER + [{"role": "assistant", "content": THINK}]
        out = render_jinja_template([msgs], chat_template=tmpl.template, continue_final_message=True,
                                    add_generation_prompt=False, bos_token=tmpl.bos_token,
                                    eos_token=tmpl.eos_token)[0][0]
        assert out.endswith(THINK) and out.count("<think>") == 1, (fname, sha, out[-60:])
        # it is the same text our local rendering sends to /v1/completions
        assert out == tmpl.render(USER, THINK), (fname, sha)


def test_unofficial_tokenizer_config_copy(tmp_path):
    """The top-level tokenizer_config.json copy (R1-Distill-Qwen-1.5B, template of 530ca3e1ad39) loads through the
    tokenizer-dir path the hf/vllm backends use, and ends with <think>\\n once under every mode."""
    src = history().parent / "deepseek-ai__DeepSeek-R1-Distill-Qwen-1.5B__think-unofficial-copy.json"
    d = tmp_path / "tok"
    d.mkdir()
    shutil.copy(src, d / "tokenizer_config.json")
    tmpl = from_tokenizer_dir(d)
    assert tmpl.bos_token == R1_BOS
    for mode in ("auto", "on", "off"):
        dec = decide_think_prefix(mode, tmpl, ["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"])
        p = tmpl.render(USER, dec.prefix)
        assert dec.enabled and p.endswith("<｜Assistant｜><think>\n") and p.count("<think>") == 1
        assert p.startswith(R1_BOS) and p.count(R1_BOS) == 1


def test_auto_decision_reasons():
    _, _, smol = revisions("HuggingFaceTB__SmolLM2-135M-Instruct.json")[-1]
    d = decide_think_prefix("auto", smol, ["HuggingFaceTB/SmolLM2-135M-Instruct"])
    assert not d.enabled and "registry" in d.reason and "SmolLM" in d.reason
    # unknown name: the template decides; the old R1 template mentions </think>, the Qwen2.5 one does not
    _, _, r1_old = revisions("deepseek-ai__DeepSeek-R1.json")[0]
    assert decide_think_prefix("auto", r1_old, ["my-finetune"]).enabled
    _, _, qwen = revisions("Qwen__Qwen2.5-7B-Instruct.json")[-1]
    d = decide_think_prefix("auto", qwen, ["my-finetune"])
    assert not d.enabled and "not in the model registry" in d.reason
    # no template visible (a served model behind /chat/completions): the registry alone
    assert decide_think_prefix("auto", None, ["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"]).enabled
    assert not decide_think_prefix("auto", None, ["gpt-4o-mini"]).enabled
    assert decide_think_prefix(True).mode == "on" and decide_think_prefix(False).mode == "off"  # old bools
    with pytest.raises(Exception, match="auto, on, off"):
        decide_think_prefix("maybe")


def test_add_prefix_exactly_once():
    assert add_prefix("A:", THINK) == "A:<think>\n"
    assert add_prefix("A:<think>\n", THINK) == "A:<think>\n"
    assert add_prefix("A:<think>", THINK) == "A:<think>\n"  # only the missing newline
    assert add_prefix("A:", "") == "A:"
