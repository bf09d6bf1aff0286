"""A loopback OpenAI Chat Completions server for the benchmarks, run in its own process
so it never competes with the client for the GIL.

    python bench/server.py [--delay-ms 100] [--chunks 10000] [--rpm 600]    # prints its URL, then serves

POST /v1/chat/completions answers a fixed chat completion, or (when the body has
"stream": true) an SSE stream of `--chunks` content events in OpenAI's exact framing,
each event its own HTTP chunk, then a finish event, a usage event and `data: [DONE]`.
GET /_last returns the last request (path, headers, JSON body) so a benchmark can check
that llmring and its baseline sent the same thing.

With `--rpm N` the server is a rate-limited provider: it answers at most N chat requests in
any sliding 60 s window and answers the others 429 with OpenAI's error body and a
Retry-After (whole seconds, and `retry-after-ms`) until the oldest answered request leaves
the window; refused requests do not count against it. GET /_stats returns the times
(`time.time()`) of every request answered 200 and of every 429.

HTTP/1.1 is parsed by hand and every answer is pre-encoded and written with one
sendall: the server's own cost per request must stay small next to the client's, or it
would hide the difference being measured. A thread per connection (with a deep listen
backlog) holds hundreds of concurrent keep-alive connections.
"""

from __future__ import annotations

import argparse
import json
import math
import socketserver
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL = "gpt-4o-mini"
CONTENT = "Hello from the bench server."
WINDOW = 60.0  # --rpm counts the requests answered in the last minute


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}\r\n".encode()


def _json_answer(data: object, status: str = "200 OK") -> bytes:
    body = json.dumps(data, separators=(",", ":")).encode()
    return _head(status, "application/json", f"Content-Length: {len(body)}\r\n") + body


def chat_answer() -> bytes:
    return _json_answer({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
    })


def rate_limited(limit: int, wait: float) -> bytes:
    """OpenAI's 429 for requests per minute, with the wait in both headers it may send."""
    body = json.dumps({"error": {
        "message": f"Rate limit reached for {MODEL} in organization org-bench on requests per min (RPM): "
                   f"Limit {limit}, Used {limit}, Requested 1. Please try again in {wait:.3f}s. "
                   "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded"}}, separators=(",", ":")).encode()
    extra = (f"Retry-After: {max(1, math.ceil(wait))}\r\nretry-after-ms: {max(1, round(wait * 1000))}\r\n"
             f"Content-Length: {len(body)}\r\n")
    return _head("429 Too Many Requests", "application/json", extra) + body


def stream_events(chunks: int) -> Iterator[dict]:
    """OpenAI's chat.completion.chunk sequence: role, `chunks` content deltas, finish, usage."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
            "model": MODEL, "system_fingerprint": "fp_bench"}

    def choice(delta: dict, finish: object = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    yield choice({"role": "assistant", "content": "", "refusal": None})
    for i in range(chunks):
        yield choice({"content": f"tok{i % 10} "})
    yield choice({}, "stop")
    yield {**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": chunks,
                                            "total_tokens": chunks + 9}}


def stream_answer(chunks: int) -> bytes:
    events = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in stream_events(chunks)]
    events.append(b"data: [DONE]\n\n")
    framed = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return _head("200 OK", "text/event-stream", "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n") \
        + framed + b"0\r\n\r\n"


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the listen backlog: 200+ clients connect at once

    def __init__(self, delay: float, chunks: int, rpm: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.delay = delay
        self.chat = chat_answer()
        self.stream = stream_answer(chunks)
        self.last: dict = {}
        self.rpm = rpm
        self.window: deque = deque()  # times of the requests answered in the last WINDOW seconds
        self.answered: list = []
        self.refused: list = []
        self.lock = threading.Lock()

    def admit(self) -> float:
        """0 when a request may be answered now (and count it), else seconds until one may."""
        with self.lock:
            now = time.time()
            while self.window and self.window[0] <= now - WINDOW:
                self.window.popleft()
            if len(self.window) >= self.rpm:
                self.refused.append(now)
                return self.window[0] + WINDOW - now
            self.window.append(now)
            self.answered.append(now)
            return 0.0

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up early is fine
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True

    def handle(self) -> None:
        while True:  # keep-alive: one request after another on the same connection
            line = self.rfile.readline(65537)
            if not line:
                return
            if not line.strip():
                continue
            method, path = line.split(b" ", 2)[:2]
            headers, length, close = {}, 0, False
            while True:
                raw = self.rfile.readline(65537)
                if raw in (b"\r\n", b"\n", b""):
                    break
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value = value.strip()
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.lower() == "close":
                    close = True
            body = self.rfile.read(length) if length else b""
            self.wfile.write(self.answer(method, path.decode(), headers, body))
            if close:
                return

    def answer(self, method: bytes, path: str, headers: dict, body: bytes) -> bytes:
        server: Server = self.server  # type: ignore[assignment]
        if method == b"GET" and path == "/_last":
            return _json_answer(server.last)
        if method == b"GET" and path == "/_stats":
            with server.lock:
                return _json_answer({"answered": server.answered, "refused": server.refused})
        if method != b"POST" or not path.endswith("/chat/completions"):
            return _json_answer({"error": {"message": f"no route {path}", "type": "invalid_request_error"}},
                                "404 Not Found")
        try:
            request = json.loads(body)
        except ValueError:
            return _json_answer({"error": {"message": "body is not JSON", "type": "invalid_request_error"}},
                                "400 Bad Request")
        server.last = {"path": path, "headers": headers, "json": request}
        wait = server.admit() if server.rpm else 0.0
        if wait:
            return rate_limited(server.rpm, wait)
        if server.delay:
            time.sleep(server.delay)
        return server.stream if request.get("stream") else server.chat


@contextmanager
def serve(delay_ms: float = 0, chunks: int = 10, rpm: int = 0) -> Iterator[str]:
    """Start the server in a child process; yield its base URL; stop it."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--delay-ms", str(delay_ms), "--chunks", str(chunks),
           "--rpm", str(rpm)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the bench server did not start (exit code {proc.poll()})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=0, help="wait this long before each answer")
    parser.add_argument("--chunks", type=int, default=10, help="content events per streamed answer")
    parser.add_argument("--rpm", type=int, default=0, help="answer 429 above this many requests a minute (0: never)")
    args = parser.parse_args()
    server = Server(args.delay_ms / 1000, args.chunks, args.rpm)
    print(server.url, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
