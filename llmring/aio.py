"""AsyncRing: the Ring for asyncio code. Calls run on a thread pool sized for real
concurrency; streams are fed to the event loop through a queue."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .ring import _LIVE, Ring
from .types import LLMRequest, LLMResponse, StreamChunk

if TYPE_CHECKING:
    from .lockfile import Binding, Lockfile
    from .resolve import Resolution

DEFAULT_CONCURRENCY = 256

_DONE = object()


class AsyncRing:
    """`await ring.chat(...)`, `async for chunk in ring.stream(...)`; alias methods are plain
    methods, the Ring's own (they are fast and local). Accepts the same arguments as Ring, plus
    `max_concurrency`: how many calls may be in flight at once."""

    def __init__(self, lockfile_path: Any = None, *, max_concurrency: int = DEFAULT_CONCURRENCY,
                 **ring_options: Any) -> None:
        ring_options.setdefault("pool_size", max_concurrency)
        self.__setstate__({"ring": Ring(lockfile_path, **ring_options), "max_concurrency": max_concurrency})

    # Pickled, an AsyncRing is its Ring (which pickles as its settings) and its concurrency.
    def __getstate__(self) -> dict:
        return {"ring": self.ring, "max_concurrency": self.max_concurrency}

    def __setstate__(self, state: dict) -> None:
        self.ring: Ring = state["ring"]
        self.max_concurrency: int = state["max_concurrency"]
        self._executor: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        _LIVE.add(self)

    def _forked(self) -> None:
        # In a child process after fork: the parent's pool threads do not exist here (a
        # task given to its executor would never run). The Ring sees to its own part.
        self.__setstate__(self.__getstate__())

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="llmring")
            return self._executor

    def chat(self, target: Union[str, LLMRequest], messages: Any = None, *,
             profile: Optional[str] = None, **params: Any) -> Any:
        """Awaitable inside a running event loop; outside one (a plain script or a sync
        library method, as in the seed's examples) it blocks and returns the LLMResponse."""
        if not _loop_running():
            return self.ring.chat(target, messages, profile=profile, **params)
        return _Awaitable(self._chat(target, messages, profile, params))

    async def _chat(self, target: Any, messages: Any, profile: Optional[str], params: dict) -> LLMResponse:
        call = functools.partial(self.ring.chat, target, messages, profile=profile, **params)
        # in the task's context, as asyncio.to_thread does: the call's span is the task span's child
        return await asyncio.get_running_loop().run_in_executor(self._pool(), contextvars.copy_context().run, call)

    def stream(self, target: Union[str, LLMRequest], messages: Any = None, *,
               profile: Optional[str] = None, **params: Any) -> Any:
        """An async iterator inside a running event loop, a plain iterator outside one."""
        if not _loop_running():
            return self.ring.stream(target, messages, profile=profile, **params)
        return self._stream(target, messages, profile, params)

    async def _stream(self, target: Any, messages: Any, profile: Optional[str],
                      params: dict) -> AsyncIterator[StreamChunk]:
        # Leaving the loop early, or cancelling the task, stops the producer, which closes
        # its HTTP response.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        chunks = self.ring.stream(target, messages, profile=profile, **params)

        def produce() -> None:
            try:
                for chunk in chunks:
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                chunks.close()
                if not loop.is_closed():
                    loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        future = loop.run_in_executor(self._pool(), contextvars.copy_context().run, produce)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            if not future.done():
                chunks.abort()  # a producer blocked on the network wakes now, not at its next chunk

    chat_stream = stream

    def map(self, target: str, inputs: Any, *, concurrency: int = 16, profile: Optional[str] = None,
            **params: Any) -> Any:
        """Ring.map as an async iterator (`async for result in ring.map(...)`), whose `inputs`
        may also be an async iterable; a plain iterator outside a running event loop. Runs on
        the Ring's map threads (as Ring.map does), not the AsyncRing's pool."""
        if not _loop_running():
            return self.ring.map(target, inputs, concurrency=concurrency, profile=profile, **params)
        from . import batch

        concurrency = batch.check_concurrency(concurrency)
        return batch.run_async(batch.call_for(self.ring, target, profile, params), inputs, concurrency,
                               batch.workers(self.ring))

    # Alias management and lookups: the Ring's own (fast and local), as plain methods.
    @property
    def profile(self) -> Optional[str]:
        return self.ring.profile

    @property
    def lockfile(self) -> Lockfile:
        return self.ring.lockfile

    @property
    def lockfile_path(self) -> Path:
        return self.ring.lockfile_path

    @property
    def lockfile_source(self) -> str:
        return self.ring.lockfile_source

    def resolve(self, target: str, profile: Optional[str] = None) -> Resolution:
        return self.ring.resolve(target, profile)

    def resolve_alias(self, alias: str, profile: Optional[str] = None) -> str:
        return self.ring.resolve_alias(alias, profile)

    def list_aliases(self, profile: Optional[str] = None) -> dict:
        return self.ring.list_aliases(profile)

    def has_alias(self, alias: str, profile: Optional[str] = None) -> bool:
        return self.ring.has_alias(alias, profile)

    def require_aliases(self, aliases: list, context: Optional[str] = None, profile: Optional[str] = None) -> None:
        self.ring.require_aliases(aliases, context, profile)

    def explain(self, alias: str, profile: Optional[str] = None) -> Any:
        return self.ring.explain(alias, profile)

    def pin(self, profile: Optional[str] = None) -> list:
        return self.ring.pin(profile)

    def drift(self, profile: Optional[str] = None) -> list:
        return self.ring.drift(profile)

    def bind_alias(self, alias: str, models: Union[str, list], profile: Optional[str] = None, *,
                   description: Optional[str] = None, params: Optional[dict] = None,
                   requires: Optional[list] = None) -> Binding:
        return self.ring.bind_alias(alias, models, profile, description=description, params=params,
                                    requires=requires)

    def unbind_alias(self, alias: str, profile: Optional[str] = None) -> None:
        self.ring.unbind_alias(alias, profile)

    def init_lockfile(self, force: bool = False, path: Optional[Any] = None) -> Path:
        return self.ring.init_lockfile(force, path)

    def clear_alias_cache(self) -> None:
        self.ring.clear_alias_cache()

    def active_profile(self, profile: Optional[str] = None) -> str:
        return self.ring.active_profile(profile)

    def provider(self, prefix: str) -> Any:
        return self.ring.provider(prefix)

    def model_info(self, ref: str) -> Any:
        return self.ring.model_info(ref)

    def cost(self, ref: str, usage: Any) -> tuple:
        return self.ring.cost(ref, usage)

    async def close(self) -> None:
        """Release the thread pool and connections; calls still queued are cancelled."""
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self.ring.close()

    async def __aenter__(self) -> AsyncRing:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __enter__(self) -> AsyncRing:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._shutdown()

    def __repr__(self) -> str:
        return f"<AsyncRing lockfile={str(self.ring.lockfile_path)!r} ({self.ring.lockfile_source})>"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Awaitable:
    """A pending chat inside an event loop: await it. Touching `.content` without awaiting
    gets a clear error instead of "coroutine has no attribute"."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Any) -> None:
        self._coro = coro

    def __await__(self) -> Any:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> Any:
        raise TypeError(f"chat() was called inside a running event loop, so it must be awaited before "
                        f"reading .{name}: use `await ring.chat(...)`, or llmring.Ring for blocking calls.")


# The original llmring's name for the async service.
LLMRing = AsyncRing
