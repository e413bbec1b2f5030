"""Chat-template rendering (harness/backends/chat.py) and model resolution (harness/models.py)."""
from __future__ import annotations

import hashlib
import json

import pytest

from harness.backends.chat import ChatTemplate, TemplateError, from_gguf, load_chat_template
from harness.errors import UserError
from harness.models import embedded_gguf, file_sha256, read_gguf, resolve_gguf

MSGS = [{"role": "user", "content": "What is 1+1?"}]


def test_embedded_template_from_gguf_metadata():
    t = from_gguf(embedded_gguf())
    assert t.source.startswith("gguf:") and t.bos_token == "<|im_start|>" and t.eos_token == "<|im_end|>"
    assert t.render(MSGS, "<think>\n") == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    )
    # no system prompt is added when the messages carry one
    sys_msgs = [{"role": "system", "content": "S"}] + MSGS
    assert t.render(sys_msgs).startswith("<|im_start|>system\nS<|im_end|>\n")


def test_hf_conventions_bos_raise_tojson_generation_tag():
    tmpl = ("{{ bos_token }}{% for m in messages %}{% if m['role'] not in ['user', 'assistant'] %}"
            "{{ raise_exception('bad role ' + m['role']) }}{% endif %}"
            "{% generation %}{{ m['content'] | tojson }}{% endgeneration %}{{ eos_token }}\n{% endfor %}"
            "{% if add_generation_prompt %}A:{% endif %}")
    t = ChatTemplate(tmpl, "inline", "<s>", "</s>")
    assert t.render([{"role": "user", "content": "é"}], "<think>\n") == '<s>"é"</s>\nA:<think>\n'
    assert t.render([{"role": "user", "content": "x"}], add_generation_prompt=False) == '<s>"x"</s>\n'
    with pytest.raises(TemplateError, match="bad role tool"):
        t.render([{"role": "tool", "content": "x"}])


def test_sandbox_blocks_attribute_escape():
    t = ChatTemplate("{{ messages.__class__.__mro__ }}", "inline")
    with pytest.raises(UserError):
        t.render(MSGS)


def test_load_chat_template_sources(tmp_path):
    assert load_chat_template(str(embedded_gguf())).source.startswith("gguf:")
    assert load_chat_template("{{ messages[0]['content'] }}").render(MSGS) == "What is 1+1?"
    f = tmp_path / "t.jinja"
    f.write_text("J{{ messages|length }}")
    assert load_chat_template(str(f)).render(MSGS) == "J1"
    d = tmp_path / "tok"
    d.mkdir()
    (d / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"content": "<B>"}, "eos_token": "<E>",
        "chat_template": [{"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}]}))
    t = load_chat_template(str(d))
    assert t.render(MSGS) == "<B>D<E>" and t.source == f"tokenizer:{d.resolve()}"
    (d / "chat_template.jinja").write_text("file wins")
    assert load_chat_template(str(d / "tokenizer_config.json")).render(MSGS) == "file wins"
    with pytest.raises(UserError, match="no such file"):
        load_chat_template(str(tmp_path / "missing.jinja"))
    with pytest.raises(UserError, match="does not compile"):
        load_chat_template("{% for %}").render(MSGS)


def test_gguf_metadata_and_hash(tmp_path, monkeypatch):
    info = read_gguf(embedded_gguf())
    assert info.metadata["general.architecture"] == "llama"
    assert info.metadata["tokenizer.ggml.add_bos_token"] is False
    assert info.tokens[2] == "<|im_end|>"
    monkeypatch.setenv("R1_CACHE_DIR", str(tmp_path))
    digest = file_sha256(embedded_gguf())
    with open(embedded_gguf(), "rb") as f:
        assert digest == hashlib.sha256(f.read()).hexdigest()
    assert digest in (tmp_path / "sha256.json").read_text()  # cached: hashed once


def test_resolve_gguf(tmp_path):
    assert resolve_gguf("embedded") == embedded_gguf()
    assert resolve_gguf(str(embedded_gguf().parent)) == embedded_gguf()  # a dir with one .gguf
    with pytest.raises(UserError, match="nothing-here.gguf"):
        resolve_gguf(str(tmp_path / "nothing-here.gguf"))
    with pytest.raises(UserError, match="no .gguf file"):
        resolve_gguf(str(tmp_path))
