"""Real local servers for the backend tests: llama-cpp-python's OpenAI-compatible server on 127.0.0.1, and a tiny
scripted HTTP server (http.server) for retry/backoff and n>1 behaviour."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from harness.backends.base import GenRequest

# llama.cpp's AMX matmul segfaults on some AMX machines (see harness/backends/llamacpp.py): the server gets the
# same workaround as the backend, applied before llama_cpp.server builds its Llama.
_SERVER_BOOT = """
import sys, runpy
import llama_cpp.llama_cpp as C
from harness.backends.llamacpp import _cpu_has_amx
if _cpu_has_amx():
    _orig = C.llama_model_default_params
    def _params():
        p = _orig()
        p.use_extra_bufts = False
        return p
    C.llama_model_default_params = _params
sys.argv = ["llama_cpp.server"] + sys.argv[1:]
runpy.run_module("llama_cpp.server", run_name="__main__")
"""

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(gguf: str | os.PathLike, port: int, log_path: Path, timeout: float = 120.0, extra=()):
    """``python -m llama_cpp.server --model GGUF --host 127.0.0.1 --port PORT``; returns the Popen once it serves."""
    log = open(log_path, "wb")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER_BOOT, "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "1", "--verbose", "False", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2.0).status_code == 200:
                proc._r1_log = log  # closed by stop_server
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    log.close()
    raise RuntimeError(f"llama_cpp.server did not answer within {timeout} s: {log_path.read_text()[-2000:]}")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
    log = getattr(proc, "_r1_log", None)
    if log:
        log.close()


class ScriptedServer:
    """An HTTP server on 127.0.0.1 that answers POSTs from a script: a list of (status, json body, headers),
    one per request, the last one repeating. Records every request body and its arrival time."""

    def __init__(self, script, get=None):
        self.script = list(script)
        self.get = dict(get or {})  # GET path -> json body (others: 404)
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with outer.lock:
                    i = len(outer.requests)
                    outer.requests.append({"path": self.path, "body": body,
                                           "auth": self.headers.get("Authorization")})
                    outer.times.append(time.monotonic())
                    status, payload, headers = outer.script[min(i, len(outer.script) - 1)]
                if callable(payload):
                    payload = payload(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path in outer.get:
                    data = json.dumps(outer.get[self.path]).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    data = b""
                    self.send_response(404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def completion_body(texts, prompt_tokens=5, completion_tokens=None, finish="stop"):
    """An OpenAI /v1/completions response with one choice per text."""
    if completion_tokens is None:
        completion_tokens = sum(len(t.split()) for t in texts)
    return {
        "id": "cmpl-test", "object": "text_completion", "model": "stub",
        "choices": [{"index": i, "text": t, "finish_reason": finish} for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def chat_body(text, prompt_tokens=5, completion_tokens=3):
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def req(content: str, seed: int = 0, **kw) -> GenRequest:
    fields = dict(messages=({"role": "user", "content": content},), max_tokens=32, temperature=0.6, top_p=0.95,
                  seed=seed)
    fields.update(kw)
    return GenRequest(**fields)
