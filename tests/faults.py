"""A hostile HTTP server on 127.0.0.1 for fault-injection tests.

Plain sockets, not http.server, so a case controls every byte and every pause: a status
line dripped one byte at a time, a body that stalls halfway, a stream of keep-alive comments
only, a body with no length and no chunking. Each case is a function of (socket, request)
registered for a path; every case ends by itself (a cap on bytes and on seconds) so a
client that never gives up cannot keep a test running.

    with FaultServer() as s:
        s.route("/v1/chat/completions", slow_drip(ok_body, every=0.2))
        Ring(...).chat("m", "hi", timeout=3)   # pointed at s.url
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Callable, Optional

from httpfake import Recorded as Request  # the same record of a request as the friendly server's

CASE_SECONDS = 60.0  # no case sends for longer than this, whatever the client does


Case = Callable[[socket.socket, Request], None]


class FaultServer:
    """Routes paths (without query) to cases; `hits[path]` counts requests; `requests` keeps them."""

    def __init__(self, tls: Any = None) -> None:
        """`tls`: an ssl.SSLContext for the server side, to serve https."""
        self.tls = tls
        self.routes: dict = {}
        self.hits: dict = {}
        self.requests: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def route(self, path: str, case: Case) -> FaultServer:
        self.routes[path] = case
        return self

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(CASE_SECONDS)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while not self._stop.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                with self._lock:
                    self.hits[request.path] = self.hits.get(request.path, 0) + 1
                    self.requests.append(request)
                case = self.routes.get(request.path)
                if case is None:
                    send_response(conn, 404, b'{"error": {"message": "no such route"}}')
                    continue
                if case(conn, request) is not True:  # a case returns True to keep the connection
                    return
        except OSError:
            pass  # the client gave up: that is what most cases wait for
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _read_request(conn: socket.socket) -> Optional[Request]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            return None
        data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length") or 0)
    while len(rest) < n:
        part = conn.recv(65536)
        if not part:
            return None
        rest += part
    path, _, query = target.partition("?")
    return Request(method, path, query, headers, rest[:n])


def head(status: int, headers: Optional[dict] = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_response(conn: socket.socket, status: int, body: bytes, content_type: str = "application/json",
                  headers: Optional[dict] = None) -> None:
    conn.sendall(head(status, {"Content-Type": content_type, "Content-Length": len(body), **(headers or {})}) + body)


def _pace(every: float, started: float) -> bool:
    """Sleep `every`; False once the case has run for CASE_SECONDS."""
    time.sleep(every)
    return time.monotonic() - started < CASE_SECONDS


# -- cases ---------------------------------------------------------------------------------

def answer(body: Any, status: int = 200, headers: Optional[dict] = None) -> Case:
    """A well-formed answer (JSON-encoded unless bytes), keeping the connection."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def case(conn: socket.socket, _: Request) -> bool:
        send_response(conn, status, data, headers=headers)
        return True

    return case


def slow_drip(body: Any, every: float = 0.2, status: int = 200) -> Case:
    """The whole response, status line first, one byte every `every` seconds."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def case(conn: socket.socket, _: Request) -> None:
        started = time.monotonic()
        for byte in head(status, {"Content-Type": "application/json", "Content-Length": len(data)}) + data:
            conn.sendall(bytes([byte]))
            if not _pace(every, started):
                return

    return case


def keepalive_stream(every: float = 1.0, chunked: bool = True) -> Case:
    """An SSE stream that sends only `: keep-alive` comments, never an event."""

    def case(conn: socket.socket, _: Request) -> None:
        started = time.monotonic()
        headers = {"Content-Type": "text/event-stream"}
        headers.update({"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"})
        conn.sendall(head(200, headers))
        while True:
            comment = b": keep-alive\n\n"
            conn.sendall(b"%x\r\n%s\r\n" % (len(comment), comment) if chunked else comment)
            if not _pace(every, started):
                return

    return case


def stalled_body(prefix: bytes = b'{"choices": [', length: int = 4096, status: int = 200) -> Case:
    """Headers promising `length` bytes, `prefix`, then silence until the client gives up."""

    def case(conn: socket.socket, _: Request) -> None:
        conn.sendall(head(status, {"Content-Type": "application/json", "Content-Length": length}) + prefix)
        started = time.monotonic()
        while _pace(0.1, started):
            pass

    return case


def giant_body(size: int, status: int = 200, prefix: bytes = b'{"error": {"message": "',
               fill: bytes = b"x") -> Case:
    """A body of `size` bytes with a Content-Length, sent as fast as the client reads."""

    def case(conn: socket.socket, _: Request) -> None:
        conn.sendall(head(status, {"Content-Type": "application/json", "Content-Length": size}) + prefix)
        block, left = fill * 65536, size - len(prefix)
        while left > 0:
            conn.sendall(block[:left])
            left -= len(block)

    return case


def gzip_bomb(size: int, status: int = 200, chunked: bool = False) -> Case:
    """A gzip body that decompresses to `size` bytes (about a thousandth of that on the wire)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0" * (1 << 20)
    data = packer.compress(b'{"choices": [{"message": {"content": "')
    data += b"".join(packer.compress(block[:min(1 << 20, size - n)]) for n in range(0, size, 1 << 20))
    data += packer.flush()

    def case(conn: socket.socket, _: Request) -> bool:
        headers: dict = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            conn.sendall(head(status, headers) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        else:
            headers["Content-Length"] = len(data)
            conn.sendall(head(status, headers) + data)
        return True

    return case


def giant_line(size: int, prefix: bytes = b"data: ") -> Case:
    """An unchunked SSE body (no length, closed at the end) that is one line of `size` bytes."""

    def case(conn: socket.socket, _: Request) -> None:
        conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}) + prefix)
        block, left = b"x" * 65536, size
        while left > 0:
            conn.sendall(block[:left])
            left -= len(block)

    return case


def unchunked_sse(events: list, every: float = 0.3, gate: Optional[threading.Event] = None) -> Case:
    """SSE events (each bytes, blank line included) with no length and no chunking, one every
    `every` seconds, then the connection closes (as proxies that buffer nothing do). With a
    `gate`, nothing follows the first event until the gate is set (or CASE_SECONDS pass): a
    client that waits for more bytes before handing the first event over never sees it early."""

    def case(conn: socket.socket, _: Request) -> None:
        started = time.monotonic()
        conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
        for i, event in enumerate(events):
            conn.sendall(event)
            if i == 0 and gate is not None:
                gate.wait(CASE_SECONDS)
            if not _pace(every, started):
                return

    return case


def repeated_page(body: dict) -> Case:
    """The same page every time, `nextPageToken` included: a paginator that trusts it never ends."""
    return answer(body)


def redirect(location: str, status: int = 302) -> Case:
    def case(conn: socket.socket, _: Request) -> bool:
        send_response(conn, status, b"", headers={"Location": location})
        return True

    return case


def nested_json(depth: int = 200_000, status: int = 200) -> Case:
    """A JSON body nested `depth` arrays deep."""
    return answer(b"[" * depth + b"]" * depth, status=status)
