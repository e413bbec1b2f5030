"""transformers backend: batched generation (left padding) on CPU or GPU; also the loader training uses.

``model`` is ``embedded`` (the SmolLM2 GGUF, dequantized), a ``.gguf`` path, a local model directory, or a hub id
(``org/name`` or ``org/name@revision``).

Sampling happens in a logits processor with one ``torch.Generator`` per request seeded with ``request.seed``, so
each request's random stream is its own, whatever batch it lands in. What is guaranteed: the same requests in the
same batches on the same machine/software give the same texts; a request run alone (``batch_size=1``) always gives
the same text. Across different batch compositions the random stream is the same but the logits may differ in the
last bits (padding changes the matmul shapes), so a rare token can flip; use ``batch_size=1`` where that matters.
"""
from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor,
                          LogitsProcessorList, StoppingCriteria, StoppingCriteriaList)

from .. import hub
from ..errors import UserError
from ..models import EMBEDDED, EMBEDDED_NAME, _cache_dir, file_sha256, is_gguf_path, resolve_gguf
from .base import Backend, Completion, GenRequest, iter_batches
from .chat import ChatTemplate, from_gguf, load_chat_template

DEFAULT_BATCH_SIZE = 8
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def _resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={device}: CUDA is not available on this machine")
    return device


def _resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    if dtype in (None, "", "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise UserError(f"dtype={dtype}: choose one of {', '.join(_DTYPES)} or auto")
    return _DTYPES[dtype]


def load_model_and_tokenizer(model: str, dtype: str | None = None, device: str | None = None):
    """(model, tokenizer, info) for ``embedded``, a GGUF path, a local dir or a hub id[@revision].

    GGUF tokenizers are converted once and cached (the conversion takes tens of seconds)."""
    dev = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    info: dict[str, Any] = {"model": model}
    local_dir = Path(model).expanduser()
    if local_dir.is_dir() and not (local_dir / "config.json").is_file() and any(local_dir.glob("*.gguf")):
        model = str(resolve_gguf(model))  # a directory holding a GGUF file (and no transformers checkpoint)
    try:
        if model == EMBEDDED or is_gguf_path(model):
            path = resolve_gguf(model)
            sha = file_sha256(path)
            info.update(path=str(path), sha256=sha, format="gguf")
            tok_dir = _cache_dir() / "hf-gguf-tokenizers" / sha[:32]
            if (tok_dir / "tokenizer_config.json").is_file():
                tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
            else:
                tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
                try:
                    tokenizer.save_pretrained(str(tok_dir))
                except OSError:
                    pass
            lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch_dtype)
        else:
            name, _, revision = model.partition("@")
            local = Path(name).expanduser()
            if local.exists() and not local.is_dir():
                raise UserError(f"--model {model}: expected a model directory, a .gguf file, 'embedded' or a hub id")
            kw = {"revision": revision} if revision else {}
            src = str(local) if local.is_dir() else name
            if not local.is_dir():
                kw.update(hub.model_load_kwargs(name, revision or None))
            tokenizer = AutoTokenizer.from_pretrained(src, **kw)
            lm = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype, **kw)
            info.update(path=src, revision=revision or getattr(lm.config, "_commit_hash", None), format="transformers")
    except UserError:
        raise
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"--model {model}: cannot load it with transformers ({first})") from None
    lm.to(dev)
    lm.eval()
    info.update(device=dev, dtype=str(torch_dtype).removeprefix("torch."))
    return lm, tokenizer, info


def encode_prompts(tokenizer, prompts: list[str]):
    """Rendered prompts -> padded ids. No special tokens are added: the chat template wrote them (R1-family
    templates write ``{{ bos_token }}``; with ``add_special_tokens=True`` a Llama-style tokenizer adds a second)."""
    return tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")


