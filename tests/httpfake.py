"""A real HTTP server on 127.0.0.1 for tests: scripted replies, recorded requests.

    server.add("POST", "/v1/chat/completions", Reply(json={...}))
    server.add("POST", "/v1/chat/completions", Reply(status=429, json=..., headers={"retry-after": "30"}))

Replies queued for a route are served in order; the last one repeats. A reply can stream
chunks (chunked transfer encoding, optional pause between chunks), wait before answering
(to trip read timeouts), or drop the connection without answering.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union

import attrs


@attrs.define
class Reply:
    status: int = 200
    json: Any = None
    body: Union[bytes, str, None] = None
    headers: dict = attrs.field(factory=dict)
    chunks: Optional[list] = None  # stream these (bytes or str), chunked encoding; a threading.Event
    # among them holds the rest back until the test sets it (at most 60 s): an event, not a pause
    chunk_delay: float = 0.0
    delay: float = 0.0  # wait this long before answering
    drop: bool = False  # close the connection without a response
    content_type: Optional[str] = None


@attrs.define
class Recorded:
    method: str
    path: str
    query: str
    headers: dict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # concurrency tests open hundreds of connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up early (a deadline, a closed stream) is what many tests do on
        # purpose; printing it would land in a CLI test's captured stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeServer:
    def __init__(self) -> None:
        self.routes: dict = {}
        self.requests: list = []
        self.disconnects = 0  # streams the client abandoned
        self.connections = 0  # TCP connections accepted (keep-alive reuse shows here)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1

            def _serve(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                path, _, query = self.path.partition("?")
                rec = Recorded(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(rec)
                reply = server._next(self.command, path, rec)
                server._write(self, reply)

            do_GET = do_POST = do_DELETE = _serve

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval: shutdown() waits for one, and every test stops a server.
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def add(self, method: str, path: str, *replies: Union[Reply, Callable]) -> FakeServer:
        """Queue replies for METHOD PATH (path without query). A callable gets the Recorded request."""
        with self._lock:
            self.routes.setdefault((method, path), []).extend(replies)
        return self

    def _next(self, method: str, path: str, rec: Recorded) -> Reply:
        with self._lock:
            queue = self.routes.get((method, path))
            if not queue:
                return Reply(status=404, json={"error": f"no route for {method} {path} in the test server"})
            item = queue.pop(0) if len(queue) > 1 else queue[0]
        return item(rec) if callable(item) else item

    def _write(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            h.close_connection = True
            return
        ctype = reply.content_type
        if reply.chunks is not None:
            h.send_response(reply.status)
            h.send_header("content-type", ctype or "text/event-stream")
            h.send_header("transfer-encoding", "chunked")
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            try:
                for chunk in reply.chunks:
                    if isinstance(chunk, threading.Event):
                        chunk.wait(60)
                        continue
                    data = chunk.encode() if isinstance(chunk, str) else chunk
                    if not data:
                        continue
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    h.wfile.flush()
                    if reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                with self._lock:
                    self.disconnects += 1
                h.close_connection = True
            return
        if reply.json is not None:
            data = json.dumps(reply.json).encode()
            ctype = ctype or "application/json"
        else:
            data = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
            ctype = ctype or "text/plain"
        h.send_response(reply.status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(data)))
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def last(self) -> Recorded:
        return self.requests[-1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def openai_answer(text: str = "ok", prompt_tokens: int = 5, completion_tokens: int = 2,
                  model: str = "gpt-4o-mini") -> Reply:
    """A Chat Completions answer, as OpenAI (and compatible servers) send it."""
    return Reply(json={"id": "c1", "object": "chat.completion", "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}})


def sse(*events: Any, event_names: bool = False) -> list:
    """SSE frames for dicts (JSON data) or strings (raw data); (name, dict) pairs add `event:`."""
    out = []
    for ev in events:
        if isinstance(ev, tuple):
            name, data = ev
            out.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")
        elif isinstance(ev, str):
            out.append(f"data: {ev}\n\n")
        else:
            out.append(f"data: {json.dumps(ev)}\n\n")
    return out


def ndjson(*objs: Any) -> list:
    return [json.dumps(o) + "\n" for o in objs]


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate: Callable[[], bool], seconds: float = 3.0) -> bool:
    """Poll until `predicate()` holds or `seconds` pass; the last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def keeping_session() -> Any:
    """A real requests Session that keeps every response alive, so only an explicit close ends one."""
    import requests

    class KeepingSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.responses: list = []

        def request(self, *args: Any, **kwargs: Any) -> Any:
            response = super().request(*args, **kwargs)
            self.responses.append(response)
            return response

    return KeepingSession()
