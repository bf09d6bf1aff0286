"""Reading streamed HTTP bodies: Server-Sent Events and newline-delimited JSON.

Lines are split on bytes and decoded whole, so a UTF-8 character split across network
chunks arrives intact. Network failures while reading become ProviderErrors through the
provider's `transport_error`, so a stream that stops sending hits its read timeout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional

import attrs
import requests


@attrs.define(slots=True)
class SSEEvent:
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def iter_lines(response: requests.Response, provider: Any) -> Iterator[bytes]:
    """Yield the body's lines (without line endings) as they arrive."""
    # Chunked bodies: take each network chunk as it comes. Others: small reads, never wait
    # for a big buffer to fill while the server is pacing its events.
    chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
    size = None if chunked else 1024
    pending = b""
    body = response.iter_content(chunk_size=size)
    response._llmring_body = body  # type: ignore[attr-defined]  # relay() finishes it
    try:
        for chunk in body:
            if pending:
                chunk = pending + chunk
            lines = chunk.split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line[:-1] if line.endswith(b"\r") else line
    except requests.RequestException as e:
        raise provider.transport_error(e) from None
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


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
            except ValueError:
                raise provider.error("server", f"sent a line that is not JSON: {raw[:120]!r}") from None


def relay(response: requests.Response, chunks: Iterator) -> Iterator:
    """A provider's chunks read from `response`. After the last one, what is left of the body
    (a stream's closing bytes) is read so the connection goes back to the pool; however the
    stream ends, the response is closed."""
    try:
        yield from chunks
        _drain(response)
    finally:
        response.close()


def _drain(response: requests.Response, limit: int = 1 << 16) -> None:
    # Finishing the body's own iterator (not a second reader) is what lets requests and
    # urllib3 see a cleanly ended response and pool its connection.
    body = getattr(response, "_llmring_body", None)
    try:
        for chunk in body or ():
            limit -= len(chunk)
            if limit < 0:
                return
    except Exception:  # noqa: BLE001 - the answer is complete; a dirty connection is simply not reused
        pass
