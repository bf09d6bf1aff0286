"""The map engine behind `Ring.map` and `AsyncRing.map`: many chat() calls at once, results in
input order, each an LLMResponse or the exception of that item.

The caller's thread (or event loop) reads the inputs and hands them to worker threads through a
queue, never more than `window` items ahead of the result it is waiting for: memory stays bounded
however long the input, and an input generator is only ever touched by the caller's thread (so
its own exceptions surface there). At most `concurrency` calls at once, each Ring.chat (which
applies the failover, the deadline and the limits) in the caller's contextvars, on the Ring's
worker threads: kept between map calls (starting a thread costs more than a call's own work in
llmring), an idle one exits after IDLE_SECONDS. Leaving the loop early stops the dispatching;
workers finish the call they are in."""

from __future__ import annotations

import collections
import contextvars
import functools
import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable, Optional

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .ring import Ring

IDLE_SECONDS = 10.0  # a map worker with nothing to do for this long exits
# Thread stacks are not lowered (threading.stack_size is process-wide): a worker touches only a
# few pages of its stack, and bench/ measured the same peak RSS for 1,000 workers either way.


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


class Workers:
    """A Ring's map threads, kept between map calls. A map reserves its concurrency and asks for
    a worker per free slot of it: an idle thread takes the task, else a new one starts (daemon
    threads: an interrupted program exits without waiting for their calls), unless the pool
    already holds as many threads as the maps running reserved; then the task waits for the
    first thread to finish its own. So the pool grows to the largest concurrency asked (summed
    over maps running at once), and a thread idle for `idle_seconds` exits. After `close`,
    threads exit once their task is done (a map still running goes on, a thread per task)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()  # None: exit (close)
        self._idle = 0  # threads waiting on _tasks that no task was handed to yet
        self._owed = 0  # tasks in _tasks for the next thread that finishes its own
        self._reserved = 0
        self._threads: set = set()
        self._started = 0
        self._closed = False

    def reserve(self, concurrency: int) -> None:
        with self._lock:
            self._reserved += concurrency

    def release(self, concurrency: int) -> None:
        with self._lock:
            self._reserved -= concurrency

    def run(self, task: Callable[[], None]) -> None:
        with self._lock:
            # put under the lock: an idle thread timing out now still finds it
            if self._idle:
                self._idle -= 1
                self._tasks.put(task)
                return
            if len(self._threads) >= self._reserved and not self._closed:
                self._owed += 1
                self._tasks.put(task)
                return
            self._started += 1
            thread = threading.Thread(target=self._work, args=(task,), name=f"llmring-map-{self._started}",
                                      daemon=True)
            self._threads.add(thread)
        thread.start()

    def threads(self) -> list:
        """The threads alive now, busy or idle."""
        with self._lock:
            return list(self._threads)

    def busy(self) -> int:
        """How many threads are running a task."""
        with self._lock:
            return len(self._threads) - self._idle

    def close(self) -> None:
        """Idle threads exit now, busy ones when their task is done."""
        with self._lock:
            self._closed = True
            for _ in range(self._idle):
                self._tasks.put(None)
            self._idle = 0

    def _work(self, task: Optional[Callable[[], None]]) -> None:
        try:
            while task is not None:
                task()
                task = self._next()
        finally:
            self._leave()

    def _next(self) -> Optional[Callable[[], None]]:
        with self._lock:
            if self._owed:
                self._owed -= 1
                return self._tasks.get_nowait()
            if self._closed:
                return self._leave(locked=True)
            self._idle += 1
        try:
            return self._tasks.get(timeout=self.idle_seconds)
        except queue.Empty:
            with self._lock:
                try:  # handed over while the wait was ending: run() counted this thread taken
                    return self._tasks.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return self._leave(locked=True)

    def _leave(self, locked: bool = False) -> None:
        # Counted out in the same breath as it stops taking tasks: run() must never owe a task
        # to a thread that is leaving.
        if locked:
            self._threads.discard(threading.current_thread())
            return
        with self._lock:
            self._threads.discard(threading.current_thread())


def workers(ring: Ring) -> Workers:
    """The Ring's map workers, made on first use. Ring.close() lets them go; in a child after
    fork, the Ring drops them (the parent's threads do not exist there); a pickled Ring never
    carries them (it pickles as its settings)."""
    from .ring import MAP_WORKERS  # the Ring drops them on close and after fork

    pool = ring.__dict__.get(MAP_WORKERS)
    return pool if pool is not None else ring.__dict__.setdefault(MAP_WORKERS, Workers())


class Result:
    """One item's result, set once by a worker and waited for by the caller: a lock held until
    it is set (lighter than a concurrent.futures.Future, a Condition and an RLock per item)."""

    __slots__ = ("value", "_ready", "_wake")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._wake: Optional[Callable[[], None]] = None

    def set(self, value: Any) -> None:
        self.value = value
        self._ready.release()
        wake = self._wake  # read after the release: a waiter that set it before then is woken
        if wake is not None:
            wake()

    def done(self) -> bool:
        return not self._ready.locked()

    def result(self) -> Any:
        with self._ready:  # interruptible: Ctrl-C reaches a caller waiting here
            return self.value

    async def wait(self) -> Any:
        """The value, without blocking the event loop."""
        if not self.done():
            import asyncio

            loop = asyncio.get_running_loop()
            woken = loop.create_future()
            self._wake = functools.partial(_wake_up, loop, woken)
            if not self.done():  # set before _wake was: nobody will wake us, nor need to
                await woken
        return self.value


def _wake_up(loop: Any, woken: Any) -> None:
    if not loop.is_closed():  # the loop may be gone (the waiting task was abandoned)
        try:
            loop.call_soon_threadsafe(lambda: woken.done() or woken.set_result(None))
        except RuntimeError:  # closed between the check and the call
            pass


class Dispatch:
    """Runs `call` on the items handed over by `submit`, at most `concurrency` at once, on
    `workers`; `close` drops the items not yet started."""

    def __init__(self, call: Callable[[Any], Any], concurrency: int, workers: Workers) -> None:
        self.call, self.concurrency, self.workers = call, concurrency, workers
        workers.reserve(concurrency)
        self.window = 2 * concurrency  # items handed over but not yet taken back, at most
        self._lock = threading.Lock()
        self._jobs: collections.deque = collections.deque()
        self._active = 0  # workers draining this dispatch's jobs

    def submit(self, item: Any) -> Result:
        slot = Result()
        # The caller's context goes with the item: the call's trace span (otel.py) is then a
        # child of the caller's current span, as a call made in the caller's thread would be.
        with self._lock:
            self._jobs.append((slot, item, contextvars.copy_context()))
            start = self._active < self.concurrency
            self._active += start
        if start:
            self.workers.run(self._drain)
        return slot

    def _drain(self) -> None:
        while True:
            with self._lock:  # a worker leaves only when no job is left, under the lock submit takes
                if not self._jobs:
                    self._active -= 1
                    return
                slot, item, context = self._jobs.popleft()
            try:
                result = context.run(self.call, item)
            except Exception as e:  # noqa: BLE001 - one item's failure is that item's result
                result = e
            slot.set(result)

    def close(self) -> None:
        """Stop: the items not yet started never will be; each worker finishes the call it is in."""
        with self._lock:
            self._jobs.clear()
            closed, self.concurrency = self.concurrency, 0
        self.workers.release(closed)


class _InOrder:
    """The results still to hand back, oldest first, and the inputs' own error if they broke."""

    def __init__(self, call: Callable[[Any], Any], concurrency: int, workers: Workers) -> None:
        self.dispatch = Dispatch(call, concurrency, workers)
        self.pending: collections.deque = collections.deque()
        self.reading = True
        self.broken: Optional[Exception] = None  # raised after the results of the items before it

    def wants_more(self) -> bool:
        return self.reading and len(self.pending) < self.dispatch.window

    def add(self, item: Any) -> None:
        self.pending.append(self.dispatch.submit(item))

    def end(self, error: Optional[Exception] = None) -> None:
        self.reading, self.broken = False, error

    def head(self) -> Optional[Result]:
        """The oldest result; None when every result was handed back."""
        if self.pending:
            return self.pending.popleft()
        if self.broken is not None:
            raise self.broken
        return None


def run(call: Callable[[Any], Any], inputs: Iterable, concurrency: int,
        unread: Optional[list] = None, workers: Optional[Workers] = None) -> Iterator[Any]:
    """Results of `call` over `inputs`, in input order (see the module docstring), on `workers`
    (None: threads of this run's own, which exit when it ends). When the iteration stops early
    (Ctrl-C while waiting), the results that were finished but not yet handed back are added
    to `unread`, in input order, so the caller can still keep them."""
    own = workers is None
    batch = _InOrder(call, concurrency, Workers() if own else workers)
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
        if own:
            batch.dispatch.workers.close()
        if unread is not None:
            left = ([waiting] if waiting is not None else []) + list(batch.pending)
            unread.extend(f.value for f in left if f.done())


async def run_async(call: Callable[[Any], Any], inputs: Any, concurrency: int,
                    workers: Workers) -> AsyncIterator[Any]:
    """`run` for asyncio: the loop waits for each result without blocking; `inputs` may be an
    iterable or an async iterable."""
    batch = _InOrder(call, concurrency, workers)
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
            result = batch.head()
            if result is None:
                return
            yield await result.wait()
    finally:
        batch.dispatch.close()


async def _as_async(inputs: Iterable) -> AsyncIterator[Any]:
    for item in inputs:
        yield item
