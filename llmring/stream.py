"""Streaming: open a stream up to its first chunk (one try of the walk), then relay the rest.
A stream fails over only before its first chunk; a failure after it raises
StreamInterruptedError with the text received so far."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, Callable, Optional

from .answer import structured
from .cancel import OPEN_RESPONSES, abort
from .exceptions import ProviderError, StreamInterruptedError
from .types import LLMRequest, StreamChunk


class Stream:
    """The iterator `Ring.stream` returns: each item is a `StreamChunk`, the last one carrying
    `finish_reason`, `usage` and the model that answered. `close()` ends it; `abort()` may
    be called from another thread and shuts its HTTP response down at once. Used as a
    context manager, it is closed on leaving the block.

    ```python
    with ring.stream("summarizer", "Tell me a story") as stream:
        for chunk in stream:
            print(chunk.delta, end="")
    ```
    """

    def __init__(self, chunks: Generator[StreamChunk, None, None]) -> None:
        self._chunks = chunks
        self._responses: list = []
        self._started = False

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> StreamChunk:
        if self._started:  # responses are only opened before the first chunk
            return next(self._chunks)
        token = OPEN_RESPONSES.set(self._responses)
        try:
            chunk = next(self._chunks)
        finally:
            OPEN_RESPONSES.reset(token)
        self._started = True
        return chunk

    def close(self) -> None:
        """Stop the stream and release its connection (from another thread: as `abort()`)."""
        try:
            self._chunks.close()
        except ValueError:  # running in another thread: cut its connection instead
            self.abort()

    def abort(self) -> None:
        """Shut the stream's HTTP response down now; safe to call from any thread."""
        for response in list(self._responses):
            abort(response)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_stream(provider: Any, model: str, request: LLMRequest, timeout: Any) -> tuple:
    """One try of a streamed walk: (first chunk, the rest). A stream that fails before its first
    chunk is closed and its error raised, so the walk can retry or fail over."""
    chunks = provider.stream(model, request, timeout)
    try:
        return next(chunks), chunks
    except StopIteration:
        raise provider.error("connection", "the stream ended before its first chunk") from None
    except BaseException:
        chunks.close()
        raise


def past_first_chunk(left: Optional[float]) -> None:
    """A stream past its first chunk cannot fail over any more: its response may now use what
    is `left` of the request's deadline (None: no deadline), not just its try's share."""
    from .transport import extend  # loaded with the provider that opened the stream

    for response in OPEN_RESPONSES.get() or ():
        extend(response, left)


def relay(first: StreamChunk, chunks: Generator, ref: str, request: LLMRequest, provider: Any,
          label: Callable[[StreamChunk], None]) -> Iterator[StreamChunk]:
    """Pass a stream's chunks on; `label` the final one (and parse structured output there)."""
    received: list = []
    chunk = first
    try:
        while True:
            received.append(chunk.delta)
            if chunk.finish_reason is not None or chunk.usage is not None:
                label(chunk)
            if chunk.finish_reason is not None:
                chunk.parsed = structured("".join(received), chunk.tool_calls, request, provider)
            yield chunk
            try:
                chunk = next(chunks)
            except StopIteration:
                return
    except ProviderError as e:
        partial = "".join(received)
        raise StreamInterruptedError(f"{ref} stopped mid-stream after {len(partial)} characters: {e}",
                                     partial=partial, provider=e.provider, model=ref, status=e.status,
                                     kind=e.kind) from e
    finally:
        chunks.close()
