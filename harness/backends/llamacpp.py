"""llama.cpp backend (the default): GGUF models on CPU through llama-cpp-python's C API.

Parallelism: ``workers`` processes (each with its own model and context, ``threads`` threads each), and inside each
worker ``batch_size`` llama.cpp sequences ("slots") decoded together, one token per sequence per ``llama_decode``
call, with continuous batching (a finished sequence's slot takes the next request at once). Measured on a 2-core
box for 16 requests x 128 tokens with the embedded model (benchmarks/backend_throughput.py --all, best of 3):
one process, one sequence at a time, 2 threads 82 tok/s; 2 processes x 1 sequence x 1 thread 95 tok/s;
1 process x 16 slots x 2 threads 155 tok/s; 2 processes x 8 slots x 1 thread 166 tok/s (the default: 2.0x).
One thread per worker also holds up best when other work shares the cores (OpenMP barriers spin).

Determinism (a regenerated sample is the same sample): every request gets its own sampler chain
(temperature -> top-p -> dist(seed)), its own KV stream (``kv_unified=False``, cleared before use), its prompt is
evaluated alone, and flash attention (which skips masked cells) is forced on, so a sequence's logits do not depend on
which worker ran it, which slot, what ran before or what runs beside it. This holds when llama.cpp's matmul kernels
are batch-invariant (checked by the tests for the embedded Q4_1 model); ``batch_size=1`` removes the assumption.
"""
from __future__ import annotations

import codecs
import ctypes
import importlib.metadata
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import UserError
from ..models import EMBEDDED, EMBEDDED_NAME, file_sha256, read_gguf, resolve_gguf, usable_cpus
from .base import Backend, Completion, GenRequest
from .chat import ChatTemplate, from_gguf, load_chat_template

DEFAULT_SLOTS = 8
READY_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class EngineConfig:
    model_path: str
    threads: int
    slots: int
    n_ctx: int  # per sequence; 0 = grow on demand up to the model's training context
    use_extra_bufts: bool


def _cpu_has_amx() -> bool:
    # llama.cpp's AMX matmul (an "extra buffer type") segfaults on some AMX machines/VMs; weight repacking is the
    # only other extra buffer type and matters little for the small models run on CPU here.
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_int8" in f.read()
    except OSError:
        return False


# ============================================================================================ worker side
class _Seq:
    __slots__ = ("rid", "slot", "sampler", "pos", "n_prompt", "n_gen", "max_tokens", "stops", "max_stop",
                 "decoder", "text", "last", "t0", "finish", "stop_at")

    def __init__(self, rid, slot, sampler, n_prompt, max_tokens, stops):
        self.rid, self.slot, self.sampler = rid, slot, sampler
        self.pos = n_prompt
        self.n_prompt, self.n_gen, self.max_tokens = n_prompt, 0, max_tokens
        self.stops = [s for s in stops if s]
        self.max_stop = max((len(s) for s in self.stops), default=0)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""
        self.last = -1
        self.t0 = time.perf_counter()
        self.finish: str | None = None
        self.stop_at: int | None = None


