"""OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, hosted APIs) over plain httpx.

* Scale-out: ``base_url="http://a/v1,http://b/v1"``; requests go round-robin over the URLs that are up.
* ``concurrency`` bounds the requests in flight over all URLs together.
* Retries: 408/409/425/429/5xx, connection errors, timeouts, a body cut short and a 200 whose completion is not
  finished (no ``finish_reason``) are retried up to ``max_retries`` times; then a UserError names the URLs and the
  last failure. Other 4xx fail at once with the server's message. A partial completion is never returned.
* Failover: a URL that fails is benched for a while (exponential in its consecutive failures; a failure of a request
  sent before the bench started does not count twice) and a retry goes to another URL that is up, at once. Only
  when every URL is benched does a request wait, with exponential backoff and full jitter.
* ``Retry-After`` (429/503) benches that URL until then for *every* request (capped at ``RETRY_AFTER_CAP_S``).
* ``stats()``: requests, retries by kind (``http_<status>``, ``timeout``, ``connect``, ``disconnect``, ``bad_body``,
  ``incomplete``), failovers and Retry-After waits; the runner puts them in the manifest and the run summary.
* Seeds: every sample is its own request carrying its own ``seed`` (the default), so a sample is the same sample
  whatever else is in flight, as far as the server honours seeds. ``n_grouping=True`` (opt-in, recorded in the
  manifest under ``options.n_grouping``) trades that for throughput:
* ``n > 1`` (only with ``n_grouping``): requests that differ only in their seed (same prompt and sampling settings,
  temperature > 0) are sent as one request with ``n`` choices and the first member's seed (the others' seeds are
  not sent: the server draws their randomness). If the server rejects ``n`` (4xx) or returns fewer
  choices, the missing ones are sent one by one (n=1, own seed) and ``n`` is not tried again. Servers report usage
  for all choices together, so with n > 1 each choice's completion_tokens is an estimate (exact for choices cut at
  max_tokens; the rest split in proportion to text length; ``extra["completion_tokens_estimated"]``).
* ``assistant_prefix`` (the paper's "<think>\\n" forcing): when a chat template is known (the ``chat_template``
  option: GGUF / tokenizer dir / jinja file / text; or the llama.cpp server's ``/props``), the prompt is rendered
  locally exactly as the local backends render it and sent to ``/v1/completions``. Otherwise ``/v1/chat/completions``
  gets the messages plus a final assistant message holding the prefix, with ``continue_final_message: true,
  add_generation_prompt: false`` (vLLM's extension; servers without it may close the assistant turn instead).
  With R1 / R1-Distill / QwQ templates that end the generation prompt with "<think>\\n" this still reaches the model
  once: ``add_generation_prompt: false`` drops the template's own copy and the continued message supplies it (tested
  on the real templates in tests/test_chat_templates.py). Without a prefix, the messages go as they are and the
  server's template decides. Local rendering is preferred because it is the same prompt on every backend and needs
  no server extension.
* Token counts come from the server's ``usage``.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..errors import UserError
from ..models import split_csv
from .base import Backend, Completion, GenRequest
from .chat import ChatTemplate, load_chat_template

RETRY_STATUS = {408, 409, 425, 429}
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 300.0  # a hosted API may ask for a minute or more; beyond this a misconfigured server is assumed
MAX_N = 16  # choices per request when grouping


class ServerError(UserError):
    """The server failed (after retries, or with a non-retryable status)."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status, self.body = status, body


class _Endpoint:
    """One base URL's health: benched (not used) until ``not_before`` after failures or a Retry-After."""

    def __init__(self, url: str):
        self.url = url
        self.not_before = 0.0  # time.monotonic()
        self.benched_at = -1.0
        self.failures = 0  # consecutive, counted once per incident
        self.requests = 0
        self.failed = 0

    def fail(self, sent_at: float, retry_after: float | None) -> None:
        now = time.monotonic()
        self.failed += 1
        if sent_at >= self.benched_at:  # a new incident, not another request that was already in flight
            self.failures += 1
        if retry_after is not None:
            until = now + min(retry_after, RETRY_AFTER_CAP_S)
        else:
            until = now + random.uniform(0.5, 1.0) * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self.failures - 1))
        if until > self.not_before:
            self.not_before = until
        self.benched_at = now

    def ok(self) -> None:
        self.failures = 0


