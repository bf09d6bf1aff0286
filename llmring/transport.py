"""The HTTP round trip under every provider call: a deadline that holds whatever the server
does, bounded reads, and redaction of keys from any text a server sends back.

Socket timeouts bound each wait for a byte, not a try: a server that drips one byte every
0.2 s never trips them. So each try with a budget gets a `Deadline`, and one shared watchdog
thread (a heap of deadlines) shuts the connection's socket down when it passes, which wakes a
reader blocked anywhere (status line, headers, body, stream). Sessions from `new_session`
use connection classes that tell the watchdog which socket a try is using; with any other
session the socket timeouts are still capped by the time left and reads check the clock.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, AnyStr, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection as _connection
from urllib3 import connectionpool as _pools
from urllib3 import poolmanager as _poolmanager

REDACTED = "[redacted]"
MIN_SECRET = 8  # a shorter "key" (a local server's dummy) is no secret
READ_SIZE = 1 << 18


# -- redaction ----------------------------------------------------------------------------

def secrets_of(env: Mapping, names: Iterable[str]) -> tuple:
    """The values of the key variables `names` that are long enough to be secrets."""
    values = (env.get(name) for name in names)
    return tuple(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET)


def redact(text: AnyStr, secrets: Iterable[str]) -> AnyStr:
    """`text` (str or bytes) with every secret blanked, and any prefix of one (8+ characters)
    that ends the text: a server or proxy may have cut its own message in the middle of a key."""
    for secret in secrets:
        if len(secret) < MIN_SECRET:
            continue
        key, mark = _like(text, secret), _like(text, REDACTED)
        text = text.replace(key, mark)
        for n in range(min(len(key) - 1, len(text)), MIN_SECRET - 1, -1):
            if text.endswith(key[:n]):
                text = text[:-n] + mark
                break
    return text


def clip(text: str, limit: int, secrets: Iterable[str] = ()) -> str:
    """`text` redacted, then cut to `limit` characters. Redacting first matters: a key
    that straddles the cut would no longer be recognised afterwards."""
    secrets = tuple(secrets)
    text = redact(text, secrets)
    if len(text) <= limit:
        return text
    return redact(text[:limit], secrets) + "…"


def _like(text: AnyStr, value: str) -> AnyStr:
    return value.encode() if isinstance(text, bytes) else value  # type: ignore[return-value]


# -- deadlines ----------------------------------------------------------------------------

class DeadlinePassed(requests.Timeout):
    """The try's budget ran out before the exchange was complete."""


class Deadline:
    """The moment one try must be over. The watchdog `fire`s it then: the socket of the
    connection that claimed it (and still belongs to it) is shut down."""

    __slots__ = ("budget", "when", "conn", "fired", "done")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.when = time.monotonic() + budget
        self.conn: Any = None
        self.fired = False
        self.done = False

    def left(self) -> float:
        return self.when - time.monotonic()

    def passed(self) -> bool:
        return self.fired or time.monotonic() >= self.when

    def cancel(self) -> None:
        """The try is over; the connection may go on serving others."""
        if not self.done:
            self.done, self.conn = True, None
            _WATCHDOG.cancelled()

    def fire(self) -> None:  # called with the watchdog's lock held
        self.fired = True
        conn = self.conn
        if conn is not None and getattr(conn, "_llmring_deadline", None) is self:
            _shutdown(getattr(conn, "sock", None))

    def error(self) -> DeadlinePassed:
        return DeadlinePassed(f"the request's deadline passed ({self.budget:.3g} s for this try)")


