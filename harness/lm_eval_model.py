"""Our backends as an lm-evaluation-harness model: ``--model r1-harness``.

lm-eval 0.4 finds models only through its registry, which holds what lm-eval itself ships plus whatever classes
were registered by code imported into the process; it has no plugin entry points for models. So the stock
``lm_eval`` command cannot see this class, and this module doubles as a drop-in for it: it registers the model,
then hands the command line to lm-eval's own CLI unchanged.

    python -m harness.lm_eval_model --model r1-harness \\
        --model_args backend=llamacpp,model=embedded,max_gen_toks=256,think_prefix=off \\
        --tasks TASKS [--include_path DIR] [--apply_chat_template] [--log_samples --output_path OUT] [--limit N]

(``r1-lm-eval ...`` is the same once the console script is installed.) From Python, ``import
harness.lm_eval_model`` and then ``lm_eval.simple_evaluate(model="r1-harness", ...)``.

Model args: ``backend`` (llamacpp | hf | openai | vllm), ``model`` (default: embedded), ``max_gen_toks``,
``temperature``, ``top_p``, ``seed``, ``think_prefix`` (auto | on | off, as ``r1 eval --think-prefix``; default auto),
``think_end_token`` (return only the text after it to lm-eval's filters, as lm-eval's hf model does; leave unset to
keep the reasoning in ``--log_samples`` for ``r1 import``), ``system_prompt``, ``gen_kwargs`` (protocol | task, below);
any other key goes to the backend.

Defaults are the paper's protocol, as in ``r1 eval``: temperature 0.6, top-p 0.95, 32,768 generated tokens, the think
prefix decided by ``auto``. What wins, deliberately:

1. A value given in ``--model_args`` (``temperature``, ``top_p``, ``max_gen_toks``) wins over everything.
2. Otherwise, with ``gen_kwargs=protocol`` (default), the paper protocol wins over a task YAML's ``do_sample``,
   ``temperature``, ``top_p`` and ``max_gen_toks``: lm-eval's YAMLs are written for short greedy answers of plain
   models (e.g. 256 tokens), which would cut a reasoning trace and score it 0. Each overridden key is logged once.
3. ``gen_kwargs=task`` gives lm-eval's semantics back: the task's values win, ``do_sample=false`` means greedy, and
   the protocol fills only what the task leaves unset.
4. ``until`` (the task's stop sequences) never cuts the reasoning: with the think prefix on they are not sent to the
   backend, and the answer after ``</think>`` is cut at the first of them (what lm-eval's filters then see). Without
   the think prefix they are the backend's stop sequences, as in lm-eval.

Requests: a plain lm-eval context becomes one user message (our backends render the model's chat template); with
``--apply_chat_template`` lm-eval's chat turns are passed through as messages, and a trailing assistant turn (a task's
``gen_prefix``) becomes the forced start of the answer. Log-likelihood requests (multiple-choice-by-logprob tasks,
perplexity) are computed by lm-eval's own HF model (``HFLM``) over the same model when ``backend=hf`` (``embedded`` and
``.gguf`` files are dequantized by transformers); other backends refuse them with a message naming the alternatives.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from .backends.base import GenRequest, make_backend
from .config import (DEFAULT_BACKEND, DEFAULT_MODEL, DEFAULT_SEED, PAPER_MAX_TOKENS, PAPER_TEMPERATURE, PAPER_TOP_P,
                     THINK_PREFIX)
from .errors import UserError
from .task import sample_seed

log = logging.getLogger("r1.lm_eval")

MODEL_NAME = "r1-harness"
DEFAULT_MAX_GEN_TOKS = PAPER_MAX_TOKENS  # the paper's budget (lm-eval's own default is 256)
GEN_KWARGS_MODES = ("protocol", "task")
_PROTOCOL_KEYS = ("do_sample", "temperature", "top_p", "max_gen_toks")


class ChatStr(str):
    """A rendered-later chat: lm-eval stores and hashes it as a string, we read the messages back from it."""

    @classmethod
    def from_messages(cls, messages: list[dict[str, str]]) -> "ChatStr":
        return cls(json.dumps(messages, ensure_ascii=False))

    def messages(self) -> list[dict[str, str]]:
        return json.loads(self)


class LoglikelihoodUnsupported(RuntimeError):
    pass


def _parse_chat(text: str) -> list[dict[str, str]] | None:
    if not text.startswith("[{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, list) and obj and all(isinstance(m, dict) and "role" in m and "content" in m for m in obj):
        return obj
    return None


def _cut(text: str, until: list[str]) -> str:
    for s in until:
        text = text.split(s)[0]
    return text


def _think_mode(v: Any) -> str:
    """lm-eval passes model args as strings (or bools): true/false/1/0 are the old on/off."""
    if isinstance(v, bool):
        return "on" if v else "off"
    s = str(v if v is not None else "auto").strip().lower()
    if s in ("auto", "on", "off"):
        return s
    if s in ("1", "true", "yes"):
        return "on"
    if s in ("0", "false", "no"):
        return "off"
    raise UserError(f"think_prefix={v}: choose one of auto, on, off")


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


@register_model(MODEL_NAME)
class R1HarnessLM(LM):
    def __init__(self, backend: str = DEFAULT_BACKEND, model: str = DEFAULT_MODEL, max_gen_toks: int | None = None,
                 temperature: float | None = None, top_p: float | None = None, seed: int = DEFAULT_SEED,
                 think_prefix: Any = "auto", think_end_token: str | None = None, system_prompt: str | None = None,
                 gen_kwargs: str = "protocol", batch_size: Any = None, max_batch_size: Any = None, device: Any = None,
                 **backend_options: Any):
        super().__init__()
        # batch_size / max_batch_size / device come from lm-eval's CLI for every model; our backends schedule their
        # own batches and devices, so only log-likelihood scoring (lm-eval's HF model) uses them.
        self.backend_name = str(backend)
        self.model_name = str(model)
        # None = not given by the user: the protocol default applies (and a task may override it, see gen_kwargs)
        self.user_max_gen_toks = None if max_gen_toks in (None, "") else int(max_gen_toks)
        self.user_temperature = None if temperature in (None, "") else float(temperature)
        self.user_top_p = None if top_p in (None, "") else float(top_p)
        self.max_gen_toks = self.user_max_gen_toks or DEFAULT_MAX_GEN_TOKS
        self.temperature = PAPER_TEMPERATURE if self.user_temperature is None else self.user_temperature
        self.top_p = PAPER_TOP_P if self.user_top_p is None else self.user_top_p
        self.seed = int(seed)
        self.gen_kwargs_mode = str(gen_kwargs).strip().lower()
        if self.gen_kwargs_mode not in GEN_KWARGS_MODES:
            raise UserError(f"gen_kwargs={gen_kwargs}: choose one of {', '.join(GEN_KWARGS_MODES)}")
        self.think_mode = _think_mode(think_prefix)
        self._think = None  # harness.prompting.ThinkDecision, resolved against the backend for auto
        self.think_end_token = think_end_token or None
        self.system_prompt = system_prompt or None
        self.backend_options = backend_options
        self._backend = None
        self._hflm = None
        self._hf_batch_size = batch_size if batch_size not in (None, "") else 1
        self._hf_device = device or None
        self._warned: set = set()
        self._chat_applied = False

    # --- lm-eval plumbing --------------------------------------------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return f"{MODEL_NAME}:{self.backend_name}:{self.model_name}"

    def chat_template(self, chat_template: bool | str = False) -> str:
        # The backend applies the model's own template; lm-eval only records this string in its config.
        return f"{self.backend_name} backend chat template"

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        self._chat_applied = True
        return ChatStr.from_messages(list(chat_history))

    def get_model_info(self) -> dict:
        info = self.backend.describe() if self._backend is not None else {}
        out = {"r1_backend": self.backend_name, "r1_model": self.model_name, "r1_model_info": info,
               "r1_gen_kwargs": self.gen_kwargs_mode}
        if self._think is not None:
            out["r1_think_prefix"] = self._think.to_dict()
        return out

    @property
    def think(self):
        """The think-prefix decision (``auto`` needs the backend's chat template, so it is made on first use)."""
        if self._think is None:
            from .prompting import decide_think_prefix

            if self.think_mode == "auto":
                self._think = decide_think_prefix("auto", getattr(self.backend, "template", None),
                                                  self.backend.model_names())
            else:
                self._think = decide_think_prefix(self.think_mode)
            log.warning("r1-harness: think prefix %s -> %s (%s)", self._think.mode,
                        "on" if self._think.enabled else "off", self._think.reason)
        return self._think

    @property
    def assistant_prefix(self) -> str:
        return THINK_PREFIX if self.think.enabled else ""

    @property
    def backend(self):
        # Created on first use: refusing a log-likelihood task should not cost a model load.
        if self._backend is None:
            self._backend = make_backend(self.backend_name, self.model_name, **self.backend_options)
        return self._backend

    # --- generation --------------------------------------------------------------------------------------------
    def _messages(self, context: str) -> tuple[list[dict[str, str]], str]:
        """(messages, forced answer start) for one lm-eval context."""
        msgs: list[dict[str, str]] | None = None
        if isinstance(context, ChatStr):
            msgs = context.messages()
        elif self._chat_applied and isinstance(context, str):
            msgs = _parse_chat(context)  # lm-eval rebuilt the string: the type is gone, the JSON is not
        prefix = ""
        if msgs is None:
            msgs = [{"role": "user", "content": str(context)}]
        elif msgs and msgs[-1].get("role") == "assistant":
            prefix = msgs[-1].get("content") or ""
            msgs = msgs[:-1]
        if self.system_prompt and not any(m.get("role") == "system" for m in msgs):
            msgs = [{"role": "system", "content": self.system_prompt}] + msgs
        return msgs, self.assistant_prefix + prefix

    def _sampling(self, gen_kwargs: dict[str, Any]) -> tuple[float, float, int, list[str]]:
        """(temperature, top_p, max tokens, until) for one request; the precedence is the module docstring's."""
        kw = dict(gen_kwargs or {})
        until = kw.pop("until", None) or []
        if isinstance(until, str):
            until = [until]
        task = {k: kw.pop(k) for k in _PROTOCOL_KEYS if k in kw}
        if self.gen_kwargs_mode == "protocol":
            overridden = sorted(k for k in task if (k, task[k]) not in self._warned)
            for k in overridden:
                self._warned.add((k, task[k]))
                log.warning("r1-harness: the task's %s=%r is overridden by the paper protocol (model arg "
                            "gen_kwargs=task to keep it)", k, task[k])
            task = {}
        max_toks = self.user_max_gen_toks or int(task.get("max_gen_toks") or self.max_gen_toks)
        temperature = self.user_temperature
        if temperature is None:
            temperature = float(task["temperature"]) if task.get("temperature") is not None else self.temperature
            if "do_sample" in task and not _as_bool(task["do_sample"]):
                temperature = 0.0  # lm-eval's do_sample=false is greedy whatever the temperature says
        top_p = self.user_top_p
        if top_p is None:
            top_p = float(task["top_p"]) if task.get("top_p") is not None else self.top_p
        for k in kw:
            if k not in self._warned:
                self._warned.add(k)
                log.warning("r1-harness: generation kwarg %r is not supported by our backends and is ignored", k)
        return float(temperature), float(top_p), max_toks, [s for s in until if s]

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        gen_requests: list[GenRequest] = []
        stops: list[list[str]] = []
        seen: dict[str, int] = {}
        for i, req in enumerate(requests):
            context, gen_kwargs = req.args[0], req.args[1]
            msgs, prefix = self._messages(context)
            temperature, top_p, max_toks, until = self._sampling(gen_kwargs)
            # lm-eval repeats a request object for `repeats: k`; the n-th copy gets the n-th seed, so repeats sample
            # different answers and a rerun samples the same ones.
            ident = hashlib.sha256(json.dumps([msgs, prefix, gen_kwargs], sort_keys=True, default=str).encode()).hexdigest()
            nth = seen.get(ident, 0)
            seen[ident] = nth + 1
            seed = sample_seed(self.seed, "lm-eval", ident, nth)
            # stop sequences must not cut the reasoning: with thinking on they apply to the answer afterwards
            stop = () if self.think.enabled else tuple(until)
            gen_requests.append(GenRequest(messages=msgs, max_tokens=max_toks, temperature=temperature, top_p=top_p,
                                           seed=seed, stop=stop, assistant_prefix=prefix, key=i))
            stops.append(until)
        out: list[str | None] = [None] * len(gen_requests)
        bar = None
        if not disable_tqdm:
            from tqdm import tqdm

            bar = tqdm(total=len(gen_requests), desc="r1-harness generate_until")
        for req, comp in self.backend.stream(gen_requests):
            text = self._postprocess(req.assistant_prefix + comp.text, stops[req.key])
            out[req.key] = text
            self.cache_hook.add_partial("generate_until", requests[req.key].args, text)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        missing = [i for i, t in enumerate(out) if t is None]
        if missing:
            raise RuntimeError(f"backend {self.backend_name} returned no completion for {len(missing)} of "
                               f"{len(out)} requests")
        return out  # type: ignore[return-value]

    def _postprocess(self, text: str, until: list[str]) -> str:
        # Same order as lm-eval's own models: drop the reasoning first, then cut at the first stop sequence.
        if self.think_end_token:
            text = text.split(self.think_end_token)[-1].lstrip()
        elif self.think.enabled:  # keep the reasoning, cut only the answer after it
            head, sep, tail = text.rpartition("</think>")
            if not sep:
                return text  # the reasoning never closed: there is no answer to cut
            return head + sep + _cut(tail, until)
        return _cut(text, until)

    # --- log-likelihood ----------------------------------------------------------------------------------------
    def _loglikelihood_model(self):
        if self.backend_name != "hf":
            raise LoglikelihoodUnsupported(
                f"r1-harness: backend {self.backend_name!r} cannot score log-likelihoods (this task's output_type is "
                "loglikelihood / multiple_choice / loglikelihood_rolling). Use backend=hf, run the task's generative "
                "variant (e.g. a *_generative or *_cot_zeroshot task), or use lm-eval's own model for it "
                "(--model hf / --model gguf / --model local-completions).")
        if self._hflm is None:
            # lm-eval's reference implementation over the same weights the hf backend loads (a GGUF is dequantized
            # by transformers, as the hf backend does), so log-likelihoods mean exactly what they mean in lm-eval.
            from lm_eval.models.huggingface import HFLM

            from .models import is_gguf_path, resolve_gguf

            kw: dict[str, Any] = {"batch_size": self._hf_batch_size}
            if self._hf_device:
                kw["device"] = self._hf_device
            if self.model_name == "embedded" or is_gguf_path(self.model_name):
                path = resolve_gguf(self.model_name)
                kw.update(pretrained=str(path.parent), gguf_file=path.name)
            else:
                kw["pretrained"] = self.model_name
            self._hflm = HFLM(**kw)
        return self._hflm

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._loglikelihood_model().loglikelihood(requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        return self._loglikelihood_model().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def main(argv: list[str] | None = None) -> int:
    """lm-eval's CLI with the r1-harness model registered (this module's import did that)."""
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        cli_evaluate()
    except (LoglikelihoodUnsupported, UserError) as e:
        print(f"lm_eval: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
