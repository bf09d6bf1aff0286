"""The map engine behind `Ring.map` and `AsyncRing.map`: many chat() calls at once, results in
input order, each an LLMResponse or the exception of that item.

The caller's thread (or event loop) reads the inputs and hands them to worker threads through a
queue, never more than `window` items ahead of the result it is waiting for: memory stays bounded
however long the input, and an input generator is only ever touched by the caller's thread (so
its own exceptions surface there). At most `concurrency` worker threads, started as items come
(daemon threads: an interrupted program exits without waiting for their calls),
each running Ring.chat, which applies the failover, the deadline and the limits. Leaving the
loop early stops the dispatching; workers finish the call they are in and exit."""

from __future__ import annotations

import collections
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Optional

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .ring import Ring

# Thread stacks are not lowered (threading.stack_size is process-wide): a worker touches only a
# few pages of its stack, and bench/ measured the same peak RSS for 1,000 workers either way.
_STOP = object()


def check_concurrency(concurrency: Any) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be a whole number of at least 1, not {concurrency!r}.")
    return concurrency


def call_for(ring: Ring, target: str, profile: Optional[str], params: dict) -> Callable[[Any], Any]:
    """One item's call: a prompt (str), a list of messages, a dict of chat() parameters (with
    `messages`), or an LLMRequest (sent to its own model if it names one, else to `target`)."""
    from . import prepare
    from .types import LLMRequest

    # What is wrong for every item is wrong now, before the first call: a typo in the alias or
    # in the shared parameters must not fail a million items one by one.
    ring.resolve(target, profile)
    prepare.build(target, ".", params)

    def call(item: Any) -> Any:
        if isinstance(item, LLMRequest):
            return ring.chat(item if item.model else _with_model(item, target), profile=profile, **params)
        if isinstance(item, dict):
            mine = dict(item)
            return ring.chat(target, mine.pop("messages", None), **{"profile": profile, **params, **mine})
        if isinstance(item, (str, list, tuple)):
            return ring.chat(target, list(item) if isinstance(item, tuple) else item, profile=profile, **params)
        raise TypeError(f"a map input must be a prompt (str), a list of messages, a dict of chat() "
                        f"parameters or an LLMRequest, not {type(item).__name__}")

    return call


def _with_model(request: Any, target: str) -> Any:
    import attrs

    return attrs.evolve(request, model=target)


class Dispatch:
    """Worker threads running `call` on items handed over by `submit`; `close` stops them."""

    def __init__(self, call: Callable[[Any], Any], concurrency: int) -> None:
        self.call, self.concurrency = call, concurrency
        self.window = 2 * concurrency  # items handed over but not yet taken back, at most
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list = []
        self._closed = False

    def submit(self, item: Any) -> Future:
        future: Future = Future()
        # The caller's context goes with the item: the call's trace span (otel.py) is then a
        # child of the caller's current span, as a call made in the caller's thread would be.
        self._queue.put((future, item, contextvars.copy_context()))
        if len(self._workers) < self.concurrency:
            self._start_worker()
        return future

    def _start_worker(self) -> None:
        t = threading.Thread(target=self._work, name=f"llmring-map-{len(self._workers)}", daemon=True)
        t.start()
        self._workers.append(t)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            future, item, context = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = context.run(self.call, item)
            except Exception as e:  # noqa: BLE001 - one item's failure is that item's result
                result = e
            future.set_result(result)

    def close(self) -> None:
        """Stop: queued items are cancelled; each worker exits after the call it is in."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                job[0].cancel()
        for _ in self._workers:
            self._queue.put(_STOP)


class _InOrder:
    """The results still to hand back, oldest first, and the inputs' own error if they broke."""

    def __init__(self, call: Callable[[Any], Any], concurrency: int) -> None:
        self.dispatch = Dispatch(call, concurrency)
        self.pending: collections.deque = collections.deque()
        self.reading = True
        self.broken: Optional[Exception] = None  # raised after the results of the items before it

    def wants_more(self) -> bool:
        return self.reading and len(self.pending) < self.dispatch.window

    def add(self, item: Any) -> None:
        self.pending.append(self.dispatch.submit(item))

    def end(self, error: Optional[Exception] = None) -> None:
        self.reading, self.broken = False, error

    def head(self) -> Optional[Future]:
        """The oldest result's future; None when every result was handed back."""
        if self.pending:
            return self.pending.popleft()
        if self.broken is not None:
            raise self.broken
        return None


def run(call: Callable[[Any], Any], inputs: Iterable, concurrency: int,
        unread: Optional[list] = None) -> Iterator[Any]:
    """Results of `call` over `inputs`, in input order (see the module docstring). When the
    iteration stops early (Ctrl-C while waiting), the results that were finished but not yet
    handed back are added to `unread`, in input order, so the caller can still keep them."""
    batch = _InOrder(call, concurrency)
    items = iter(inputs)
    waiting = None
    try:
        while True:
            while batch.wants_more():
                try:
                    batch.add(next(items))
                except StopIteration:
                    batch.end()
                except Exception as e:  # noqa: BLE001 - re-raised in its place by head()
                    batch.end(e)
            waiting = batch.head()
            if waiting is None:
                return
            result, waiting = waiting.result(), None
            yield result
    finally:
        batch.dispatch.close()
        if unread is not None:
            left = ([waiting] if waiting is not None else []) + list(batch.pending)
            unread.extend(f.result() for f in left if f.done() and not f.cancelled())


async def run_async(call: Callable[[Any], Any], inputs: Any, concurrency: int) -> AsyncIterator[Any]:
    """`run` for asyncio: the loop waits for each result without blocking; `inputs` may be an
    iterable or an async iterable."""
    import asyncio

    batch = _InOrder(call, concurrency)
    items = (inputs if hasattr(inputs, "__aiter__") else _as_async(inputs)).__aiter__()
    try:
        while True:
            while batch.wants_more():
                try:
                    batch.add(await items.__anext__())
                except StopAsyncIteration:
                    batch.end()
                except Exception as e:  # noqa: BLE001 - re-raised in its place by head()
                    batch.end(e)
            future = batch.head()
            if future is None:
                return
            yield await asyncio.wrap_future(future)
    finally:
        batch.dispatch.close()


async def _as_async(inputs: Iterable) -> AsyncIterator[Any]:
    for item in inputs:
        yield item