def _shutdown(sock: Any) -> None:
    """Wake any thread blocked on `sock`. socket.socket's own shutdown, also for an SSLSocket,
    whose override would drop its SSL object under a reader still inside it."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass  # already closed


class _Watchdog:
    """One daemon thread for every deadline of the process: a heap ordered by time.
    Cancelled deadlines stay in the heap until their time (or a compaction) comes."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.heap: list = []
        self.order = itertools.count()
        self.dead = 0  # cancelled entries still in the heap
        self.thread: Optional[threading.Thread] = None

    def add(self, deadline: Deadline) -> None:
        with self.cond:
            heapq.heappush(self.heap, (deadline.when, next(self.order), deadline))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="llmring-deadlines", daemon=True)
                self.thread.start()
            elif self.heap[0][2] is deadline:  # earlier than what the thread is waiting for
                self.cond.notify()

    def cancelled(self) -> None:
        with self.cond:
            self.dead += 1
            if self.dead > 1024 and self.dead * 2 > len(self.heap):
                self.heap = [entry for entry in self.heap if not entry[2].done]
                heapq.heapify(self.heap)
                self.dead = 0

    def claim(self, conn: Any) -> None:
        """`conn` now serves the current try (or none): only its deadline may shut it down."""
        deadline = CURRENT.get()
        with self.cond:
            conn._llmring_deadline = deadline
            if deadline is not None:
                deadline.conn = conn
                if deadline.fired:  # passed while connecting: the watchdog did not see this socket
                    _shutdown(getattr(conn, "sock", None))

    def _run(self) -> None:
        with self.cond:
            while True:
                while self.heap and self.heap[0][2].done:
                    heapq.heappop(self.heap)
                    self.dead = max(0, self.dead - 1)
                wait = self.heap[0][0] - time.monotonic() if self.heap else None
                if wait is None or wait > 0:
                    self.cond.wait(wait)
                    continue
                heapq.heappop(self.heap)[2].fire()


_WATCHDOG = _Watchdog()
CURRENT: ContextVar[Optional[Deadline]] = ContextVar("llmring_deadline", default=None)


def _after_fork() -> None:
    # The child has no watchdog thread and no connections of its parent's tries.
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- sessions -----------------------------------------------------------------------------

class _Claiming:
    """Mixed into urllib3's connections: each request, and each (re)connect, claims the
    connection for the try being sent from this thread."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _WATCHDOG.claim(self)

    def putrequest(self, *args: Any, **kwargs: Any) -> None:
        _WATCHDOG.claim(self)
        super().putrequest(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Claiming, _connection.HTTPConnection):
    pass


class _HTTPSConnection(_Claiming, _connection.HTTPSConnection):
    pass


class _HTTPPool(_pools.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_pools.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _use_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return _use_pools(super().proxy_manager_for(proxy, **kwargs))


def _use_pools(manager: Any) -> Any:
    if manager.pool_classes_by_scheme is _poolmanager.pool_classes_by_scheme:  # not SOCKS
        manager.pool_classes_by_scheme = _POOLS
    return manager


def new_session(pool_size: int = 10) -> requests.Session:
    """A session whose connections the deadline watchdog can shut down, keeping up to
    `pool_size` connections per host alive."""
    session = requests.Session()
    adapter = _Adapter(pool_connections=16, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- the round trip -----------------------------------------------------------------------

class BodyTooLarge(Exception):
    """A body longer than the reader's limit; `size` is its length when the server said."""

    def __init__(self, limit: int, size: Optional[int]) -> None:
        super().__init__(f"more than {describe_size(limit)}" if size is None else describe_size(size))
        self.limit, self.size = limit, size


def describe_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def open_response(session: requests.Session, method: str, url: str, *, timeout: Any,
                  **kw: Any) -> requests.Response:
    """Send the request and read the status line and headers; the body is left to read.
    Redirects are never followed: requests would send the API key headers to the new host.
    Under a budget (`timeout.budget`) the exchange ends by then, raising DeadlinePassed."""
    budget = getattr(timeout, "budget", None)
    deadline = Deadline(budget) if budget is not None else None
    if deadline is not None:
        left = max(deadline.left(), 0.001)
        timeout = (min(timeout[0], left), min(timeout[1], left))
        _WATCHDOG.add(deadline)
    token = CURRENT.set(deadline)
    try:
        kw["allow_redirects"] = False
        response = session.request(method, url, timeout=timeout, stream=True, **kw)
    except requests.RequestException:
        _give_up(deadline)
        raise
    except BaseException:
        if deadline is not None:
            deadline.cancel()
        raise
    finally:
        CURRENT.reset(token)
    response._llmring_deadline = deadline  # type: ignore[attr-defined]
    return response


def _give_up(deadline: Optional[Deadline]) -> None:
    """Called on a failure: the deadline, if it is why, is the error to report."""
    if deadline is not None:
        deadline.cancel()
        if deadline.passed():
            raise deadline.error() from None


def deadline_of(response: requests.Response) -> Optional[Deadline]:
    return getattr(response, "_llmring_deadline", None)


