"""Budgets per alias: `budget = { usd_per_day = 5.0, usd_per_month = 100.0 }` in a binding.

Periods are UTC: a day runs from 00:00 UTC, a month from the 1st at 00:00 UTC; a budget resets
when its period ends. What an alias spent in a period is counted in the Ring's State (this
process's own, or Redis, where every worker adds to one count), under a key per alias, profile
and period. The first use of a period seeds that count from the usage log (`usage.spent`), so
a restart does not reset a budget; with Redis the shared count is the truth and is seeded only
when it is absent. After that the count is a dictionary look-up (or one Redis GET): no SQLite
query per call, and nothing at all for an alias without a budget.

The walker asks the call's Gate before each model (a model with no price, or prices of 0, is
never held back); the Ring charges a call's known cost when it answered."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

from .exceptions import BudgetExceededError

DAY = 86400.0
KEEP = DAY  # a period's count outlives the period by this much: clocks of workers differ a little
# period, the Budget field that limits it
PERIODS = (("day", "usd_per_day"), ("month", "usd_per_month"))


def logged(alias: str, profile: Optional[str], since: float) -> float:
    """USD the usage log holds for `alias` in `profile` since Unix time `since` (never raises):
    the one place that asks the log."""
    from .usage import spent

    return spent(alias, profile, since)


class Over:
    """A period whose budget is spent: what was spent, the budget, when the period ends."""

    __slots__ = ("period", "spent", "budget", "resets_at")

    def __init__(self, period: str, spent: float, budget: float, resets_at: float) -> None:
        self.period, self.spent, self.budget, self.resets_at = period, spent, budget, resets_at

    def when(self) -> Any:
        """When the period ends, as an aware UTC datetime."""
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self.resets_at, timezone.utc)


class Budgets:
    """A Ring's view of what its aliases spent, kept in `state` (a state.State). `clock` gives
    Unix time (injectable for tests); `log` is the usage log's spend look-up."""

    def __init__(self, state: Any, clock: Callable[[], float] = time.time,
                 log: Callable[[str, Optional[str], float], float] = logged) -> None:
        self.state, self.clock, self.log = state, clock, log
        self._bounds: dict = {}  # period -> (start, end, label) of the current one

    def over(self, alias: str, profile: Optional[str], budget: Any) -> Optional[Over]:
        """The first period whose budget `alias` has spent, or None."""
        now = self.clock()
        for period, field in PERIODS:
            limit = getattr(budget, field)
            if limit is None:
                continue
            start, end, key = self._period(period, alias, profile, now)
            spent = self.state.spent(key)
            if spent is None:
                spent = self._seed(key, alias, profile, start, end, now)
            if spent >= limit:
                return Over(period, spent, limit, end)
        return None

    def charge(self, alias: str, profile: Optional[str], budget: Any, usd: float) -> None:
        """Add a call's cost to each period `budget` limits."""
        now = self.clock()
        for period, field in PERIODS:
            if getattr(budget, field) is None:
                continue
            start, end, key = self._period(period, alias, profile, now)
            if self.state.spend(key, usd) is None:  # the first call of the period: count from the log
                self._seed(key, alias, profile, start, end, now)
                self.state.spend(key, usd)

    def _seed(self, key: str, alias: str, profile: Optional[str], start: float, end: float, now: float) -> float:
        """Start a period's count from what the usage log holds (unless a worker sharing the
        state did first); the count outlives the period by KEEP. Returns the count."""
        return self.state.seed(key, self.log(alias, profile, start), end - now + KEEP)

    def _period(self, period: str, alias: str, profile: Optional[str], now: float) -> tuple:
        """(start, end, the state key) of the period `now` is in, for this alias and profile."""
        bounds = self._bounds.get(period)
        if bounds is None or not bounds[0] <= now < bounds[1]:
            bounds = self._bounds[period] = bounds_of(period, now)
        start, end, label = bounds
        return start, end, f"budget/{profile or ''}/{alias}/{label}"


def bounds_of(period: str, now: float) -> tuple:
    """(start, end, label) of the UTC day or calendar month holding Unix time `now`."""
    if period == "day":
        start = now - now % DAY  # Unix time has no leap seconds: every UTC day is 86400 s
        return start, start + DAY, time.strftime("%Y-%m-%d", time.gmtime(start))
    import calendar

    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    return float(start), float(calendar.timegm((year, month, 1, 0, 0, 0))), f"{t.tm_year:04d}-{t.tm_mon:02d}"


def paid(info: Any) -> bool:
    """Whether a model costs money as far as llmring knows: a price above 0 in the registry or
    the lockfile. A model with no price cannot be counted, so it is never held back."""
    return info is not None and bool(info.input_price or info.output_price)


class Gate:
    """One call's budget: asked before each model of the walk, remembering why it held one back."""

    __slots__ = ("budgets", "alias", "profile", "budget", "lockfile", "over")

    def __init__(self, budgets: Budgets, alias: str, profile: Optional[str], budget: Any, lockfile: Any) -> None:
        self.budgets, self.alias, self.profile, self.budget = budgets, alias, profile, budget
        self.lockfile, self.over = lockfile, None

    def holds_back(self, info: Any) -> str:
        """Why a model with registry entry `info` may not be tried now, or "" when it may."""
        if not paid(info):
            return ""
        over = self.budgets.over(self.alias, self.profile, self.budget)
        if over is None:
            return ""
        self.over = over
        return (f"the alias has spent ${over.spent:.2f} of its ${over.budget:.2f} budget for the "
                f"{over.period}; it resets at {over.when():%Y-%m-%d %H:%M} UTC")

    def error(self, target: str, attempts: list) -> BudgetExceededError:
        over = self.over
        assert over is not None  # the walker asks only after a model was held back
        name = Path(self.lockfile).name if self.lockfile is not None else "llmring.lock"
        return BudgetExceededError(target, attempts, over.spent, over.budget, over.period, over.when(), name)


def gate(budgets: Budgets, res: Any) -> Optional[Gate]:
    """The Gate of a call to `res` (a resolve.Resolution); None when its binding has no budget."""
    binding = res.binding
    if binding is None or binding.budget is None:
        return None
    return Gate(budgets, res.alias, res.profile, binding.budget, res.lockfile)


def charge(budgets: Budgets, res: Any, usd: Optional[float]) -> None:
    """Count a finished call's cost against its alias's budget (known costs above 0 only)."""
    binding = res.binding
    if usd and binding is not None and binding.budget is not None:
        budgets.charge(res.alias, res.profile, binding.budget, usd)
