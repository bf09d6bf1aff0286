"""Where the circuit breaker keeps what it knows: failures in a row and rest periods per model.

The breaker's rules live in failover.CircuitBreaker; this is only storage, behind a small
interface, so a backend shared by many workers (e.g. Redis, with rests as expiring keys) can
replace the in-process default without touching the breaker or the walker."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional


class State:
    """The storage interface. Times are durations in seconds, so a shared backend need not
    share a clock with this process."""

    def failure(self, ref: str) -> int:
        """Count one more availability failure in a row for `ref`; return the count."""
        raise NotImplementedError

    def success(self, ref: str) -> None:
        """`ref` answered: forget its failures and any rest."""
        raise NotImplementedError

    def rest(self, ref: str, seconds: float) -> None:
        """Rest `ref` (skip it while others are left) for `seconds` from now."""
        raise NotImplementedError

    def resting(self, ref: str) -> float:
        """Seconds of rest `ref` has left; 0 when it is not resting."""
        raise NotImplementedError


class MemoryState(State):
    """The default: state of this process only, thread-safe. `clock` is injectable for tests."""

    def __init__(self, clock: Optional[Callable[[], float]] = None) -> None:
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._failures: dict = {}
        self._until: dict = {}

    def failure(self, ref: str) -> int:
        with self._lock:
            n = self._failures[ref] = self._failures.get(ref, 0) + 1
            return n

    def success(self, ref: str) -> None:
        with self._lock:
            self._failures.pop(ref, None)
            self._until.pop(ref, None)

    def rest(self, ref: str, seconds: float) -> None:
        with self._lock:
            self._until[ref] = self.clock() + seconds

    def resting(self, ref: str) -> float:
        with self._lock:
            until = self._until.get(ref)
        return 0.0 if until is None else max(0.0, until - self.clock())
