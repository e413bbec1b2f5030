"""Chat rendering shared by every backend that builds its own prompt text.

Messages are rendered with the model's own chat template (GGUF ``tokenizer.chat_template``, a tokenizer's
``chat_template``, or one given by the user) in a sandboxed jinja2 environment set up like transformers'
``apply_chat_template`` (trim_blocks, lstrip_blocks, ``raise_exception``, ``tojson``, ``strftime_now``,
``{% generation %}``), with ``add_generation_prompt=True``; then ``assistant_prefix`` (the paper's "<think>\\n") is
appended unless the rendered prompt already ends with it (current R1 / R1-Distill / QwQ templates write it
themselves: it must reach the model once, see ``harness.prompting.add_prefix``) and the backend generates the
continuation.

R1-family templates write the BOS token themselves, so every backend tokenizes the rendered text without adding
special tokens (llamacpp adds BOS only when the text does not already start with it).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import UserError
from ..models import read_gguf, text_sha256


class TemplateError(UserError):
    """The chat template raised (``raise_exception``) or failed to render."""


@functools.lru_cache(maxsize=16)
def _compile(template: str):
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        # transformers' AssistantTracker marks assistant spans for training masks; rendering only needs the body.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    def raise_exception(message):
        raise TemplateError(f"chat template error: {message}")

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as e:
        raise UserError(f"chat template does not compile: {e} (line {e.lineno})") from None


@dataclass(frozen=True)
class ChatTemplate:
    template: str
    source: str  # where it came from, for the manifest: "gguf:<path>", "tokenizer:<dir>", "file:<path>", "inline"
    bos_token: str = ""
    eos_token: str = ""

    def render(self, messages: Sequence[Mapping[str, Any]], assistant_prefix: str = "",
               add_generation_prompt: bool = True) -> str:
        import jinja2

        try:
            text = _compile(self.template).render(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                tools=None,
                documents=None,
            )
        except TemplateError:
            raise
        except jinja2.TemplateError as e:
            raise TemplateError(f"chat template from {self.source} failed to render: {e}") from None
        from ..prompting import add_prefix

        return add_prefix(text, assistant_prefix)

    def describe(self) -> dict[str, str]:
        return {"source": self.source, "sha256": text_sha256(self.template)}


def from_gguf(path: str | os.PathLike) -> ChatTemplate | None:
    info = read_gguf(path)
    if not info.chat_template:
        return None
    return ChatTemplate(info.chat_template, f"gguf:{Path(path).resolve()}", info.bos_token, info.eos_token)


def _token_content(tok: Any) -> str:
    if isinstance(tok, dict):  # tokenizer_config.json stores AddedToken dicts in older files
        return str(tok.get("content", ""))
    return str(tok or "")


def from_tokenizer_dir(path: str | os.PathLike) -> ChatTemplate | None:
    """Template of a Hugging Face tokenizer directory: ``chat_template.jinja`` or ``tokenizer_config.json``."""
    d = Path(path)
    if d.is_file():
        d = d.parent
    cfg: dict[str, Any] = {}
    cfg_file = d / "tokenizer_config.json"
    if cfg_file.is_file():
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UserError(f"{cfg_file}: not valid JSON ({e})") from None
    bos, eos = _token_content(cfg.get("bos_token")), _token_content(cfg.get("eos_token"))
    jinja_file = d / "chat_template.jinja"
    if jinja_file.is_file():
        return ChatTemplate(jinja_file.read_text(encoding="utf-8"), f"tokenizer:{d.resolve()}", bos, eos)
    tmpl = cfg.get("chat_template")
    if isinstance(tmpl, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in tmpl if isinstance(t, dict)}
        tmpl = named.get("default")
    if isinstance(tmpl, str) and tmpl:
        return ChatTemplate(tmpl, f"tokenizer:{d.resolve()}", bos, eos)
    return None


def load_chat_template(spec: str) -> ChatTemplate:
    """The ``chat_template`` option: a GGUF file, a tokenizer dir / tokenizer_config.json, a jinja file, or the
    template text itself."""
    p = Path(spec).expanduser()
    looks_inline = "{%" in spec or "{{" in spec
    if not looks_inline and p.exists():
        if p.is_file() and p.suffix.lower() == ".gguf":
            t = from_gguf(p)
            if t is None:
                raise UserError(f"chat_template={spec}: the GGUF file has no tokenizer.chat_template")
            return t
        if p.is_dir() or p.name == "tokenizer_config.json":
            t = from_tokenizer_dir(p)
            if t is None:
                raise UserError(f"chat_template={spec}: no chat_template.jinja or chat_template in tokenizer_config.json")
            return t
        return ChatTemplate(p.read_text(encoding="utf-8"), f"file:{p.resolve()}")
    if looks_inline:
        return ChatTemplate(spec, "inline")
    raise UserError(f"chat_template={spec}: no such file, and not a jinja template")
