"""Where the circuit breaker keeps what it knows: failures in a row and rest periods per model.

The breaker's rules live in failover.CircuitBreaker; this is only storage, behind a small
interface, so a backend shared by many workers (e.g. Redis, with rests as expiring keys) can
replace the in-process default without touching the breaker or the walker."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Optional

WINDOW = 60.0  # rpm and tpm count the calls of the last minute
PACE = 1.0  # and an rpm admits at most pace_cap(rpm) calls in any second
PACE_BURST = 10  # ...never fewer than this: a small rpm still lets a handful through at once
POLL = 0.05  # how soon to ask again for a concurrency slot (its release time is unknown)


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
        minute over a sliding 60 s window, calls in flight; an rpm is also paced, at most
        `pace_cap(rpm)` calls admitted in any second, as providers enforce a minute's limit
        over shorter periods too, and so that the calls of a busy minute do not all come at
        its start and again 60 s later): `(0.0, ticket)` when admitted, or
        `(seconds, None)`: how long until room may be free, nothing taken. A ticket is handed
        back with `release`; a concurrency slot not released within `lease` seconds (a worker
        that died mid-call) frees itself. Must be atomic: two workers never both take the
        last room."""
        raise NotImplementedError

    def release(self, key: str, ticket: str, tokens_used: Optional[int]) -> None:
        """The call admitted with `ticket` is over: free its concurrency slot and, when the
        provider reported usage, count `tokens_used` instead of the estimate. `tokens_used=0`
        means the call was never made (another key refused it): forget it entirely, request
        included, so waiting for one key does not use up another's rpm. (A call that was made
        is released with None or at least 1.) A call that was made counts in the minute's
        window from now, its end, not from when it was admitted: the provider counted it when
        it arrived, a little later than llmring let it go, so it must not leave llmring's
        window before it leaves the provider's (else the next call meets a 429)."""
        raise NotImplementedError

    def cool(self, key: str, seconds: float) -> None:
        """A provider said "not before `seconds`" (429 with Retry-After): every worker sharing
        this state holds calls to `key` until then."""
        raise NotImplementedError

    def cooling(self, key: str) -> float:
        """Seconds of cool-down `key` has left; 0 when none."""
        raise NotImplementedError

    # -- spend against budgets (budget.py) ------------------------------------------------------
    def spent(self, key: str) -> Optional[float]:
        """USD counted under `key` (an alias's budget period), or None when nothing is counted
        there yet (the caller then seeds it from the usage log)."""
        raise NotImplementedError

    def seed(self, key: str, usd: float, ttl: float) -> float:
        """Start counting `key` at `usd`, forgotten after `ttl` seconds, unless it is counted
        already (another worker seeded it first); return what it counts now."""
        raise NotImplementedError

    def spend(self, key: str, usd: float) -> Optional[float]:
        """Add `usd` to `key` atomically and return the new total; None, adding nothing, when
        `key` is not counted (seed it, then spend again)."""
        raise NotImplementedError


