"""Offline vLLM (GPU machines): ``vllm.LLM`` with tensor parallelism inside one engine and data parallelism as
``data_parallel_size`` engine processes, each owning ``tensor_parallel_size`` GPUs (``CUDA_VISIBLE_DEVICES``), fed
disjoint shards of every request list.

Prompts are rendered here with the model's chat template (or the ``chat_template`` option) plus the assistant
prefix, tokenized without special tokens (the template already has them) and passed as token ids, so vLLM sees the
same prompt as the other backends. Each request carries its own ``seed`` in its SamplingParams.
"""
from __future__ import annotations

import importlib.metadata
import multiprocessing as mp
import os
import queue
from typing import Any, Iterator

from ..errors import UserError
from .base import Backend, Completion, GenRequest
from .chat import ChatTemplate, load_chat_template


def sampling_kwargs(r: GenRequest) -> dict[str, Any]:
    """GenRequest -> vllm.SamplingParams keyword arguments (only temperature and top-p shape the distribution)."""
    greedy = r.temperature <= 0
    return {
        "n": 1,
        "temperature": 0.0 if greedy else float(r.temperature),
        "top_p": 1.0 if greedy else float(r.top_p),
        "max_tokens": int(r.max_tokens),
        "seed": int(r.seed),
        "stop": list(r.stop) or None,
        "skip_special_tokens": True,
    }


def _require_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise UserError("the vllm backend needs vLLM on a CUDA machine: pip install 'r1-harness[vllm]' there "
                        "(vllm is not installed here; on CPU use --backend llamacpp or hf)") from None
    import torch

    if not torch.cuda.is_available():
        raise UserError("the vllm backend needs a CUDA GPU and none is visible (on CPU use --backend llamacpp or hf)")
    return torch.cuda.device_count()