class Engine:
    """One llama.cpp model + context decoding up to ``slots`` sequences together. Lives in a worker process."""

    def __init__(self, cfg: EngineConfig):
        import llama_cpp as L

        self.L, self.cfg = L, cfg
        self._silence_logs()
        L.llama_backend_init()
        mparams = L.llama_model_default_params()
        mparams.use_extra_bufts = cfg.use_extra_bufts
        self.model = L.llama_model_load_from_file(cfg.model_path.encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {cfg.model_path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_ctx_train = int(L.llama_model_n_ctx_train(self.model))
        self.add_bos = bool(L.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(L.llama_vocab_bos(self.vocab))
        self.ctx = None
        self.n_ctx_seq = 0  # cells per sequence, as llama.cpp granted them
        self.ctx_target = 0  # cells per sequence asked for
        self.n_batch = 512
        self.batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._piece = ctypes.create_string_buffer(256)
        if cfg.n_ctx:
            self._make_context(cfg.n_ctx)

    def _silence_logs(self):
        L = self.L

        @L.llama_log_callback
        def _log(level, text, user_data):
            if level == 4:  # GGML_LOG_LEVEL_ERROR
                try:
                    os.write(2, text)
                except (OSError, TypeError):
                    pass

        self._log_cb = _log  # keep a reference: C holds only the pointer
        L.llama_log_set(_log, ctypes.c_void_p(0))

    def _make_context(self, n_ctx_seq: int):
        L = self.L
        if self.ctx is not None:
            L.llama_free(self.ctx)
            self.ctx = None
        p = L.llama_context_default_params()
        p.n_seq_max = self.cfg.slots
        p.n_ctx = n_ctx_seq * self.cfg.slots  # with kv_unified=False each sequence gets n_ctx / n_seq_max cells
        p.n_batch = self.n_batch
        p.n_ubatch = self.n_batch
        p.n_threads = p.n_threads_batch = self.cfg.threads
        p.kv_unified = False
        p.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED
        p.no_perf = True
        self.ctx_target = n_ctx_seq
        self.ctx = L.llama_init_from_model(self.model, p)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {p.n_ctx} tokens")
        # llama.cpp may round the context; never use more cells per sequence than it really has
        self.n_ctx_seq = min(n_ctx_seq, int(L.llama_n_ctx_seq(self.ctx)))
        self.mem = L.llama_get_memory(self.ctx)

    def _wanted_ctx(self, need: int) -> int:
        size = 1024
        while size < need:
            size *= 2
        return min(size, self.n_ctx_train) if self.n_ctx_train > 0 else size

    def tokenize(self, text: str) -> list[int]:
        return tokenize_prompt(self.L, self.vocab, text)

    def _piece_bytes(self, tok: int) -> bytes:
        n = self.L.llama_token_to_piece(self.vocab, tok, self._piece, len(self._piece), 0, False)
        if n < 0:
            self._piece = ctypes.create_string_buffer(-n)
            n = self.L.llama_token_to_piece(self.vocab, tok, self._piece, len(self._piece), 0, False)
        return self._piece.raw[:n]

    def _sampler(self, temperature: float, top_p: float, seed: int):
        L = self.L
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if temperature <= 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        else:
            # Temperature first, then top-p on the tempered distribution: the order vLLM and transformers use.
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(float(temperature)))
            if top_p < 1.0:
                L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(float(top_p), 1))
            seed = int(seed) & 0xFFFFFFFF
            if seed == 0xFFFFFFFF:  # LLAMA_DEFAULT_SEED means "random" to llama.cpp
                seed = 0xFFFFFFFE
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
        return chain

    def _add(self, tok: int, pos: int, seq: int, logits: bool):
        b = self.batch
        i = b.n_tokens
        b.token[i] = tok
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        b.n_tokens = i + 1

    def _decode(self):
        rc = self.L.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    # ---- one request's life: start (prompt alone) -> steps (batched with others) -> result
    def _start(self, rid: int, req: dict, toks: list[int], slot: int, t0: float) -> _Seq | dict:
        L = self.L
        if len(toks) >= self.n_ctx_seq:
            return _result(rid, "", len(toks), 0, "length", time.perf_counter() - t0,
                           {"error": f"prompt of {len(toks)} tokens does not fit the context of {self.n_ctx_seq}"})
        L.llama_memory_seq_rm(self.mem, slot, -1, -1)
        for i in range(0, len(toks), self.n_batch):
            chunk = toks[i:i + self.n_batch]
            self.batch.n_tokens = 0
            for j, t in enumerate(chunk):
                self._add(t, i + j, slot, i + j == len(toks) - 1)
            self._decode()
        seq = _Seq(rid, slot, self._sampler(req["temperature"], req["top_p"], req["seed"]), len(toks),
                   req["max_tokens"], req["stop"])
        seq.t0 = t0
        self._take(seq, self.batch.n_tokens - 1)
        return seq

    def _take(self, seq: _Seq, idx: int):
        """Sample the next token of ``seq`` from batch row ``idx`` and check every stop condition."""
        L = self.L
        tok = int(L.llama_sampler_sample(seq.sampler, self.ctx, idx))
        seq.n_gen += 1
        seq.last = tok
        if L.llama_vocab_is_eog(self.vocab, tok):
            seq.finish = "stop"
            return
        before = len(seq.text)
        seq.text += seq.decoder.decode(self._piece_bytes(tok))
        if seq.stops:
            start = max(0, before - seq.max_stop + 1)
            hits = [i for i in (seq.text.find(s, start) for s in seq.stops) if i >= 0]
            if hits:
                seq.stop_at = min(hits)
                seq.finish = "stop"
                return
        if seq.n_gen >= seq.max_tokens or seq.pos >= self.n_ctx_seq:  # no cell left for the sampled token
            seq.finish = "length"

    def _finish(self, seq: _Seq) -> dict:
        self.L.llama_sampler_free(seq.sampler)
        text = seq.text + seq.decoder.decode(b"", final=True)
        extra = {}
        if seq.stop_at is not None:
            text = text[:seq.stop_at]
        if seq.finish == "length" and seq.n_gen < seq.max_tokens:
            # the context filled up before --max-tokens: the sample had a smaller budget than asked for
            extra["context_full"] = self.n_ctx_seq
            # every cell after the prompt held a token, and the last sampled one needs none: n_ctx - prompt + 1
            extra["max_tokens_granted"] = seq.n_gen
        return _result(seq.rid, text, seq.n_prompt, seq.n_gen, seq.finish, time.perf_counter() - seq.t0, extra)

    def serve(self, tasks, results):
        """Pull (rid, request) from ``tasks`` while slots are free, decode, push results; None = finish and exit."""
        pending: deque = deque()
        active: dict[int, _Seq] = {}
        free = list(range(self.cfg.slots - 1, -1, -1))
        closing = False
        while True:
            while not closing and len(active) + len(pending) < self.cfg.slots:
                try:
                    item = tasks.get(block=not active and not pending)
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                rid, req = item
                pending.append((rid, req, self.tokenize(req["prompt"]), time.perf_counter()))
            while pending and free:
                rid, req, toks, t0 = pending[0]
                need = self._wanted_ctx(len(toks) + req["max_tokens"] + 1)
                if self.ctx is None or (not self.cfg.n_ctx and need > self.ctx_target):
                    if active:  # grow the context only between sequences; the new request waits for them
                        break
                    self._make_context(max(need, self.ctx_target))
                pending.popleft()
                slot = free.pop()
                seq = self._start(rid, req, toks, slot, t0)
                if isinstance(seq, dict):
                    results.put(("result", seq))
                    free.append(slot)
                elif seq.finish:
                    results.put(("result", self._finish(seq)))
                    free.append(slot)
                else:
                    active[slot] = seq
            if not active:
                if closing and not pending:
                    return
                continue
            order = sorted(active)
            self.batch.n_tokens = 0
            for slot in order:
                s = active[slot]
                self._add(s.last, s.pos, slot, True)
                s.pos += 1
            self._decode()
            for idx, slot in enumerate(order):
                s = active[slot]
                self._take(s, idx)
                if s.finish:
                    results.put(("result", self._finish(s)))
                    del active[slot]
                    free.append(slot)

    def close(self):
        L = self.L
        if self.ctx is not None:
            L.llama_free(self.ctx)
            self.ctx = None
        if self.batch is not None:
            L.llama_batch_free(self.batch)
            self.batch = None
        if self.model:
            L.llama_model_free(self.model)
            self.model = None


def tokenize_prompt(L, vocab, text: str) -> list[int]:
    """Token ids of a rendered prompt. Special-token text is parsed as special tokens (the template wrote them),
    and BOS is added only when the model wants one and the text does not already start with it: R1-family
    templates write ``{{ bos_token }}`` themselves, and a second BOS changes what the model sees."""
    data = text.encode("utf-8")
    n_max = len(data) + 8
    buf = (L.llama_token * n_max)()
    n = L.llama_tokenize(vocab, data, len(data), buf, n_max, False, True)
    if n < 0:
        buf = (L.llama_token * -n)()
        n = L.llama_tokenize(vocab, data, len(data), buf, -n, False, True)
    toks = list(buf[:n])
    bos = int(L.llama_vocab_bos(vocab))
    if L.llama_vocab_get_add_bos(vocab) and bos >= 0 and (not toks or toks[0] != bos):
        toks.insert(0, bos)
    return toks


def _result(rid, text, prompt_tokens, completion_tokens, finish, latency, extra) -> dict:
    return {"rid": rid, "text": text, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "finish_reason": finish, "latency": latency, "extra": extra}


def _worker_main(cfg: EngineConfig, tasks, results):
    try:
        engine = Engine(cfg)
    except BaseException as e:  # report, don't hang the parent
        results.put(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        return
    results.put(("ready", os.getpid()))
    try:
        engine.serve(tasks, results)
    except BaseException as e:
        results.put(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        engine.close()


# ============================================================================================ parent side
class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(self, model: str = EMBEDDED, *, threads: int | None = None, workers: int | None = None,
                 batch_size: int | None = None, n_ctx: int | None = None, chat_template: str | None = None,
                 **unknown: Any):
        if unknown:
            raise UserError(f"option(s) {', '.join(sorted(unknown))} do not apply to the llamacpp backend "
                            "(it takes threads, workers, batch_size, n_ctx, chat_template)")
        self.model = model
        self.path = resolve_gguf(model)
        self.gguf = read_gguf(self.path)
        cpus = usable_cpus()
        self.threads = _positive("threads", threads, 1)
        self.workers = _positive("workers", workers, _default_workers(cpus // self.threads, self.path))
        self.slots = _positive("batch_size", batch_size, DEFAULT_SLOTS)
        self.n_ctx = int(n_ctx or 0)
        if self.n_ctx < 0:
            raise UserError(f"n_ctx must be >= 0, got {n_ctx}")
        if chat_template:
            self.template: ChatTemplate | None = load_chat_template(chat_template)
        else:
            self.template = from_gguf(self.path)
        self._cfg = EngineConfig(str(self.path), self.threads, self.slots, self.n_ctx, not _cpu_has_amx())
        self._procs: list = []
        self._tasks = self._results = None
        self._sha256: str | None = None

    # ---- prompt
    def render(self, req: GenRequest) -> str:
        if self.template is None:
            raise UserError(f"{self.path} has no tokenizer.chat_template; pass the chat_template option "
                            "(a jinja file, a tokenizer dir or the template text)")
        return self.template.render(req.messages, req.assistant_prefix)

    def model_names(self) -> list[str]:
        return [self.model if self.model != EMBEDDED else EMBEDDED_NAME, self.path.name, self.gguf.name]

    def wire(self, req: GenRequest) -> dict[str, Any]:
        add_bos = bool(self.gguf.metadata.get("tokenizer.ggml.add_bos_token", False))
        bos = self.gguf.bos_token
        text = self.render(req)
        notes = []
        if add_bos and bos and not text.startswith(bos):
            notes.append(f"llama.cpp puts the BOS token {bos!r} before this text (the model's add_bos_token)")
        elif add_bos and bos:
            notes.append(f"the text starts with BOS {bos!r} (written by the template): llama.cpp adds no second one")
        n_train = next((v for k, v in self.gguf.metadata.items() if k.endswith(".context_length")), None)
        ctx = self.n_ctx or n_train
        if isinstance(ctx, int) and req.max_tokens >= ctx:
            notes.append(f"max_tokens {req.max_tokens} does not fit the context of {ctx} tokens (prompt included): "
                         "generation stops when the context is full and the sample records max_tokens_granted")
        return {"to": f"llamacpp (in-process llama.cpp, {self.path.name})", "text": text, "notes": notes}

    # ---- workers
    def _start_workers(self):
        ctx = mp.get_context("spawn")  # fresh interpreters: no inherited threads or llama.cpp state
        self._tasks, self._results = ctx.Queue(), ctx.Queue()
        self._procs = [
            ctx.Process(target=_worker_main, args=(self._cfg, self._tasks, self._results), daemon=True,
                        name=f"r1-llamacpp-{i}")
            for i in range(self.workers)
        ]
        for p in self._procs:
            p.start()
        ready = 0
        deadline = time.monotonic() + READY_TIMEOUT_S
        while ready < len(self._procs):
            try:
                msg = self._results.get(timeout=1.0)
            except queue.Empty:
                self._check_alive()
                if time.monotonic() > deadline:
                    self._stop_workers()
                    raise RuntimeError(f"llama.cpp workers did not start within {READY_TIMEOUT_S:.0f} s")
                continue
            if msg[0] == "ready":
                ready += 1
            elif msg[0] == "error":
                self._stop_workers()
                raise RuntimeError(f"llama.cpp worker failed to start: {msg[1]}")

    def _check_alive(self):
        for p in self._procs:
            if not p.is_alive():
                code = p.exitcode
                self._stop_workers()
                raise RuntimeError(f"llama.cpp worker {p.name} exited with code {code}"
                                   + (" (killed by a signal: crashed or out of memory)" if code and code < 0 else ""))

    def _stop_workers(self, graceful: bool = False):
        procs, self._procs = self._procs, []
        if graceful and self._tasks is not None:
            for _ in procs:
                self._tasks.put(None)
            for p in procs:
                p.join(timeout=10)
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=10)
        for q in (self._tasks, self._results):
            if q is not None:
                q.cancel_join_thread()
                q.close()
        self._tasks = self._results = None

    def _run(self, requests: list[GenRequest]) -> Iterator[tuple[int, Completion]]:
        if not requests:
            return
        prompts = [self.render(r) for r in requests]  # template errors surface before any work starts
        if not self._procs:
            self._start_workers()
        for rid, (r, prompt) in enumerate(zip(requests, prompts)):
            self._tasks.put((rid, {
                "prompt": prompt,
                "max_tokens": int(r.max_tokens),
                "temperature": float(r.temperature),
                "top_p": float(r.top_p),
                "seed": int(r.seed),
                "stop": list(r.stop),
            }))
        done = 0
        try:
            while done < len(requests):
                try:
                    msg = self._results.get(timeout=1.0)
                except queue.Empty:
                    self._check_alive()
                    continue
                if msg[0] == "error":
                    raise RuntimeError(f"llama.cpp worker failed: {msg[1]}")
                if msg[0] != "result":
                    continue
                res = dict(msg[1])
                rid = res.pop("rid")
                done += 1
                yield rid, Completion(**res)
        finally:
            if done < len(requests):
                # stopped early (error, KeyboardInterrupt, consumer closed the stream): the queued and in-flight
                # requests belong to nobody now, so the workers go with them; the next call starts fresh ones
                self._stop_workers()

    def describe(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        try:
            version = importlib.metadata.version("llama-cpp-python")
        except importlib.metadata.PackageNotFoundError:
            version = None
        return {
            "backend": self.name,
            "model": self.model,
            "name": EMBEDDED_NAME if self.model == EMBEDDED else self.gguf.name,
            "path": str(self.path),
            "sha256": self._sha256,
            "chat_template": self.template.describe() if self.template else None,
            "llama_cpp_python": version,
            "sampler": "temperature -> top_p -> dist(seed); greedy at temperature 0",
            "options": {"threads": self.threads, "workers": self.workers, "batch_size": self.slots,
                        "n_ctx": self.n_ctx or "auto", "use_extra_bufts": self._cfg.use_extra_bufts},
        }

    def close(self):
        if self._procs:
            self._stop_workers(graceful=True)

    def __del__(self):
        try:
            if self._procs:
                self._stop_workers()
        except Exception:
            pass


def _default_workers(by_cores: int, path) -> int:
    """One worker per core, but no more model copies than half the RAM holds (weights are mmapped and shared
    between processes unless llama.cpp repacks them; the KV cache is per worker)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        by_ram = int(0.5 * ram / (os.path.getsize(path) * 1.5))
    except (ValueError, OSError, AttributeError):
        by_ram = by_cores
    return max(1, min(by_cores, by_ram))


def _positive(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be an integer, got {value!r}") from None
    if v < 1:
        raise UserError(f"{name} must be >= 1, got {value}")
    return v