def pace_cap(rpm: int) -> int:
    """Calls an `rpm` admits in any second: its 60th part (rounded up), or PACE_BURST if more."""
    return max(PACE_BURST, -(-rpm // 60))


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
    """The default: state of this process only, thread-safe. `clock` is injectable for tests;
    `pace=False` admits a whole rpm at once (see admit)."""

    def __init__(self, clock: Optional[Callable[[], float]] = None, *, pace: bool = True) -> None:
        self.clock, self.pace = clock or time.monotonic, pace
        self._lock = threading.Lock()
        self._failures: dict = {}
        self._until: dict = {}
        self._windows: dict = {}  # key -> _Window
        self._cool: dict = {}  # key -> clock time its cool-down ends
        self._tickets = 0  # the last ticket handed out
        self._spend: dict = {}  # key -> [USD, clock time it is forgotten]

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
        self.__init__(self.clock, pace=self.pace)  # type: ignore[misc]

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

    def admit(self, key: str, limit: Limit, tokens: int, lease: float) -> tuple:
        with self._lock:
            now = self.clock()
            w = self._windows.get(key)
            if w is None:
                w = self._windows[key] = _Window()
            w.prune(now)
            wait = w.wait(limit, tokens, now, self.pace)
            if wait > 0:
                return wait, None
            self._tickets += 1
            ticket = str(self._tickets)
            w.take(ticket, tokens if limit.rpm or limit.tpm else None, now,
                   now + lease if limit.concurrency else None, limit.rpm is not None)
            return 0.0, ticket

    def release(self, key: str, ticket: str, tokens_used: Optional[int]) -> None:
        with self._lock:
            w = self._windows.get(key)
            if w is not None:
                w.give_back(ticket, tokens_used, self.clock())

    def cool(self, key: str, seconds: float) -> None:
        with self._lock:
            until = self.clock() + seconds
            if until > self._cool.get(key, float("-inf")):  # a shorter Retry-After never cuts one short
                self._cool[key] = until

    def cooling(self, key: str) -> float:
        with self._lock:
            until = self._cool.get(key)
        return 0.0 if until is None else max(0.0, until - self.clock())

    def spent(self, key: str) -> Optional[float]:
        with self._lock:
            entry = self._counted(key, self.clock())
            return entry[0] if entry is not None else None

    def seed(self, key: str, usd: float, ttl: float) -> float:
        with self._lock:
            now = self.clock()
            entry = self._counted(key, now)
            if entry is None:
                for gone in [k for k, (_, end) in self._spend.items() if end <= now]:  # past periods
                    del self._spend[gone]
                entry = self._spend[key] = [usd, now + ttl]
            return entry[0]

    def spend(self, key: str, usd: float) -> Optional[float]:
        with self._lock:
            entry = self._counted(key, self.clock())
            if entry is None:
                return None
            entry[0] += usd
            return entry[0]

    def _counted(self, key: str, now: float) -> Optional[list]:
        """[USD, when it is forgotten] of `key` while it is counted, else None (the lock is held)."""
        entry = self._spend.get(key)
        return entry if entry is not None and entry[1] > now else None


class _Window:
    """One key's calls of the last minute (oldest first), of the last second (for the pacing),
    and its calls in flight."""

    __slots__ = ("calls", "by_ticket", "tokens", "flying", "recent")

    def __init__(self) -> None:
        self.calls: deque = deque()  # [time, tokens, ticket]
        self.by_ticket: dict = {}  # ticket -> its entry in calls, for the usage correction
        self.tokens = 0  # sum of tokens in calls
        self.flying: dict = {}  # ticket -> lease end
        self.recent: deque = deque()  # (admission time, ticket) of the last second, for rpm pacing

    def prune(self, now: float) -> None:
        while self.calls and self.calls[0][0] <= now - WINDOW:
            _, tokens, ticket = self.calls.popleft()
            self.tokens -= tokens
            self.by_ticket.pop(ticket, None)
        for ticket in [t for t, end in self.flying.items() if end <= now]:  # a worker that died mid-call
            del self.flying[ticket]
        while self.recent and self.recent[0][0] <= now - PACE:
            self.recent.popleft()

    def wait(self, limit: Limit, tokens: int, now: float, pace: bool) -> float:
        """Seconds until a call of `tokens` fits, 0 when it fits now."""
        waits = [0.0]
        if limit.rpm is not None:
            # room when all but rpm - 1 of the calls have left the window (and the last second)
            for entries, cap, span in ((self.calls, limit.rpm, WINDOW), (self.recent, pace_cap(limit.rpm), PACE)):
                n = len(entries)
                if n >= cap and (pace or span == WINDOW):
                    waits.append(entries[n - cap][0] + span - now)
        # A call bigger than tpm counts as tpm: it waits for an empty window, not forever.
        excess = 0 if limit.tpm is None else self.tokens + min(tokens, limit.tpm) - limit.tpm
        if excess > 0:
            for when, spent, _ in self.calls:
                excess -= spent
                if excess <= 0:
                    waits.append(when + WINDOW - now)
                    break
        if limit.concurrency is not None and len(self.flying) >= limit.concurrency:
            waits.append(min(POLL, min(self.flying.values()) - now))
        return max(waits)

    def take(self, ticket: str, tokens: Optional[int], now: float, lease_end: Optional[float], paced: bool) -> None:
        if paced:
            self.recent.append((now, ticket))
        if tokens is not None:  # None: no rpm or tpm, nothing to count over the minute
            entry = [now, tokens, ticket]
            self.calls.append(entry)
            self.by_ticket[ticket] = entry
            self.tokens += tokens
        if lease_end is not None:
            self.flying[ticket] = lease_end

    def give_back(self, ticket: str, tokens_used: Optional[int], now: float) -> None:
        self.flying.pop(ticket, None)
        if tokens_used == 0:  # never made: not in the last second either
            self.recent = deque(e for e in self.recent if e[1] != ticket)
        entry = self.by_ticket.get(ticket)
        if entry is None:
            return
        self.calls.remove(entry)
        if tokens_used == 0:  # never made: as if never admitted
            del self.by_ticket[ticket]
            self.tokens -= entry[1]
            return
        if tokens_used is not None:
            self.tokens += tokens_used - entry[1]
            entry[1] = tokens_used
        entry[0] = max(entry[0], now)  # counted from its end (see State.release); still oldest-first
        self.calls.append(entry)
