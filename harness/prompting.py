"""The prompt the model really sees: the think prefix exactly once, the `--think-prefix auto|on|off` decision, and a
preview of rendered requests (`r1 eval --dry-run`; `r1 train` / `r1 distill` dry-runs can call ``preview``).

Since 2025-02 the chat templates of DeepSeek-R1 and the R1-Distill models (and QwQ-32B since its second upload) end
the generation prompt with ``<think>\\n`` themselves; older revisions end at the assistant tag. The paper's protocol
wants the answer to start with ``<think>\\n``, so the prefix is added only when the rendered prompt does not already
end with it. The stored completion is ``prefix + generated text`` in both cases, so a sample reads the same whichever
template revision produced it (scoring and resume do not change).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .config import THINK_PREFIX
from .errors import UserError

THINK_MODES = ("auto", "on", "off")
_PROBE = ({"role": "user", "content": "hi"},)
# A task's samples "mostly never closed <think>" above this fraction: the summary warns and names the flag.
UNCLOSED_THINK_WARN = 0.5


def add_prefix(rendered: str, prefix: str) -> str:
    """``rendered`` ending with ``prefix`` exactly once. A template that ends with the prefix minus trailing
    whitespace (``...<think>``) gets only the missing whitespace, so the model never sees the tag twice."""
    if not prefix or rendered.endswith(prefix):
        return rendered
    core = prefix.rstrip()
    if core and core != prefix and rendered.endswith(core):
        return rendered + prefix[len(core):]
    return rendered + prefix


def generation_prompt(template) -> str:
    """The template's generation prompt for one user message "hi" (what SOURCE.md of the template history uses)."""
    return template.render(list(_PROBE))


def template_forces_think(template) -> bool:
    """The template itself ends the generation prompt with ``<think>`` (then adding the prefix is a no-op)."""
    try:
        return generation_prompt(template).rstrip().endswith(THINK_PREFIX.rstrip())
    except UserError:
        return False


def template_mentions_think(template) -> bool:
    return "<think>" in template.template or "</think>" in template.template


@dataclass(frozen=True)
class ThinkDecision:
    mode: str  # what the user asked for: auto | on | off
    enabled: bool  # the answer starts with THINK_PREFIX (added by us or already by the chat template)
    reason: str
    template_adds_it: bool = False  # the chat template writes the prefix itself; we add nothing

    @property
    def prefix(self) -> str:
        return THINK_PREFIX if self.enabled else ""

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "enabled": self.enabled, "reason": self.reason}


def decide_think_prefix(mode: str | bool | None, template=None, names: Iterable[str] = ()) -> ThinkDecision:
    """Resolve ``--think-prefix``. ``template`` is the chat template the backend renders with (None when the
    server renders and we cannot see its template); ``names`` identify the model for ``harness.models``'
    registry (hub id, path, GGUF ``general.name``)."""
    from .models import model_family

    if isinstance(mode, bool):  # old callers / manifests: a bool means on/off
        mode = "on" if mode else "off"
    mode = (mode or "auto").strip().lower()
    if mode not in THINK_MODES:
        raise UserError(f"--think-prefix {mode}: choose one of {', '.join(THINK_MODES)}")
    forced = template is not None and template_forces_think(template)
    if forced:
        why = f"the chat template ({template.source}) ends the generation prompt with <think> itself; not added again"
        if mode == "off":
            why += "; 'off' cannot remove it without another template (--chat-template)"
        return ThinkDecision(mode, True, why, template_adds_it=True)
    if mode == "on":
        return ThinkDecision(mode, True, "--think-prefix on: '<think>\\n' appended to the generation prompt")
    if mode == "off":
        return ThinkDecision(mode, False, "--think-prefix off")
    names = [n for n in names if n]
    fam = model_family(names)
    if fam is not None:
        reasoning, label, name = fam
        kind = "a reasoning model" if reasoning else "not a reasoning model"
        return ThinkDecision(mode, reasoning, f"model registry: {name!r} is {label}, {kind}")
    if template is not None and template_mentions_think(template):
        return ThinkDecision(mode, True, f"the chat template ({template.source}) handles <think> blocks")
    where = "its chat template does not mention <think>" if template is not None else "no chat template is visible"
    shown = ", ".join(repr(n) for n in names[:3]) or "the model"
    return ThinkDecision(mode, False, f"no reasoning marker: {where} and {shown} is not in the model registry "
                                      "(--think-prefix on to force it)")


def render_prompt(messages: Sequence[dict], template, think_prefix: bool | str) -> str:
    """Chat template + generation prompt + the think prefix exactly once. ``think_prefix``: a bool (the paper's
    "<think>\\n") or the prefix text itself. For training / distill code that renders prompts by hand."""
    prefix = THINK_PREFIX if think_prefix is True else (think_prefix or "")
    return template.render(messages, prefix)


# ------------------------------------------------------------------------------------------------- preview
def describe_request(backend, req, index: int | None = None) -> str:
    """A human-readable block: where the request goes, the exact text the model receives, sampling and seed."""
    sent = backend.wire(req)
    head = f"--- request {index}" if index is not None else "---"
    if req.key is not None:
        head += f": {' / '.join(str(k) for k in req.key)}" if isinstance(req.key, tuple) else f": {req.key}"
    lines = [head,
             f"sampling: temperature={req.temperature} top_p={req.top_p} max_tokens={req.max_tokens} "
             f"seed={req.seed} stop={list(req.stop)}"]
    lines.append(f"sent to: {sent['to']}")
    for note in sent.get("notes", []):
        lines.append(f"note: {note}")
    if "text" in sent:
        lines.append(f"prompt ({len(sent['text'])} chars, exactly as the model receives it, between the markers):")
        lines.append(">>>>>>")
        lines.append(sent["text"])
        lines.append("<<<<<<")
        lines.append(f"prompt ending: {sent['text'][-60:]!r}")
    else:
        lines.append("request body (the server renders the chat template):")
        lines.append(json.dumps(sent["body"], ensure_ascii=False, indent=1))
    return "\n".join(lines)