class _Failure(Exception):
    """A retryable failure of one attempt."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


@dataclass
class _Group:
    idx: list[int]  # positions in the stream's request list
    reqs: list[GenRequest]
    payload: dict[str, Any]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str, *, base_url: str | Sequence[str] | None = None, api_key: str | None = None,
                 concurrency: int | None = None, max_retries: int | None = None, timeout: float | None = None,
                 chat_template: str | None = None, n_grouping: bool | None = None, **unknown: Any):
        if unknown:
            raise UserError(f"option(s) {', '.join(sorted(unknown))} do not apply to the openai backend (it takes "
                            "base_url, api_key, concurrency, max_retries, timeout, chat_template, n_grouping)")
        self.model = model
        self.base_urls = [u.rstrip("/") for u in split_csv(base_url or os.environ.get("OPENAI_BASE_URL"))]
        if not self.base_urls:
            raise UserError("the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1; several: comma-"
                            "separated) or the OPENAI_BASE_URL environment variable")
        for u in self.base_urls:
            if urlsplit(u).scheme not in ("http", "https") or not urlsplit(u).netloc:
                raise UserError(f"base_url {u!r} is not an http(s) URL")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        self.concurrency = int(concurrency or 8 * len(self.base_urls))
        self.max_retries = int(6 if max_retries is None else max_retries)
        self.timeout = float(timeout or 1800.0)  # one reasoning trace of 32k tokens can take many minutes
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise UserError("concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self._template_spec = chat_template
        self._template: ChatTemplate | None = load_chat_template(chat_template) if chat_template else None
        self._template_resolved = bool(chat_template)
        self._rr = 0
        self._rr_lock = threading.Lock()
        self._endpoints = [_Endpoint(u) for u in self.base_urls]
        self._stats: dict[str, Any] = {"requests": 0, "retries": 0, "retries_by_kind": {}, "failovers": 0,
                                       "retry_after_waits": 0}  # Retry-After > 0 answers, each benching its URL
        # n>1 merging drops every member's seed but the first: only when asked for
        self._n_supported = bool(n_grouping)
        self.n_grouping = bool(n_grouping)

    # ------------------------------------------------------------------------------------------ prompt mode
    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _resolve_template(self) -> ChatTemplate | None:
        """Ask a llama.cpp server for its chat template once (``GET /props``); others simply don't have it."""
        if not self._template_resolved:
            self._template_resolved = True
            url = _origin(self.base_urls[0]) + "/props"
            try:
                r = httpx.get(url, headers=self._headers(), timeout=10.0)
                data = r.json() if r.status_code == 200 else {}
            except (httpx.HTTPError, ValueError):
                data = {}
            tmpl = data.get("chat_template") if isinstance(data, dict) else None
            if isinstance(tmpl, str) and tmpl.strip():
                self._template = ChatTemplate(tmpl, f"server:{url}", str(data.get("bos_token") or ""),
                                              str(data.get("eos_token") or ""))
        return self._template

    @property
    def endpoint(self) -> str:
        return "/completions" if self._resolve_template() is not None else "/chat/completions"

    def render_prompt(self, r: GenRequest) -> str:
        """The /v1/completions prompt: the chat template rendered here, plus the assistant prefix."""
        tmpl = self._resolve_template()
        if tmpl is None:
            raise UserError("no chat template known for this server (pass the chat_template option)")
        prompt = tmpl.render(r.messages, r.assistant_prefix)
        # servers add the BOS token themselves when they tokenize a completion prompt
        if tmpl.bos_token and prompt.startswith(tmpl.bos_token):
            prompt = prompt[len(tmpl.bos_token):]
        return prompt

    @property
    def template(self) -> ChatTemplate | None:
        """The chat template rendered here (option or the server's /props), None when the server renders."""
        return self._resolve_template()

    def model_names(self) -> list[str]:
        return [self.model]

    def wire(self, req: GenRequest) -> dict[str, Any]:
        path = self.endpoint
        body = self._payload(req, 1)
        to = f"POST {self.base_urls[0]}{path}" + (f" (and {len(self.base_urls) - 1} more URL(s))" if len(self.base_urls) > 1 else "")
        if "prompt" in body:
            return {"to": to, "text": body["prompt"],
                    "notes": ["chat template rendered here; the server tokenizes the text and adds BOS itself"]}
        notes = ["the server renders its own chat template; what the model sees depends on it"]
        if body.get("continue_final_message"):
            notes.append("the think prefix is a continued assistant message (continue_final_message, "
                         "add_generation_prompt: false; vLLM's extension)")
        return {"to": to, "body": body, "notes": notes}

    def _payload(self, r: GenRequest, n: int) -> dict[str, Any]:
        p: dict[str, Any] = {"model": self.model, "max_tokens": int(r.max_tokens),
                             "temperature": float(r.temperature), "top_p": float(r.top_p), "seed": int(r.seed)}
        if r.stop:
            p["stop"] = list(r.stop)
        if n > 1:
            p["n"] = n
        if self._resolve_template() is not None:
            p["prompt"] = self.render_prompt(r)
        else:
            msgs = [dict(m) for m in r.messages]
            if r.assistant_prefix:
                msgs.append({"role": "assistant", "content": r.assistant_prefix})
                p["continue_final_message"] = True
                p["add_generation_prompt"] = False
            p["messages"] = msgs
        return p

    def _groups(self, requests: Sequence[GenRequest]) -> list[_Group]:
        groups: dict[str, list[int]] = {}
        order: list[str] = []
        for i, r in enumerate(requests):
            if self._n_supported and r.temperature > 0:
                key = json.dumps([list(map(dict, r.messages)), r.assistant_prefix, r.max_tokens, r.temperature,
                                  r.top_p, list(r.stop)], sort_keys=True)
            else:
                key = f"#{i}"
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(i)
        out = []
        for key in order:
            members = groups[key]
            for j in range(0, len(members), MAX_N):
                chunk = members[j:j + MAX_N]
                reqs = [requests[i] for i in chunk]
                out.append(_Group(chunk, reqs, self._payload(reqs[0], len(reqs))))
        return out

    # ------------------------------------------------------------------------------------------ HTTP
    def _next_url(self) -> str:
        return self._pick(None)[0].url

    def _pick(self, avoid: _Endpoint | None) -> tuple[_Endpoint, float]:
        """The next endpoint (round-robin over those not benched, ``avoid`` last) and how long to wait for it."""
        with self._rr_lock:
            now = time.monotonic()
            n = len(self._endpoints)
            order = [self._endpoints[(self._rr + k) % n] for k in range(n)]
            self._rr += 1
            up = [e for e in order if e.not_before <= now]
            if len(up) > 1 and avoid in up:
                up.remove(avoid)
            ep = up[0] if up else min(order, key=lambda e: e.not_before)
            ep.requests += 1
            return ep, max(0.0, ep.not_before - now)

    def _count(self, kind: str) -> None:
        with self._rr_lock:
            self._stats["retries"] += 1
            by = self._stats["retries_by_kind"]
            by[kind] = by.get(kind, 0) + 1

    def stats(self) -> dict[str, Any]:
        """What the run needed from the servers: requests, retries by kind, failovers, per-URL counts."""
        with self._rr_lock:
            out = json.loads(json.dumps(self._stats))
            out["endpoints"] = {e.url: {"requests": e.requests, "failed": e.failed} for e in self._endpoints}
        return out

    async def _attempt(self, client: httpx.AsyncClient, url: str, payload: dict, path: str) -> dict:
        try:
            resp = await client.post(url, json=payload)
        except httpx.TimeoutException as e:
            raise _Failure("timeout", f"{type(e).__name__}: {e}".rstrip(": ")) from None
        except httpx.ConnectError as e:
            raise _Failure("connect", f"{type(e).__name__}: {e}".rstrip(": ")) from None
        except httpx.TransportError as e:  # reset, or the body cut short (RemoteProtocolError, ReadError)
            raise _Failure("disconnect", f"{type(e).__name__}: {e}".rstrip(": ")) from None
        if resp.status_code == 200:
            try:
                data = resp.json()
            except ValueError:
                raise _Failure("bad_body", f"HTTP 200 with a body that is not JSON: {resp.text[:200]!r}") from None
            why = _unfinished(data, path)
            if why:
                raise _Failure("incomplete", f"HTTP 200 with an unfinished completion ({why})")
            return data
        if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
            raise _Failure(f"http_{resp.status_code}", f"HTTP {resp.status_code}: {resp.text[:300]}",
                           _retry_after(resp.headers.get("retry-after")))
        raise ServerError(f"{url} answered HTTP {resp.status_code}: {resp.text[:500]}", resp.status_code, resp.text)

    async def _post(self, client: httpx.AsyncClient, path: str, payload: dict) -> tuple[dict, str, float]:
        last = ""
        failed: _Endpoint | None = None
        for attempt in range(self.max_retries + 1):
            ep, wait = self._pick(failed)
            if failed is not None:
                if ep is not failed and wait == 0:
                    with self._rr_lock:
                        self._stats["failovers"] += 1
                else:  # nowhere else to go: back off (full jitter), and at least until the URL's bench ends
                    wait = max(wait, random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))))
            if wait > 0:
                await asyncio.sleep(wait)
            url = ep.url + path
            t0 = time.perf_counter()
            sent_at = time.monotonic()
            with self._rr_lock:
                self._stats["requests"] += 1
            try:
                data = await self._attempt(client, url, payload, path)
            except _Failure as f:
                last = f"{url}: {f}"
                ep.fail(sent_at, f.retry_after)
                failed = ep
                if attempt < self.max_retries:
                    self._count(f.kind)
                    if f.retry_after:
                        with self._rr_lock:
                            self._stats["retry_after_waits"] += 1
                continue
            ep.ok()
            return data, url, time.perf_counter() - t0
        raise ServerError(f"{path} failed after {self.max_retries + 1} attempts over {', '.join(self.base_urls)}; "
                          f"last error: {last}")

    def _completions(self, data: dict, max_tokens: int, latency: float, path: str) -> list[Completion]:
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        total = int(usage.get("completion_tokens") or 0)
        texts = [_choice_text(c, path) for c in choices]
        reasons = ["length" if c.get("finish_reason") == "length" else "stop" for c in choices]
        counts, estimated = _split_tokens(total, texts, reasons, max_tokens)
        out = []
        for c, text, reason, count in zip(choices, texts, reasons, counts):
            extra: dict[str, Any] = {}
            if estimated:
                extra["completion_tokens_estimated"] = True
            if c.get("finish_reason") not in ("stop", "length", None):
                extra["server_finish_reason"] = c.get("finish_reason")
            if isinstance(c.get("message"), dict) and (c["message"].get("reasoning_content") or c["message"].get("reasoning")):
                extra["reasoning_split_by_server"] = True
            out.append(Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=count,
                                  finish_reason=reason, latency=latency, extra=extra))
        return out

    async def _run_group(self, client, sem, group: _Group, emit) -> None:
        path = self.endpoint
        todo = list(zip(group.idx, group.reqs))
        if len(todo) > 1 and self._n_supported:
            try:
                async with sem:
                    data, _, latency = await self._post(client, path, group.payload)
            except ServerError as e:
                if e.status is None or not (400 <= e.status < 500):
                    raise
                self._n_supported = False  # rejected n: do them one by one from now on
            else:
                comps = self._completions(data, group.reqs[0].max_tokens, latency, path)[:len(todo)]
                for (i, _), comp in zip(todo, comps):
                    emit(i, comp)
                if len(comps) < len(todo):
                    self._n_supported = False
                todo = todo[len(comps):]
        await asyncio.gather(*(self._run_one(client, sem, i, r, emit) for i, r in todo))

    async def _run_one(self, client, sem, i: int, req: GenRequest, emit) -> None:
        path = self.endpoint
        async with sem:
            data, _, latency = await self._post(client, path, self._payload(req, 1))
        comps = self._completions(data, req.max_tokens, latency, path)
        if not comps:
            raise ServerError(f"{path}: the server returned no choices: {json.dumps(data)[:300]}")
        emit(i, comps[0])

    async def _run_all(self, requests: Sequence[GenRequest], out: queue.Queue) -> None:
        self._resolve_template()
        sem = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=30.0), limits=limits,
                                     headers=self._headers()) as client:
            tasks = [asyncio.ensure_future(self._run_group(client, sem, g, lambda i, c: out.put(("result", (i, c)))))
                     for g in self._groups(requests)]
            try:
                for t in asyncio.as_completed(tasks):
                    await t  # the first failure propagates; the rest are cancelled below
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self, requests: list[GenRequest]) -> Iterator[tuple[int, Completion]]:
        if not requests:
            return
        out: queue.Queue = queue.Queue()
        loop = asyncio.new_event_loop()
        main: list[asyncio.Task] = []

        def run():
            asyncio.set_event_loop(loop)
            try:
                task = loop.create_task(self._run_all(requests, out))
                main.append(task)
                loop.run_until_complete(task)
            except asyncio.CancelledError:
                pass
            except BaseException as e:  # handed to the consumer's thread
                out.put(("error", e))
            finally:
                out.put(("done", None))
                loop.close()

        thread = threading.Thread(target=run, name="r1-openai", daemon=True)
        thread.start()
        finished = False
        try:
            while True:
                kind, item = out.get()
                if kind == "result":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    finished = True
                    break
        finally:
            if not finished and thread.is_alive():
                def cancel():
                    for t in main:
                        t.cancel()
                try:
                    loop.call_soon_threadsafe(cancel)
                except RuntimeError:  # loop already closed
                    pass
            thread.join(timeout=60)

    # ------------------------------------------------------------------------------------------ manifest
    def describe(self) -> dict[str, Any]:
        tmpl = self._resolve_template()
        served = None
        try:
            r = httpx.get(self.base_urls[0] + "/models", headers=self._headers(), timeout=10.0)
            if r.status_code == 200:
                served = [{k: m.get(k) for k in ("id", "owned_by", "root", "max_model_len") if k in m}
                          for m in r.json().get("data", [])]
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        return {
            "backend": self.name,
            "model": self.model,
            "base_urls": self.base_urls,
            "endpoint": "/v1/completions (chat template rendered locally)" if tmpl else "/v1/chat/completions",
            "chat_template": tmpl.describe() if tmpl else None,
            "served_models": served,
            "options": {"concurrency": self.concurrency, "max_retries": self.max_retries, "timeout": self.timeout,
                        "n_grouping": self._n_supported},
        }


