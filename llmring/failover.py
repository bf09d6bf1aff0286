"""What to do after a provider failure: retry the same model, move to the next, or stop.
And a circuit breaker that rests a model which keeps failing."""

from __future__ import annotations

import threading
import time
from typing import Optional

import attrs

from .exceptions import KINDS

# Failures that say "not now" rather than "never": they count toward the circuit breaker.
AVAILABILITY = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection"})


@attrs.define
class RetryPolicy:
    """Bounded exponential backoff with full jitter, per model."""

    max_retries: int = 2  # tries of one model = 1 + max_retries
    base_delay: float = 0.25
    max_delay: float = 4.0
    retry_after_cap: float = 2.0  # a longer Retry-After moves on to the next model at once

    def delay(self, kind: str, retry: int, retry_after: Optional[float]) -> Optional[float]:
        """Seconds to wait before retry number `retry` (0-based) of the same model, or None
        to stop trying this model."""
        if not KINDS.get(kind, (False, True))[0] or retry >= self.max_retries:
            return None
        if kind == "rate_limit":
            # Only a short, explicit wait is worth it; otherwise another model answers sooner.
            if retry_after is None or retry_after > self.retry_after_cap:
                return None
            return retry_after
        if retry_after is not None and retry_after <= self.retry_after_cap:
            return retry_after
        import backoff  # loaded on the first retry only: it pulls in asyncio

        return backoff.full_jitter(min(self.max_delay, self.base_delay * 2 ** retry))


def fails_over(kind: str) -> bool:
    return KINDS.get(kind, (False, True))[1]


class CircuitBreaker:
    """After `threshold` availability failures in a row, a model is rested for `cooldown` seconds."""

    def __init__(self, threshold: int = 3, cooldown: float = 30.0) -> None:
        self.threshold, self.cooldown = threshold, cooldown
        self._lock = threading.Lock()
        self._failures: dict = {}
        self._open_until: dict = {}

    def is_open(self, ref: str) -> bool:
        with self._lock:
            until = self._open_until.get(ref)
            if until is None:
                return False
            if time.monotonic() >= until:  # half-open: let one call through to probe
                del self._open_until[ref]
                self._failures[ref] = self.threshold - 1
                return False
            return True

    def remaining(self, ref: str) -> float:
        with self._lock:
            return max(0.0, self._open_until.get(ref, 0.0) - time.monotonic())

    def record(self, ref: str, kind: Optional[str]) -> None:
        with self._lock:
            if kind is None:
                self._failures.pop(ref, None)
                self._open_until.pop(ref, None)
            elif kind in AVAILABILITY:
                n = self._failures.get(ref, 0) + 1
                self._failures[ref] = n
                if n >= self.threshold:
                    self._open_until[ref] = time.monotonic() + self.cooldown

