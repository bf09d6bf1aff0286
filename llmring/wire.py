"""Reading streamed HTTP bodies: Server-Sent Events and newline-delimited JSON.

Lines are split on bytes and decoded whole, so a UTF-8 character split across network
chunks arrives intact. Network failures while reading become ProviderErrors through the
provider's `transport_error`: a stream that stops sending hits its read timeout, and one
that goes on past the try's deadline is cut there (see transport)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional

import attrs
import requests

from .transport import chunks as body_chunks
from .transport import describe_size, finish

MAX_LINE = 16 << 20  # bytes in one line of a stream, at most
QUOTE_LIMIT = 120


@attrs.define(slots=True)
class SSEEvent:
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def iter_lines(response: requests.Response, provider: Any, limit: int = MAX_LINE) -> Iterator[bytes]:
    """Yield the body's lines (without line endings) as soon as their bytes arrive. A line
    longer than `limit` bytes is an "invalid_output" error (nobody's event is that big)."""
    pending: list = []  # pieces of a line not ended yet, joined once it ends: linear time
    size = 0
    body = body_chunks(response)
    response._llmring_body = body  # type: ignore[attr-defined]  # relay() finishes it
    try:
        for chunk in body:
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if lines:
                if pending:
                    lines[0] = b"".join(pending) + lines[0]
                    pending, size = [], 0
                for line in lines:
                    yield line[:-1] if line.endswith(b"\r") else line
            if tail:
                pending.append(tail)
                size += len(tail)
                if size > limit:
                    raise provider.error("invalid_output", f"sent a line longer than {describe_size(limit)}; "
                                                           f"llmring reads lines up to that size.")
    except requests.RequestException as e:
        raise provider.transport_error(e) from None
    if pending:
        line = b"".join(pending)
        yield line[:-1] if line.endswith(b"\r") else line


def iter_sse(response: requests.Response, provider: Any) -> Iterator[SSEEvent]:
    """Yield the events of an SSE body; comments (keep-alives) are skipped."""
    event: Optional[str] = None
    data: list = []
    for raw in iter_lines(response, provider):
        if raw.startswith(b"data:"):  # nearly every line: test it first, on bytes
            data.append(raw[6:] if raw[5:6] == b" " else raw[5:])
        elif not raw:
            if data:
                yield SSEEvent(event or "message", _joined(data))
            event, data = None, []
        elif raw.startswith(b"event:"):
            event = raw[6:].strip().decode("utf-8", errors="replace")
        # other fields (id, retry) and ":" comments carry nothing we use
    if data:  # a last event without its blank line still counts
        yield SSEEvent(event or "message", _joined(data))


def _joined(data: list) -> str:
    return (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", errors="replace")


def iter_ndjson(response: requests.Response, provider: Any) -> Iterator[Any]:
    """Yield each JSON object of an NDJSON body."""
    for raw in iter_lines(response, provider):
        if raw.strip():
            try:
                yield json.loads(raw)
            except RecursionError:
                raise provider.error("invalid_output", "sent a line nested too deeply to read") from None
            except ValueError:
                text = provider.redact(raw.decode("utf-8", errors="replace"), limit=QUOTE_LIMIT)
                raise provider.error("server", f"sent a line that is not JSON: {text!r}") from None


def relay(response: requests.Response, chunks: Iterator) -> Iterator:
    """A provider's chunks read from `response`. After the last one, what is left of the body
    (a stream's closing bytes) is read so the connection goes back to the pool; however the
    stream ends, the response is closed and its deadline dropped."""
    clean = False
    try:
        yield from chunks
        clean = _drain(response)
    finally:
        finish(response, clean=clean)


def _drain(response: requests.Response, limit: int = 1 << 16) -> bool:
    """Read the body's end; False when too much is left (or it fails): the connection is then
    closed rather than pooled. Finishing the body's own iterator (not a second reader) is what
    lets urllib3 see a cleanly ended response and pool its connection."""
    try:
        for data in getattr(response, "_llmring_body", None) or body_chunks(response):
            limit -= len(data)
            if limit < 0:
                return False
    except Exception:  # noqa: BLE001 - the answer is complete; a dirty connection is simply not reused
        return False
    return True