def _unfinished(data: Any, path: str) -> str | None:
    """Why a 200 response does not hold finished completions (None when it does): a server or proxy that returns
    what it had so far must not have it recorded as a complete sample."""
    if not isinstance(data, dict):
        return "not a JSON object"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return "no choices"
    for c in choices:
        if not isinstance(c, dict) or not c.get("finish_reason"):
            return "a choice without finish_reason"
        text = c.get("text") if path == "/completions" else (c.get("message") or {}).get("content")
        if text is not None and not isinstance(text, str):
            return "a choice whose text is not a string"
    return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _choice_text(choice: dict, path: str) -> str:
    if path == "/completions":
        return choice.get("text") or ""
    msg = choice.get("message") or {}
    content = msg.get("content") or ""
    reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
    if reasoning:  # a server-side reasoning parser split the trace off: put the raw shape back together
        return f"{reasoning}\n</think>\n\n{content}"
    return content


def _split_tokens(total: int, texts: list[str], reasons: list[str], max_tokens: int) -> tuple[list[int], bool]:
    """Per-choice completion tokens from the response's total: exact with one choice or for choices cut at
    max_tokens; the others share the rest in proportion to their text length."""
    if len(texts) == 1:
        return [total], False
    counts = [max_tokens if r == "length" else 0 for r in reasons]
    rest = max(0, total - sum(counts))
    free = [i for i, r in enumerate(reasons) if r != "length"]
    chars = sum(len(texts[i]) for i in free)
    for i in free:
        counts[i] = round(rest * len(texts[i]) / chars) if chars else rest // len(free)
    return counts, True