class _RowSampler(LogitsProcessor):
    """Samples each row with its own generator/temperature/top-p and leaves only that token finite, so generate's
    greedy step picks it."""

    def __init__(self, reqs: Sequence[GenRequest]):
        self.temps = [float(r.temperature) for r in reqs]
        self.top_ps = [float(r.top_p) for r in reqs]
        self.gens = [torch.Generator(device="cpu").manual_seed(int(r.seed) & 0xFFFFFFFFFFFF) for r in reqs]

    def __call__(self, input_ids, scores):
        scores = scores.float()
        out = torch.full_like(scores, float("-inf"))
        for i in range(scores.shape[0]):
            row = scores[i]
            if self.temps[i] <= 0:
                tok = int(torch.argmax(row))
            else:
                probs = torch.softmax(row / self.temps[i], dim=-1)
                if self.top_ps[i] < 1.0:
                    sp, si = torch.sort(probs, descending=True)
                    cum = torch.cumsum(sp, dim=-1)
                    keep = (cum - sp) < self.top_ps[i]  # smallest prefix whose mass reaches top_p; never empty
                    probs = torch.zeros_like(probs).scatter_(0, si[keep], sp[keep])
                tok = int(torch.multinomial(probs.cpu(), 1, generator=self.gens[i]))
            out[i, tok] = 0.0
        return out


class _RowStops(StoppingCriteria):
    """Per-row end: EOS, a stop string in the decoded tail, or the row's own max_tokens."""

    def __init__(self, tokenizer, reqs: Sequence[GenRequest], prompt_width: int, eos_ids: set[int], t0: float):
        self.tok = tokenizer
        self.reqs = reqs
        self.width = prompt_width
        self.eos = eos_ids
        self.t0 = t0
        self.count: list[int | None] = [None] * len(reqs)  # generated tokens at the end (EOS included)
        self.reason: list[str | None] = [None] * len(reqs)
        self.latency: list[float] = [0.0] * len(reqs)
        self.tail = [max((len(s) for s in r.stop), default=0) * 4 + 8 for r in reqs]

    def __call__(self, input_ids, scores, **kwargs):
        n = input_ids.shape[1] - self.width
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i, r in enumerate(self.reqs):
            if self.count[i] is not None:
                done[i] = True
                continue
            reason = None
            if int(input_ids[i, -1]) in self.eos:
                reason = "stop"
            elif r.stop:
                tail = self.tok.decode(input_ids[i, max(self.width, input_ids.shape[1] - self.tail[i]):],
                                       skip_special_tokens=True)
                if any(s and s in tail for s in r.stop):
                    reason = "stop"
            if reason is None and n >= r.max_tokens:
                reason = "length"
            if reason:
                self.count[i], self.reason[i] = n, reason
                self.latency[i] = time.perf_counter() - self.t0
                done[i] = True
        return done


