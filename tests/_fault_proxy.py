"""A fault-injecting HTTP proxy on 127.0.0.1, put in front of a real OpenAI-compatible server (llama_cpp.server).

Each POST takes the next fault of a script (then ``default``), so a test knows exactly what was injected:

``ok``          forwarded, answered as the server answered
``500``         HTTP 500, not forwarded
``503``         HTTP 503, not forwarded
``429``         HTTP 429 with ``Retry-After: <retry_after>``, not forwarded
``reset``       the connection is reset (RST) before any answer
``stall``       nothing is answered for ``stall_s`` seconds (past the client's timeout), then the connection closes
``cut``         forwarded; the server's answer is sent with its full Content-Length but only half its body, then RST
``unfinished``  forwarded; the answer is a well-formed 200 whose completion is half the text and has no
                finish_reason (what a server that gives up mid-generation and returns what it has would send)

GETs (``/v1/models``, ``/props``) are always forwarded. Every POST is logged with its arrival time, fault and the
time its answer (or failure) left, so Retry-After and failover can be checked from the server side.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable

import httpx

FAULTS = ("ok", "500", "503", "429", "reset", "stall", "cut", "unfinished")


class FaultProxy:
    def __init__(self, upstream: str, script: Iterable[str] = (), *, default: str = "ok", retry_after: float = 1.0,
                 stall_s: float = 6.0, port: int = 0):
        """``upstream``: the server's origin, e.g. ``http://127.0.0.1:8000`` (paths are forwarded as they come)."""
        self.upstream = upstream.rstrip("/")
        self.script = list(script)
        for f in self.script + [default]:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; known: {FAULTS}")
        self.default, self.retry_after, self.stall_s = default, retry_after, stall_s
        # one entry per POST: {"i", "fault", "path", "t_in", "t_out"} and "text", the first choice's text as
        # delivered, for forwarded 200s ("ok", "unfinished")
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=600.0)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                r = outer._client.get(outer.upstream + self.path)
                self._send(r.status_code, r.content, r.headers.get("content-type", "application/json"))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    i = len(outer.log)
                    fault = outer.script[i] if i < len(outer.script) else outer.default
                    entry = {"i": i, "fault": fault, "path": self.path, "t_in": time.monotonic(), "t_out": None}
                    outer.log.append(entry)
                try:
                    self._fault(fault, body, entry)
                finally:
                    entry["t_out"] = time.monotonic()

            def _fault(self, fault: str, body: bytes, entry: dict):
                if fault in ("500", "503"):
                    return self._send(int(fault), json.dumps({"error": f"injected {fault}"}).encode())
                if fault == "429":
                    return self._send(429, b'{"error": "injected 429"}',
                                      extra={"Retry-After": f"{outer.retry_after:g}"})
                if fault == "reset":
                    return self._reset()
                if fault == "stall":
                    outer._stop.wait(outer.stall_s)
                    return self._reset()
                r = outer._client.post(outer.upstream + self.path, content=body,
                                       headers={"Content-Type": "application/json"})
                if fault == "cut" and r.status_code == 200:
                    data = r.content
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    return self._reset()
                if fault == "ok" and r.status_code == 200:
                    entry["text"] = _first_text(r.json())
                if fault == "unfinished" and r.status_code == 200:
                    data = r.json()
                    for c in data.get("choices", []):
                        if "text" in c:
                            c["text"] = c["text"][: len(c["text"]) // 2]
                        elif isinstance(c.get("message"), dict):
                            c["message"]["content"] = (c["message"].get("content") or "")[:len(c["message"].get("content") or "") // 2]
                        c["finish_reason"] = None
                    entry["text"] = _first_text(data)
                    return self._send(200, json.dumps(data).encode())
                self._send(r.status_code, r.content, r.headers.get("content-type", "application/json"))

            def _send(self, status: int, data: bytes, ctype: str = "application/json", extra: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _reset(self):
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN, as a crashed peer would
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                try:
                    self.connection.close()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # a reset we caused ourselves is not news

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fault-proxy")
        self.thread.start()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.lock:
            for e in self.log:
                out[e["fault"]] = out.get(e["fault"], 0) + 1
        return out

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _first_text(data: dict) -> str | None:
    choices = data.get("choices") or [{}]
    c = choices[0]
    return c["text"] if "text" in c else (c.get("message") or {}).get("content")
