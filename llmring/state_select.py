"""Which State a Ring uses: `Ring(state_url=...)`, else $LLMRING_STATE_URL, else in-process.

A shared state (Redis) is wrapped in FallbackState: a state backend that is down or broken
never fails a call; the process carries on with its own state and says so once."""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from .exceptions import ConfigurationError
from .state import Limit, MemoryState, State
from .walker import _log

ENV_URL = "LLMRING_STATE_URL"
SCHEMES = ("redis", "rediss", "unix")
RETRY_EVERY = 5.0  # seconds between tries of a shared state that failed: not on every call


def state_for(url: Optional[str] = None) -> State:
    """The State for `url` (None: $LLMRING_STATE_URL; empty: in-process). Nothing connects yet;
    ConfigurationError for a URL llmring cannot use or a missing redis-py."""
    source = "state_url" if url is not None else ENV_URL
    url = (os.environ.get(ENV_URL, "") if url is None else url).strip()
    if not url:
        return MemoryState()
    from .redis_state import where

    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(f"{source}={where(url)!r} is not a state llmring can share: give "
                                 f"redis://HOST:PORT/DB (or rediss://, unix://), or leave it unset to keep "
                                 f"limits and the circuit breaker in this process.")
    try:
        from .redis_state import RedisState

        shared = RedisState(url)
    except ImportError:
        raise ConfigurationError(f'{source} is a Redis URL but redis-py is not installed: '
                                 f'pip install "llmring[redis]".') from None
    except ValueError as e:  # redis-py's word on a malformed URL
        raise ConfigurationError(f"{source}={where(url)!r} is not a valid Redis URL ({e}); fix it or "
                                 f"unset it.") from None
    return FallbackState(shared, where(url))


class FallbackState(State):
    """`shared` while it works; when it fails, this process's own MemoryState and ONE warning
    on the `llmring` logger. The shared state is tried again at most every `retry_every`
    seconds (by one call at a time), and when it answers, sharing resumes (one more line).
    Tickets say which state gave them, so each is released where it was taken."""

    def __init__(self, shared: State, name: str, *, retry_every: float = RETRY_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.shared, self.name, self.retry_every, self.clock = shared, name, retry_every, clock
        self.local = MemoryState()
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0
        self._probing = False
        _LIVE.add(self)

    @property
    def sharing(self) -> bool:
        """Whether calls use the shared state now (False: this process's own, until it is back)."""
        return not self._down

    def _call(self, op: str, *args: Any) -> tuple:
        """(True, the shared state's answer) or (False, the local state's)."""
        with self._lock:
            probe = self._down
            if probe:
                if self._probing or self.clock() < self._retry_at:
                    return False, getattr(self.local, op)(*args)
                self._probing = True  # this call finds out whether it is back; the others go on
        try:
            result = getattr(self.shared, op)(*args)
        except Exception as e:  # noqa: BLE001 - the state backend must never fail a call
            self._failed(e, probe)
            return False, getattr(self.local, op)(*args)
        except BaseException:  # Ctrl-C mid-probe: a later call probes instead
            if probe:
                with self._lock:
                    self._probing = False
            raise
        if probe:  # only a probe says it is back: a call begun before the failure proves nothing
            self._back()
        return True, result

    def _failed(self, error: Exception, probe: bool = False) -> None:
        with self._lock:
            first, self._down = not self._down, True
            if first or probe:
                self._probing, self._retry_at = False, self.clock() + self.retry_every
        if first:
            _log("llmring.state").warning(
                "llmring: the shared state at %s failed (%s); limits, cool-downs and the circuit breaker are this "
                "process's own until it is back (checked every %g s).", self.name, _describe(error), self.retry_every)

    def _back(self) -> None:
        with self._lock:
            self._down = self._probing = False
        _log("llmring.state").warning("llmring: the shared state at %s is back; limits, cool-downs and the circuit "
                                      "breaker are shared again.", self.name)

    def failure(self, ref: str) -> int:
        return self._call("failure", ref)[1]

    def success(self, ref: str) -> None:
        self._call("success", ref)

    def rest(self, ref: str, seconds: float) -> None:
        self._call("rest", ref, seconds)

    def resting(self, ref: str) -> float:
        return self._call("resting", ref)[1]

    def admit(self, key: str, limit: Limit, tokens: int, lease: float) -> tuple:
        shared, (wait, ticket) = self._call("admit", key, limit, tokens, lease)
        return wait, None if ticket is None else ("s:" if shared else "l:") + ticket

    def release(self, key: str, ticket: str, tokens_used: Optional[int]) -> None:
        where, ticket = ticket[:2], ticket[2:]
        if where == "l:":
            self.local.release(key, ticket, tokens_used)
            return
        if self._down:  # its lease frees the slot when it ends
            return
        try:
            self.shared.release(key, ticket, tokens_used)
        except Exception as e:  # noqa: BLE001 - its lease frees the slot when it ends
            self._failed(e)

    def cool(self, key: str, seconds: float) -> None:
        self._call("cool", key, seconds)

    def cooling(self, key: str) -> float:
        return self._call("cooling", key)[1]

    def spent(self, key: str) -> Optional[float]:
        return self._call("spent", key)[1]

    def seed(self, key: str, usd: float, ttl: float) -> float:
        return self._call("seed", key, usd, ttl)[1]

    def spend(self, key: str, usd: float) -> Optional[float]:
        return self._call("spend", key, usd)[1]

    def __reduce__(self) -> tuple:  # its lock and local state stay behind; the URL travels
        return _remade, (self.shared, self.name, self.retry_every)

    def __repr__(self) -> str:
        return f"<FallbackState {self.name} {'shared' if self.sharing else 'in-process until it is back'}>"


_LIVE: weakref.WeakSet = weakref.WeakSet()


def _after_fork() -> None:
    # A lock held by a parent's thread at fork would be held for ever in the child, and that
    # thread's probe of the shared state never ends here (redis-py reconnects in the child).
    for state in list(_LIVE):
        state._lock, state._probing = threading.Lock(), False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _remade(shared: State, name: str, retry_every: float) -> FallbackState:
    return FallbackState(shared, name, retry_every=retry_every)


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
