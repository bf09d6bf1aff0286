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


@attrs.define
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
    try:
        for chunk in response.iter_content(chunk_size=size):
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
        if not raw:
            if data:
                yield SSEEvent(event or "message", "\n".join(data))
            event, data = None, []
            continue
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:  # a last event without its blank line still counts
        yield SSEEvent(event or "message", "\n".join(data))


def iter_ndjson(response: requests.Response, provider: Any) -> Iterator[Any]:
    """Yield each JSON object of an NDJSON body."""
    for raw in iter_lines(response, provider):
        if raw.strip():
            try:
                yield json.loads(raw)
            except ValueError:
                raise provider.error("server", f"sent a line that is not JSON: {raw[:120]!r}") from None