def extend(response: requests.Response, budget: Optional[float]) -> None:
    """Give a response still being read a new budget from now (None: none). A stream's try
    is bounded up to its first chunk; after it, the stream may use what is left of the whole
    request's deadline, since it can no longer fail over."""
    old = deadline_of(response)
    if old is None or old.done or old.fired:
        return
    new = Deadline(budget) if budget is not None else None
    if new is not None:
        with _WATCHDOG.cond:
            conn = new.conn = old.conn
            if conn is not None and getattr(conn, "_llmring_deadline", None) is old:
                conn._llmring_deadline = new
        _WATCHDOG.add(new)
    response._llmring_deadline = new  # type: ignore[attr-defined]
    old.cancel()


def chunks(response: requests.Response, size: int = READ_SIZE) -> Iterator[bytes]:
    """The body's bytes as they arrive (whatever has come, up to `size`, without waiting for
    more), decoded. Failures are requests exceptions; DeadlinePassed when the budget ran out,
    also when the watchdog's shutdown made the body look ended."""
    try:
        for data in _reads(response.raw, size):
            deadline = deadline_of(response)  # read anew: a stream's deadline moves after its first chunk
            if deadline is not None and deadline.passed():
                raise deadline.error()
            yield data
        deadline = deadline_of(response)
        if deadline is not None and deadline.fired:
            raise deadline.error()
    except DeadlinePassed:
        raise
    except Exception as e:  # noqa: BLE001 - urllib3 / socket / SSL errors become requests' own
        _give_up(deadline_of(response))
        raise _as_requests_error(e) from None


def _reads(raw: Any, size: int) -> Iterator[bytes]:
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        yield from raw.read_chunked(size, decode_content=True)  # each chunk as it comes
        return
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # urllib3 < 2: small reads, so that paced events are not held back long
        yield from raw.stream(1024, decode_content=True)
        return
    while True:  # read1: whatever has arrived, without waiting for `size` bytes
        data = read1(size, decode_content=True)
        if not data:
            return
        yield data


def _as_requests_error(exc: Exception) -> requests.RequestException:
    from urllib3.exceptions import ReadTimeoutError

    if isinstance(exc, requests.RequestException):
        return exc
    if isinstance(exc, (ReadTimeoutError, socket.timeout)):
        return requests.ReadTimeout("Read timed out")
    return requests.ConnectionError(f"Connection aborted ({type(exc).__name__})")


def read_body(response: requests.Response, limit: int) -> bytes:
    """The whole body, or BodyTooLarge once it passes `limit` bytes (the rest is never read
    and the connection is closed, not pooled). Chunks are joined once; nothing else copies it."""
    declared = _declared_length(response)
    if declared is not None and declared > limit:
        finish(response, clean=False)
        raise BodyTooLarge(limit, declared)
    parts, total = [], 0
    for data in chunks(response):
        total += len(data)
        if total > limit:
            finish(response, clean=False)
            raise BodyTooLarge(limit, declared)
        parts.append(data)
    finish(response)
    body = b"".join(parts)
    response._content = body  # what response.json() / .text read
    response._content_consumed = True
    return body


def read_error_body(response: requests.Response, limit: int, secrets: Iterable[str]) -> Optional[int]:
    """Read at most `limit` bytes of an error body, keys redacted, as the response's content.
    Returns the body's size when it was cut (the server's Content-Length, or -1 if unknown)."""
    parts, total, cut = [], 0, None
    try:
        for data in chunks(response, size=limit):
            parts.append(data)
            total += len(data)
            if total >= limit:
                cut = _declared_length(response) or -1
                break
    except requests.RequestException:
        pass  # the status says enough; the body is a courtesy
    body = b"".join(parts)
    response._content = redact(body[:limit], secrets)
    response._content_consumed = True
    finish(response, clean=cut is None)
    return cut


def _declared_length(response: requests.Response) -> Optional[int]:
    """The body's length as the server announced it; None if it did not, or if the body is
    compressed (the length on the wire says nothing of what it decompresses to)."""
    if response.headers.get("content-encoding"):
        return None
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def finish(response: requests.Response, clean: bool = True) -> None:
    """The try is over: drop its deadline; a connection left mid-body is closed, not pooled."""
    deadline = deadline_of(response)
    if deadline is not None:
        deadline.cancel()
    if not clean:
        response.raw.close()  # closes the connection too
    response.close()