def preview(backend, requests: Sequence, decision: ThinkDecision | None = None, limit: int = 3) -> str:
    """The first ``limit`` requests as the model will receive them, for dry-runs. ``backend`` is any harness
    backend (or ``template_renderer(...)`` when loading the weights is not wanted)."""
    out = []
    if decision is not None:
        out.append(f"think prefix: {decision.mode} -> {'on' if decision.enabled else 'off'} ({decision.reason})")
    tmpl = getattr(backend, "template", None)
    if tmpl is not None:
        out.append(f"chat template: {tmpl.source} sha256={tmpl.describe()['sha256'][:16]}")
    for i, r in enumerate(list(requests)[:max(0, limit)]):
        out.append(describe_request(backend, r, i))
    if len(requests) > limit:
        out.append(f"... {len(requests) - limit} more request(s) not shown")
    return "\n".join(out)


class TemplateRenderer:
    """The rendering half of the hf / vllm backends without their weights: for dry-runs on a CPU box."""

    def __init__(self, name: str, model: str, template, bos_note: str = ""):
        self.name, self.model, self.template, self.bos_note = name, model, template, bos_note

    def model_names(self) -> list[str]:
        return [self.model]

    def wire(self, req) -> dict[str, Any]:
        if self.template is None:
            raise UserError(f"{self.model} has no chat template; pass --chat-template")
        text = self.template.render(req.messages, req.assistant_prefix)
        notes = [self.bos_note] if self.bos_note else []
        return {"to": f"{self.name} (tokenized here without adding special tokens)", "text": text, "notes": notes}


def renderer(backend: str, model: str, **options: Any):
    """Something ``preview`` / ``decide_think_prefix`` can use for ``backend``/``model`` without loading weights
    (close it after use): for `r1 train` / `r1 distill` dry-runs as much as for `r1 eval --dry-run`."""
    from .backends.base import make_backend

    r = template_renderer(backend, model, options.get("chat_template"))
    return r if r is not None else make_backend(backend, model, **options)


def template_renderer(backend: str, model: str, chat_template: str | None = None):
    """A renderer for ``backend``/``model`` that loads no weights: the llamacpp and openai backends are cheap to
    construct (weights load in workers / on the server), hf and vllm get a TemplateRenderer."""
    from .backends.chat import from_gguf, from_tokenizer_dir, load_chat_template
    from .models import EMBEDDED, is_gguf_path, resolve_gguf

    if backend not in ("hf", "vllm"):
        return None
    if chat_template:
        tmpl = load_chat_template(chat_template)
    elif model == EMBEDDED or is_gguf_path(model):
        tmpl = from_gguf(resolve_gguf(model))
    else:
        from pathlib import Path

        name = model.partition("@")[0]
        if Path(name).expanduser().is_dir():
            tmpl = from_tokenizer_dir(name)
        else:
            try:
                from transformers import AutoTokenizer
            except ImportError:
                raise UserError(f"--dry-run for hub model {model} needs transformers (pip install 'r1-harness[hf]')"
                                ) from None
            from . import hub

            rev = model.partition("@")[2] or None
            kw = hub.model_load_kwargs(name, rev, filename="tokenizer_config.json")
            try:
                tok = AutoTokenizer.from_pretrained(name, revision=rev, **kw)
            except (OSError, ValueError) as e:
                raise UserError(f"--model {model}: cannot load its tokenizer ({str(e).splitlines()[0][:200]})") from None
            from .backends.chat import ChatTemplate

            t = tok.chat_template
            tmpl = ChatTemplate(t, f"tokenizer:{model}", tok.bos_token or "", tok.eos_token or "") if t else None
    return TemplateRenderer(backend, model, tmpl)


def unclosed_think_stop(record: dict) -> bool:
    """The sample stopped on its own (finish_reason "stop") inside a ``<think>`` block it never closed: what a
    plain chat model does when forced to start with "<think>\\n" (it answers, then ends the turn, and the verifier
    finds no answer after ``</think>``)."""
    if record.get("finish_reason") != "stop":
        return False
    text = record.get("completion") or ""
    start = text.rfind("<think>")
    return start >= 0 and "</think>" not in text[start:]


def think_warning(task: str, result: dict, decision: dict | None) -> str | None:
    """The run summary's warning when most of a task's samples stopped with ``<think>`` unclosed."""
    rate = result.get("unclosed_think_stop_rate")
    if rate is None or rate <= UNCLOSED_THINK_WARN:
        return None
    if decision and not decision.get("enabled"):
        return (f"warning: {task}: {100 * rate:.0f}% of samples opened <think> by themselves and stopped without "
                f"closing it (think prefix off: {decision.get('reason')}); check the chat template and stop strings")
    return (f"warning: {task}: {100 * rate:.0f}% of samples stopped on their own without closing <think>; this "
            f"model may not be a reasoning model (think prefix: {(decision or {}).get('reason', 'unknown')}). "
            f"Re-run with --think-prefix off into another --out to compare.")
