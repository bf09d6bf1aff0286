"""Closing a stream's HTTP response from another thread, at once.

A thread blocked reading a response does not wake when the socket is closed under it; it
does when the socket is shut down. Ring.stream collects the responses its providers open
(through OPEN_RESPONSES, set while the stream advances) so AsyncRing can abort them when
the consuming task is cancelled."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Optional

OPEN_RESPONSES: ContextVar[Optional[list]] = ContextVar("llmring_open_responses", default=None)


def track(response: Any) -> None:
    """Called by providers' HTTP layer for every streamed response."""
    sink = OPEN_RESPONSES.get()
    if sink is not None:
        sink.append(response)


def abort(response: Any) -> None:
    """Shut the response's socket down (waking a blocked reader), then close it."""
    import socket

    conn = getattr(getattr(response, "raw", None), "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            # socket.socket's own shutdown, also for an SSLSocket: its override drops the SSL
            # object under the reader, which then fails with a ValueError instead of waking.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except (OSError, TypeError):
            pass  # already closed (or not a socket)
    try:
        response.close()
    except Exception:  # noqa: BLE001 - closing from another thread may race the reader; it is closed either way
        pass
