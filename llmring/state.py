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

    def forked(self) -> None:
        """Called in a child process right after fork (a Ring's fork hook): re-make what must
        not be shared with the parent (locks, connections). Nothing by default."""


    # -- client-side limits and shared cool-downs ([limits.*] in the lockfile) ------------------
    def admit(self, key: str, limit: Limit, tokens: int, lease: float) -> tuple:
        """Take room for one call under `key`'s `limit` (requests and estimated `tokens` per
        minute over a sliding 60 s window, calls in flight): `(0.0, ticket)` when admitted, or
        `(seconds, None)`: how long until room may be free, nothing taken. A ticket is handed
        back with `release`; a concurrency slot not released within `lease` seconds (a worker
        that died mid-call) frees itself. Must be atomic: two workers never both take the
        last room."""
        raise NotImplementedError

    def release(self, key: str, ticket: str, tokens_used: Optional[int]) -> None:
        """The call admitted with `ticket` is over: free its concurrency slot and, when the
        provider reported usage, count `tokens_used` instead of the estimate."""
        raise NotImplementedError

    def cool(self, key: str, seconds: float) -> None:
        """A provider said "not before `seconds`" (429 with Retry-After): every worker sharing
        this state holds calls to `key` until then."""
        raise NotImplementedError

    def cooling(self, key: str) -> float:
        """Seconds of cool-down `key` has left; 0 when none."""
        raise NotImplementedError


class Limit:
    """A `[limits.KEY]` table: requests per minute, tokens per minute, calls in flight (None:
    no limit of that kind)."""

    __slots__ = ("rpm", "tpm", "concurrency")

    def __init__(self, rpm: Optional[int] = None, tpm: Optional[int] = None, concurrency: Optional[int] = None) -> None:
        self.rpm, self.tpm, self.concurrency = rpm, tpm, concurrency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limit) and (self.rpm, self.tpm, self.concurrency) == (
            other.rpm, other.tpm, other.concurrency)

    def __reduce__(self) -> tuple:
        return Limit, (self.rpm, self.tpm, self.concurrency)

    def __repr__(self) -> str:
        return f"Limit(rpm={self.rpm!r}, tpm={self.tpm!r}, concurrency={self.concurrency!r})"


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

    def forked(self) -> None:
        # The child starts empty: the parent's calls in flight do not exist here, so nothing
        # they counted may hold room, and its lock may be held by a thread that is gone.
        self.__init__(self.clock)  # type: ignore[misc]

    def __reduce__(self) -> tuple:
        # Pickled (a Ring sent to another process or machine), it arrives empty: what this
        # process learned is about this process, and its clock is this machine's.
        return type(self), ()

    def rest(self, ref: str, seconds: float) -> None:
        with self._lock:
            self._until[ref] = self.clock() + seconds

    def resting(self, ref: str) -> float:
        with self._lock:
            until = self._until.get(ref)
        return 0.0 if until is None else max(0.0, until - self.clock())
