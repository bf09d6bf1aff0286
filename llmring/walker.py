"""The failover walk: try an alias's models in order, retrying and failing over by each
failure's kind (failover.py), under one deadline for the whole walk, until one answers.

One plain loop serves chat and stream: the caller passes `call(provider, model, timeout)`,
which does one try (a chat, or opening a stream up to its first chunk) and returns its result
or raises a ProviderError. The clock and the sleep are injectable, so tests never wait."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from .deadline import TryTimeout
from .exceptions import ProviderError, ProviderNotFoundError, all_failed
from .failover import CircuitBreaker, RetryPolicy, fails_over
from .limits import LEASE_MARGIN, NOTHING, STREAM_LEASE, Hold, Limiter
from .types import Attempt


class Outcome:
    """A walk that ended in an answer: which model gave it, what it returned, what happened on
    the way, and what the registry knows of that model (for the cost)."""

    __slots__ = ("ref", "result", "attempts", "known", "provider", "left", "hold")

    def __init__(self, ref: str, result: Any, attempts: list, known: tuple, provider: Any,
                 left: Optional[float], hold: Hold = NOTHING) -> None:
        self.ref, self.result, self.attempts, self.known, self.provider = ref, result, attempts, known, provider
        self.left = left  # seconds of the request's deadline still left (None: no deadline)
        self.hold = hold  # the room under the limits a streamed answer holds until it ends


class Walker:
    """Walks models for a Ring. `providers(prefix)` gives a provider (or raises
    ProviderNotFoundError); `lookup(ref)` gives (ModelInfo or None, problem) and is called
    once per model per call."""

    def __init__(self, providers: Callable[[str], Any], lookup: Callable[[str], tuple], *,
                 retry: RetryPolicy, breaker: CircuitBreaker, connect_timeout: float, read_timeout: float,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 limits: Callable[[], dict] = dict) -> None:
        self.providers, self.lookup = providers, lookup
        self.retry, self.breaker = retry, breaker
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.clock, self.sleep = clock, sleep
        # `limits()`: the lockfile's [limits.*] for a call; counted in the breaker's state
        self.limiter = Limiter(breaker.state, limits, clock, sleep)

    def walk(self, target: str, models: list, needs: list, timeout: Optional[float],
             call: Callable[[Any, str, TryTimeout], Any], tokens: int = 0, hold: bool = False,
             gate: Any = None, written_as: Optional[dict] = None) -> Outcome:
        """Try `models` in order; return the first answer, or raise AllModelsFailedError with
        every attempt. `timeout` is the deadline of the whole walk in seconds (or None). A try
        is a chat, or a stream up to its first chunk: either is bounded as a whole. Each try
        first takes room under the lockfile's limits for an estimated `tokens`; with `hold`
        (a stream) the answer keeps that room until the caller releases `Outcome.hold`. `gate`
        (a budget.Gate, None without a budget) holds back paid models once the alias's budget is
        spent; when no model answered after that, the walk raises BudgetExceededError.
        `written_as` maps a model called under another name than the lockfile's (a pinned
        snapshot) to that name, whose limits apply to it too."""
        attempts: list = []
        t0 = self.clock()
        deadline = None if timeout is None else t0 + timeout
        for i, ref in enumerate(models):
            last = i == len(models) - 1
            known = self.lookup(ref)
            provider = self._usable(ref, known[0], needs, last, attempts, self.clock() - t0, gate)
            if provider is None:
                continue
            model = ref.partition(":")[2]
            for retry in range(self.retry.max_retries + 1):
                held = self._room(ref, tokens, deadline, last, hold, attempts, t0,
                                  written_as.get(ref) if written_as else None)
                if held is None:
                    break
                budget = self._budget(deadline, last)
                if budget <= 0:
                    held.forget()
                    attempts.append(Attempt(ref, "timeout", message="the request's deadline passed",
                                            at=self.clock() - t0))
                    raise all_failed(target, attempts)
                started = self.clock()
                try:
                    result = call(provider, model, self._try_timeout(budget))
                except ProviderError as e:
                    error = e
                except Exception as e:  # noqa: BLE001 - a provider bug must not sink the fallbacks
                    error = _unexpected(provider, e)
                except BaseException:
                    held.release()
                    raise
                else:
                    self.breaker.record(ref, None)
                    if not hold:
                        held.release(_used(result))
                    attempts.append(Attempt(ref, elapsed=self.clock() - started, at=started - t0))
                    left = None if deadline is None else deadline - self.clock()
                    return Outcome(ref, result, attempts, known, provider, left, held)
                held.release()
                attempts.append(Attempt(ref, error.kind, error.status, _one_line(error), self.clock() - started,
                                        retry_after=error.retry_after, at=started - t0))
                _log().warning("llmring: %s", attempts[-1].describe())
                if not fails_over(error.kind):  # the request itself is wrong: not the model's fault
                    raise all_failed(target, attempts)
                self.breaker.record(ref, error.kind)
                if error.kind == "rate_limit" and error.retry_after:
                    self.limiter.cool(ref, error.retry_after)  # every worker sharing the state waits too
                delay = self.retry.delay(error.kind, retry, error.retry_after)
                if delay is None or (deadline is not None and self.clock() + delay >= deadline):
                    break
                self.sleep(delay)
        raise gate.error(target, attempts) if gate is not None and gate.over else all_failed(target, attempts)

    def _room(self, ref: str, tokens: int, deadline: Optional[float], last: bool, hold: bool,
              attempts: list, t0: float, written: Optional[str] = None) -> Any:
        """Room under the limits for one try of `ref`, waiting within its share of the deadline
        (a cool-down: no longer than a Retry-After the retry policy waits for, unless it is the
        last model); None after recording a skip when the wait would be longer."""
        left = None if deadline is None else deadline - self.clock()
        patience = None if left is None else (left if last else left / 2)
        cool_patience = patience if last else min(self.retry.retry_after_cap, _or_inf(patience))
        if hold:  # a stream keeps its slot until it ends
            lease = (STREAM_LEASE if left is None else left) + LEASE_MARGIN
        else:
            lease = self._budget(deadline, last) + LEASE_MARGIN
        held, why = self.limiter.take(ref, tokens, lease, patience, cool_patience, written)
        if held is None:
            attempts.append(Attempt(ref, "rate_limit", skipped=True, message=why, at=self.clock() - t0))
        return held

    def _usable(self, ref: str, info: Any, needs: list, last: bool, attempts: list, at: float,
                gate: Any = None) -> Any:
        """The provider for `ref`, or None after recording why it is skipped."""
        lacking = _lacks(info, needs)
        if lacking:
            attempts.append(Attempt(ref, "unsupported", skipped=True, at=at,
                                    message=f"the model registry says it cannot do {lacking}"))
            return None
        spent = gate.holds_back(info) if gate is not None else ""
        if spent:  # the last model too: a budget is not a breaker
            attempts.append(Attempt(ref, "budget", skipped=True, at=at, message=spent))
            return None
        if not last and self.breaker.is_open(ref):  # the last model left is always tried
            attempts.append(Attempt(ref, "overloaded", skipped=True, at=at, message=(
                f"it failed {self.breaker.threshold} times in a row; resting for another "
                f"{self.breaker.remaining(ref):.0f} s")))
            return None
        try:
            return self.providers(ref.partition(":")[0])
        except ProviderNotFoundError as e:
            attempts.append(Attempt(ref, "not_configured", message=str(e), at=at))
            return None

    def _budget(self, deadline: Optional[float], last: bool) -> float:
        """Seconds this try may take: under a deadline, a model with fallbacks after it gets
        half the time left, so a hanging primary cannot use up the fallbacks' time. A try never
        gets more than the read timeout, so a server that drips bytes (or keep-alive comments)
        cannot hold it past that."""
        if deadline is None:
            return self.read_timeout
        left = deadline - self.clock()
        share = left if last or left <= 0 else left / 2
        return min(share, self.read_timeout)

    def _try_timeout(self, budget: float) -> TryTimeout:
        return TryTimeout(min(self.connect_timeout, budget), min(self.read_timeout, budget), budget)


def _lacks(info: Any, needs: list) -> str:
    """The first capability `needs` asks for that the registry says the model lacks, or ""."""
    if not needs or info is None or not info.capabilities:
        return ""  # unknown models are given the benefit of the doubt
    return next((label for label, any_of in needs if not any(info.has(c) for c in any_of)), "")


def _used(result: Any) -> Optional[int]:
    """The tokens an answer used, when the provider said."""
    usage = getattr(result, "usage", None)
    return getattr(usage, "total_tokens", None) if usage is not None else None


def _or_inf(seconds: Optional[float]) -> float:
    return float("inf") if seconds is None else seconds


def _unexpected(provider: Any, exc: Exception) -> ProviderError:
    # A bug in a provider (ours or a plugin's) repeats: retrying would pay for the same paid
    # call again. Fail over instead, and say what broke.
    return provider.error("invalid_output", f"failed unexpectedly ({type(exc).__name__}: {exc}); "
                                            "please report this to the provider plugin's authors")


def _log(name: str = "llmring") -> Any:
    """The `llmring` logger (or a child such as `llmring.state`)."""
    import logging  # only on the failure path: start-up does not pay for it

    root = logging.getLogger("llmring")
    if not root.handlers:  # a library prints nothing unless the application configures logging
        root.addHandler(logging.NullHandler())
    return logging.getLogger(name)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:500]