class HFBackend(Backend):
    name = "hf"

    def __init__(self, model: str = EMBEDDED, *, batch_size: int | None = None, dtype: str | None = None,
                 device: str | None = None, threads: int | None = None, chat_template: str | None = None,
                 **unknown: Any):
        if unknown:
            raise UserError(f"option(s) {', '.join(sorted(unknown))} do not apply to the hf backend "
                            "(it takes batch_size, dtype, device, threads, chat_template)")
        if threads:
            torch.set_num_threads(int(threads))
        self.model_arg = model
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE)
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.info = load_model_and_tokenizer(model, dtype, device)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.template = self._template(chat_template)
        self.threads = threads

    def _template(self, spec: str | None) -> ChatTemplate | None:
        if spec:
            return load_chat_template(spec)
        tmpl = getattr(self.tokenizer, "chat_template", None)
        if isinstance(tmpl, dict):
            tmpl = tmpl.get("default")
        if isinstance(tmpl, str) and tmpl:
            src = f"gguf:{self.info['path']}" if self.info.get("format") == "gguf" else f"tokenizer:{self.info['path']}"
            return ChatTemplate(tmpl, src, self.tokenizer.bos_token or "", self.tokenizer.eos_token or "")
        if self.info.get("format") == "gguf":
            return from_gguf(self.info["path"])
        return None

    def render(self, req: GenRequest) -> str:
        if self.template is None:
            raise UserError(f"{self.model_arg} has no chat template; pass the chat_template option")
        return self.template.render(req.messages, req.assistant_prefix)

    def model_names(self) -> list[str]:
        return [self.model_arg, str(self.info.get("path") or ""),
                str(getattr(self.model.config, "_name_or_path", "") or "")]

    def wire(self, req: GenRequest) -> dict[str, Any]:
        text = self.render(req)
        ids = encode_prompts(self.tokenizer, [text])["input_ids"][0].tolist()
        return {"to": f"hf (transformers, {len(ids)} prompt tokens, no special tokens added)", "text": text}

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(src, int):
                ids.add(src)
            elif src:
                ids.update(int(x) for x in src)
        return ids

    @torch.inference_mode()
    def _generate_batch(self, reqs: list[GenRequest]) -> list[Completion]:
        prompts = [self.render(r) for r in reqs]
        enc = encode_prompts(self.tokenizer, prompts)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        width = enc["input_ids"].shape[1]
        prompt_lens = [int(x) for x in enc["attention_mask"].sum(dim=1)]
        limit = getattr(self.model.config, "max_position_embeddings", None) or 1 << 30
        max_new = max(1, min(max(r.max_tokens for r in reqs), limit - width))
        eos = self._eos_ids()
        t0 = time.perf_counter()
        stops = _RowStops(self.tokenizer, reqs, width, eos, t0)
        cfg = GenerationConfig(max_new_tokens=max_new, do_sample=False, num_beams=1,
                               pad_token_id=self.tokenizer.pad_token_id, eos_token_id=sorted(eos) or None)
        out = self.model.generate(**enc, generation_config=cfg, logits_processor=LogitsProcessorList([_RowSampler(reqs)]),
                                  stopping_criteria=StoppingCriteriaList([stops]))
        elapsed = time.perf_counter() - t0
        results = []
        for i, r in enumerate(reqs):
            gen = out[i, width:].tolist()
            count, reason = stops.count[i], stops.reason[i]
            if count is None:  # ran to max_new (capped by the model's context)
                count, reason = len(gen), "length"
            ids = gen[:count]
            if ids and ids[-1] in eos and reason == "stop":
                ids = ids[:-1]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if reason == "stop":
                hits = [j for j in (text.find(s) for s in r.stop if s) if j >= 0]
                if hits:
                    text = text[:min(hits)]
            extra = {}
            if reason == "length" and count < r.max_tokens:  # the model's context ran out before max_tokens
                extra["max_tokens_granted"] = max_new
            results.append(Completion(text=text, prompt_tokens=prompt_lens[i], completion_tokens=count,
                                      finish_reason=reason, latency=stops.latency[i] or elapsed, extra=extra))
        return results

    def _run(self, requests: list[GenRequest]) -> Iterator[tuple[int, Completion]]:
        start = 0
        for batch in iter_batches(requests, self.batch_size):
            for j, comp in enumerate(self._generate_batch(batch)):
                yield start + j, comp
            start += len(batch)

    def describe(self) -> dict[str, Any]:
        info = dict(self.info)
        return {
            "backend": self.name,
            "model": self.model_arg,
            "name": EMBEDDED_NAME if self.model_arg == EMBEDDED else getattr(self.model.config, "_name_or_path", None),
            **{k: v for k, v in info.items() if k != "model"},
            "chat_template": self.template.describe() if self.template else None,
            "transformers": importlib.metadata.version("transformers"),
            "torch": torch.__version__,
            "sampler": "per-request torch.Generator(seed); temperature -> top_p; greedy at temperature 0",
            "options": {"batch_size": self.batch_size, "dtype": info.get("dtype"), "device": info.get("device"),
                        "threads": self.threads or torch.get_num_threads()},
        }
