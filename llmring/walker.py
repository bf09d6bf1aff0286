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


class _Walk:
    """One call's walk: what it was asked, its deadline on the walker's clock, and the attempts
    so far."""

    __slots__ = ("target", "needs", "call", "tokens", "hold", "gate", "written_as", "t0", "deadline", "attempts")

    def __init__(self, target: str, needs: list, call: Callable, tokens: int, hold: bool, gate: Any,
                 written_as: dict, t0: float, timeout: Optional[float]) -> None:
        self.target, self.needs, self.call, self.tokens, self.hold = target, needs, call, tokens, hold
        self.gate, self.written_as, self.t0 = gate, written_as, t0
        self.deadline = None if timeout is None else t0 + timeout
        self.attempts: list = []

    def failed(self) -> Exception:
        """The walk's end without an answer: AllModelsFailedError with every attempt."""
        return all_failed(self.target, self.attempts)


class Walker:
    """Walks models for a Ring. `providers(prefix)` gives a provider (or raises
    ProviderNotFoundError): Ring._provider_for_call. `lookup(ref)` gives (ModelInfo or None,
    problem) and is called once per model per call: Ring._known. `walk`'s `call` is one try:
    the Ring's `answer` closure (chat) or stream.open_stream. `clock` and `sleep` time the walk
    and its waits for room under the limits; they may be replaced on the walker at any time.
    Cool-downs and rests are timed by the state's own clock (MemoryState(clock=...), Redis's
    for RedisState): a test that fakes time gives the in-process state the same clock."""

    def __init__(self, providers: Callable[[str], Any], lookup: Callable[[str], tuple], *,
                 retry: RetryPolicy, breaker: CircuitBreaker, connect_timeout: float, read_timeout: float,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 limits: Callable[[], dict] = dict) -> None:
        self.providers, self.lookup = providers, lookup
        self.retry, self.breaker = retry, breaker
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.clock, self.sleep = clock, sleep  # the limiter reads them from here: one clock
        # `limits()`: the lockfile's [limits.*] for a call; counted in the breaker's state
        self.limiter = Limiter(breaker.state, limits, self)

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
        run = _Walk(target, needs, call, tokens, hold, gate, written_as or {}, self.clock(), timeout)
        for i, ref in enumerate(models):
            last = i == len(models) - 1
            known = self.lookup(ref)
            provider = self._usable(run, ref, known[0], last)
            done = None if provider is None else self._tries(run, ref, known, provider, last)
            if done is not None:
                return done
        raise gate.error(target, run.attempts) if gate is not None and gate.over else run.failed()

    def _tries(self, run: _Walk, ref: str, known: tuple, provider: Any, last: bool) -> Optional[Outcome]:
        """Try `ref`, retrying as the retry policy says: its answer, or None to fail over (its
        tries, its room under the limits or its share of the deadline ran out). Raises when the
        walk must end here: the deadline passed, or the request itself is wrong."""
        for retry in range(self.retry.max_retries + 1):
            held = self._room(run, ref, last)
            if held is None:
                return None
            budget = self._budget(run.deadline, last)
            if budget <= 0:
                held.forget()
                run.attempts.append(Attempt(ref, "timeout", message="the request's deadline passed",
                                            at=self.clock() - run.t0))
                raise run.failed()
            started = self.clock()
            result, error = self._try(run, ref, provider, budget, held)
            if error is None:
                return self._answered(run, ref, result, known, provider, held, started)
            if not self._again(run, ref, error, retry, started):
                return None
        return None

    def _try(self, run: _Walk, ref: str, provider: Any, budget: float, held: Hold) -> tuple:
        """One call of `ref` within `budget` seconds: (its result, None), or (None, the
        ProviderError it failed with) after handing back the room it held."""
        try:
            return run.call(provider, ref.partition(":")[2], self._try_timeout(budget)), None
        except ProviderError as e:
            error = e
        except Exception as e:  # noqa: BLE001 - a provider bug must not sink the fallbacks
            error = _unexpected(provider, e)
        except BaseException:
            held.release()
            raise
        held.release()
        return None, error

    def _answered(self, run: _Walk, ref: str, result: Any, known: tuple, provider: Any, held: Hold,
                  started: float) -> Outcome:
        """`ref` answered: record it, hand back its room (a stream keeps it), and the Outcome."""
        self.breaker.record(ref, None)
        if not run.hold:
            held.release(_used(result))
        run.attempts.append(Attempt(ref, elapsed=self.clock() - started, at=started - run.t0))
        left = None if run.deadline is None else run.deadline - self.clock()
        return Outcome(ref, result, run.attempts, known, provider, left, held)

    def _again(self, run: _Walk, ref: str, error: ProviderError, retry: int, started: float) -> bool:
        """Record a failed try of `ref`; True once the wait before trying it again is over, False
        to fail over. Raises when the request itself is wrong: no other model would do better."""
        run.attempts.append(Attempt(ref, error.kind, error.status, _one_line(error), self.clock() - started,
                                    retry_after=error.retry_after, at=started - run.t0))
        _log().warning("llmring: %s", run.attempts[-1].describe())
        if not fails_over(error.kind):  # the request itself is wrong: not the model's fault
            raise run.failed()
        self.breaker.record(ref, error.kind)
        if error.kind == "rate_limit" and error.retry_after:
            self.limiter.cool(ref, error.retry_after)  # every worker sharing the state waits too
        delay = self.retry.delay(error.kind, retry, error.retry_after)
        if delay is None or (run.deadline is not None and self.clock() + delay >= run.deadline):
            return False
        self.sleep(delay)
        return True

    def _room(self, run: _Walk, ref: str, last: bool) -> Optional[Hold]:
        """Room under the limits for one try of `ref`, waiting within its share of the deadline
        (a cool-down: no longer than a Retry-After the retry policy waits for, unless it is the
        last model); None after recording a skip when the wait would be longer."""
        left = None if run.deadline is None else run.deadline - self.clock()
        patience = None if left is None else (left if last else left / 2)
        cool_patience = patience if last else min(self.retry.retry_after_cap, _or_inf(patience))
        if run.hold:  # a stream keeps its slot until it ends
            lease = (STREAM_LEASE if left is None else left) + LEASE_MARGIN
        else:
            lease = self._budget(run.deadline, last) + LEASE_MARGIN
        held, why = self.limiter.take(ref, run.tokens, lease, patience, cool_patience, run.written_as.get(ref))
        if held is None:
            run.attempts.append(Attempt(ref, "rate_limit", skipped=True, message=why, at=self.clock() - run.t0))
        return held

    def _usable(self, run: _Walk, ref: str, info: Any, last: bool) -> Any:
        """The provider for `ref`, or None after recording why it is skipped."""
        at = self.clock() - run.t0
        lacking = _lacks(info, run.needs)
        if lacking:
            run.attempts.append(Attempt(ref, "unsupported", skipped=True, at=at,
                                        message=f"the model registry says it cannot do {lacking}"))
            return None
        spent = run.gate.holds_back(info) if run.gate is not None else ""
        if spent:  # the last model too: a budget is not a breaker
            run.attempts.append(Attempt(ref, "budget", skipped=True, at=at, message=spent))
            return None
        if not last and self.breaker.is_open(ref):  # the last model left is always tried
            run.attempts.append(Attempt(ref, "overloaded", skipped=True, at=at, message=(
                f"it failed {self.breaker.threshold} times in a row; resting for another "
                f"{self.breaker.remaining(ref):.0f} s")))
            return None
        try:
            return self.providers(ref.partition(":")[0])
        except ProviderNotFoundError as e:
            run.attempts.append(Attempt(ref, "not_configured", message=str(e), at=at))
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
