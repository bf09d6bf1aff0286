"""The time one try may take: what the failover walker hands a provider as `timeout`.

A `TryTimeout` is the `(connect, read)` tuple requests takes (so a plugin that passes it
straight to requests keeps working), plus `budget`: the seconds the whole try may last,
body and stream included, or None when the request set no deadline. Socket timeouts alone
are not a deadline: a server that drips one byte every 0.2 s never trips them. The
provider's HTTP layer turns `budget` into an absolute time when it sends the request and
enforces it whatever the server does."""

from __future__ import annotations

from typing import Optional


class TryTimeout(tuple):
    """(connect seconds, read seconds) with the try's total `budget` in seconds (or None)."""

    budget: Optional[float]

    def __new__(cls, connect: float, read: float, budget: Optional[float] = None) -> TryTimeout:
        self = super().__new__(cls, (connect, read))
        self.budget = budget
        return self

    def __getnewargs__(self) -> tuple:
        return (self[0], self[1], self.budget)

    def __repr__(self) -> str:
        return f"TryTimeout(connect={self[0]!r}, read={self[1]!r}, budget={self.budget!r})"


def budget_of(timeout: object) -> Optional[float]:
    """The total seconds a try may take: a TryTimeout's budget, None for a plain tuple or number."""
    return getattr(timeout, "budget", None)