class _Engine:
    def __init__(self, model: str, tp: int, dtype: str | None, n_ctx: int | None, template_spec: str | None):
        from vllm import LLM

        kw: dict[str, Any] = {"model": model, "tensor_parallel_size": tp, "dtype": dtype or "auto", "seed": 0}
        if n_ctx:
            kw["max_model_len"] = int(n_ctx)
        self.llm = LLM(**kw)
        self.tokenizer = self.llm.get_tokenizer()
        if template_spec:
            self.template = load_chat_template(template_spec)
        else:
            tmpl = getattr(self.tokenizer, "chat_template", None)
            if not tmpl:
                raise UserError(f"{model} has no chat template; pass the chat_template option")
            self.template = ChatTemplate(tmpl, f"tokenizer:{model}", self.tokenizer.bos_token or "",
                                         self.tokenizer.eos_token or "")

    def run(self, items: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        from vllm import SamplingParams

        prompts, params, granted = [], [], []
        max_len = _max_model_len(self.llm)
        for _, it in items:
            text = self.template.render(it["messages"], it["assistant_prefix"])
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            prompts.append({"prompt_token_ids": ids})
            sampling = dict(it["sampling"])
            # vLLM rejects or silently shortens a request whose prompt + max_tokens exceed the context; ask for
            # what fits and record the smaller budget on the sample
            g = grant_max_tokens(sampling["max_tokens"], len(ids), max_len)
            granted.append(g)
            sampling["max_tokens"] = g
            params.append(SamplingParams(**sampling))
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for (i, it), o, g in zip(items, outs, granted):
            c = o.outputs[0]
            m = getattr(o, "metrics", None)
            latency = 0.0
            if m is not None and getattr(m, "finished_time", None) and getattr(m, "arrival_time", None):
                latency = float(m.finished_time - m.arrival_time)
            results.append((i, {"text": c.text, "prompt_tokens": len(o.prompt_token_ids or []),
                                "completion_tokens": len(c.token_ids),
                                "finish_reason": "length" if c.finish_reason == "length" else "stop",
                                "latency": latency,
                                "extra": {} if c.finish_reason in ("stop", "length") else
                                {"server_finish_reason": c.finish_reason}}))
            if g < it["sampling"]["max_tokens"] and c.finish_reason == "length":
                results[-1][1]["extra"]["max_tokens_granted"] = g
        return results


def grant_max_tokens(requested: int, prompt_tokens: int, max_model_len: int | None) -> int:
    """Tokens a request may generate: ``requested``, or what the context leaves after the prompt (at least 1, so
    an over-long prompt still yields a record, cut at once, instead of an engine error)."""
    if not max_model_len:
        return int(requested)
    return max(1, min(int(requested), int(max_model_len) - int(prompt_tokens)))


def _max_model_len(llm) -> int | None:
    try:
        return int(llm.llm_engine.model_config.max_model_len)
    except AttributeError:
        return None


def _dp_worker(rank: int, gpus: str, args: tuple, tasks, results):
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    try:
        engine = _Engine(*args)
        results.put(("ready", rank, engine.template.describe()))
        while True:
            items = tasks.get()
            if items is None:
                return
            results.put(("result", rank, engine.run(items)))
    except BaseException as e:
        results.put(("error", rank, f"{type(e).__name__}: {e}"))


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model: str, *, tensor_parallel_size: int | None = None, data_parallel_size: int | None = None,
                 dtype: str | None = None, n_ctx: int | None = None, chat_template: str | None = None,
                 **unknown: Any):
        if unknown:
            raise UserError(f"option(s) {', '.join(sorted(unknown))} do not apply to the vllm backend (it takes "
                            "tensor_parallel_size, data_parallel_size, dtype, n_ctx, chat_template)")
        self.model = model
        self.tp = int(tensor_parallel_size or 1)
        self.dp = int(data_parallel_size or 1)
        if self.tp < 1 or self.dp < 1:
            raise UserError("tensor_parallel_size and data_parallel_size must be >= 1")
        n_gpus = _require_vllm()
        if self.tp * self.dp > n_gpus:
            raise UserError(f"tensor_parallel_size {self.tp} x data_parallel_size {self.dp} needs "
                            f"{self.tp * self.dp} GPUs; {n_gpus} visible")
        self.dtype, self.n_ctx = dtype, n_ctx
        args = (model, self.tp, dtype, n_ctx, chat_template)
        self._engine: _Engine | None = None
        self._procs: list = []
        if self.dp == 1:
            self._engine = _Engine(*args)
            self._template = self._engine.template.describe()
        else:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            ids = visible.split(",") if visible else [str(i) for i in range(n_gpus)]
            ctx = mp.get_context("spawn")
            self._results = ctx.Queue()
            self._tasks = [ctx.Queue() for _ in range(self.dp)]
            for rank in range(self.dp):
                gpus = ",".join(ids[rank * self.tp:(rank + 1) * self.tp])
                p = ctx.Process(target=_dp_worker, args=(rank, gpus, args, self._tasks[rank], self._results),
                                daemon=True)
                p.start()
                self._procs.append(p)
            for _ in range(self.dp):
                kind, rank, payload = self._results.get()
                if kind == "error":
                    self.close()
                    raise RuntimeError(f"vLLM data-parallel rank {rank} failed to start: {payload}")
                self._template = payload
        # the parent's copy, for --think-prefix auto (the engines render their own)
        if self._engine is not None:
            self.template = self._engine.template
        else:
            from ..prompting import template_renderer

            self.template = template_renderer("vllm", model, chat_template).template

    def _run(self, requests: list[GenRequest]) -> Iterator[tuple[int, Completion]]:
        items = [(i, {"messages": [dict(m) for m in r.messages], "assistant_prefix": r.assistant_prefix,
                      "sampling": sampling_kwargs(r)}) for i, r in enumerate(requests)]
        if not items:
            return
        if self._engine is not None:
            for i, res in self._engine.run(items):
                yield i, Completion(**res)
            return
        shards = [items[k::self.dp] for k in range(self.dp)]
        busy = 0
        for rank, shard in enumerate(shards):
            if shard:
                self._tasks[rank].put(shard)
                busy += 1
        while busy:
            try:
                kind, rank, payload = self._results.get(timeout=5.0)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"vLLM data-parallel worker exited with code {dead[0].exitcode}")
                continue
            if kind == "error":
                raise RuntimeError(f"vLLM data-parallel rank {rank} failed: {payload}")
            busy -= 1
            for i, res in payload:
                yield i, Completion(**res)

    def describe(self) -> dict[str, Any]:
        try:
            version = importlib.metadata.version("vllm")
        except importlib.metadata.PackageNotFoundError:
            version = None
        return {"backend": self.name, "model": self.model, "vllm": version, "chat_template": self._template,
                "options": {"tensor_parallel_size": self.tp, "data_parallel_size": self.dp,
                            "dtype": self.dtype or "auto", "n_ctx": self.n_ctx}}

    def close(self):
        for q in getattr(self, "_tasks", []):
            q.put(None)
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        self._procs = []
