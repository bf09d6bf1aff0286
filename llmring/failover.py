"""What to do after a provider failure: retry the same model, move to the next, or stop.
And a circuit breaker that rests a model which keeps failing."""

from __future__ import annotations

from typing import Optional

import attrs

from .exceptions import KINDS
from .state import MemoryState, State

# Failures that say "not now" rather than "never": they count toward the circuit breaker.
AVAILABILITY = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection"})


@attrs.define
class RetryPolicy:
    """Bounded exponential backoff with full jitter, per model. Only failures that may pass
    are retried: `overloaded`, `server`, `timeout`, `connection`, and `rate_limit` when its
    Retry-After is short. Other kinds move on to the next model at once; `bad_request` stops
    the call.

    Attributes:
        max_retries: Retries of one model before moving on (tries = 1 + max_retries).
        base_delay: Seconds of the first backoff; each retry doubles it, up to `max_delay`.
        max_delay: The longest backoff in seconds (before jitter).
        retry_after_cap: A longer Retry-After moves on to the next model at once; a
            shorter one is waited out.
    """

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
    """After `threshold` availability failures in a row, a model is rested for `cooldown`
    seconds. When the rest is over, calls reach it again; its count stays at the threshold, so
    one more failure rests it again at once and one success clears it (half-open). The counts
    and rests live in `state` (in-process by default; see state.py)."""

    def __init__(self, threshold: int = 3, cooldown: float = 30.0, state: Optional[State] = None) -> None:
        self.threshold, self.cooldown = threshold, cooldown
        self.state = state if state is not None else MemoryState()

    def is_open(self, ref: str) -> bool:
        """Whether `ref` (a `provider:model`) is resting now."""
        return self.state.resting(ref) > 0

    def remaining(self, ref: str) -> float:
        """Seconds left of `ref`'s rest (0 when it is not resting)."""
        return self.state.resting(ref)

    def record(self, ref: str, kind: Optional[str]) -> None:
        """Note how a try of `ref` ended: None for an answer, else the failure's kind. Only
        failures that say "not now" (AVAILABILITY) count."""
        if kind is None:
            self.state.success(ref)
        elif kind in AVAILABILITY and self.state.failure(ref) >= self.threshold:
            self.state.rest(ref, self.cooldown)
