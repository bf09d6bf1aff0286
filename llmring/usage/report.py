"""What `llmring usage` reports: calls grouped by alias, model, provider, profile or day over a
time range, with tokens, cost (unknown cost counted apart, never as zero) and latency p50/p95.

Rows are grouped by key and by latency bucket (two significant digits: 1 ms steps under
0.1 s, 10 ms under 1 s, 100 ms under 10 s, then 1 s), so the percentiles come from a small
histogram rather than from every row. The range is read one local day at a time, each day one
indexed query: SQLite groups by sorting, and a day's rows sort in the CPU's cache where a
million do not (twice as fast), and a day needs no date arithmetic in SQL (DST included)."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections.abc import Iterator
from typing import Optional

import attrs

GROUPS = {
    "alias": "COALESCE(alias, '(direct)')",
    "model": "COALESCE(model, '(none answered)')",
    "provider": "COALESCE(provider, '(none answered)')",
    "profile": "COALESCE(profile, '-')",
    "day": "NULL",  # each day is read by a query of its own, which names it
}
_BUCKET_MS = ("CASE WHEN latency < 0.1 THEN CAST(latency * 1000 AS INTEGER) "
              "WHEN latency < 1 THEN CAST(latency * 100 AS INTEGER) * 10 "
              "WHEN latency < 10 THEN CAST(latency * 10 AS INTEGER) * 100 "
              "ELSE CAST(latency AS INTEGER) * 1000 END")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@attrs.define
class Group:
    """One line of the report; `latencies` is {bucket ms: calls}."""

    key: Optional[str]
    calls: int = 0
    failed: int = 0
    failovers: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    priced_calls: int = 0
    unpriced_calls: int = 0
    latencies: dict = attrs.field(factory=dict)

    def add(self, other: Group) -> None:
        for name in ("calls", "failed", "failovers", "input_tokens", "output_tokens", "cost", "priced_calls",
                     "unpriced_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for ms, n in other.latencies.items():
            self.latencies[ms] = self.latencies.get(ms, 0) + n

    @property
    def known_cost(self) -> Optional[float]:
        """The USD of the calls with a price; None when every call that answered had none."""
        return None if self.priced_calls == 0 and self.unpriced_calls else self.cost

    def percentile(self, fraction: float) -> Optional[float]:
        """Seconds at or below which `fraction` of the calls' latencies fall (bucket precision)."""
        total = sum(self.latencies.values())
        if not total:
            return None
        rank, seen = fraction * total, 0
        for ms in sorted(self.latencies):
            seen += self.latencies[ms]
            if seen >= rank:
                return ms / 1000
        return None  # unreachable: the last bucket reaches the total

    def as_dict(self) -> dict:
        p50, p95 = self.percentile(0.5), self.percentile(0.95)
        cost = self.known_cost
        return {"key": self.key, "calls": self.calls, "failed": self.failed, "failovers": self.failovers,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost": None if cost is None else round(cost, 6), "unpriced_calls": self.unpriced_calls,
                "latency_p50": p50, "latency_p95": p95}


@attrs.define
class Report:
    by: str
    since: Optional[float]
    until: Optional[float]
    rows: list
    total: Group


def summarize(conn: sqlite3.Connection, by: str, since: Optional[float] = None, until: Optional[float] = None,
              alias: Optional[str] = None) -> Report:
    """The report of the calls in [since, until), grouped `by` (a key of GROUPS)."""
    groups: dict = {}
    sql = (f"SELECT {GROUPS[by]} AS k, {_BUCKET_MS} AS ms, COUNT(*), SUM(error_kind IS NOT NULL), "
           "TOTAL(failovers), TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cost), COUNT(cost), "
           "SUM(cost IS NULL AND model IS NOT NULL) FROM calls {where} GROUP BY k, ms")
    for day, day_since, day_until in _days(conn, since, until):
        where, args = _where(day_since, day_until, alias)
        for key, ms, *sums in conn.execute(sql.format(where=where), args):
            key = day if by == "day" else key
            groups.setdefault(key, Group(key)).add(_group(key, ms, *sums))
    rows = sorted(groups.values(), key=lambda g: g.key if by == "day" else (-(g.cost or 0), -g.calls, g.key))
    total = Group(None)
    for g in rows:
        total.add(g)
    return Report(by, since, until, rows, total)


def _group(key: str, ms: Optional[int], calls: int, failed: int, failovers: float, tokens_in: float,
           tokens_out: float, cost: float, priced: int, unpriced: int) -> Group:
    return Group(key, calls, failed, int(failovers), int(tokens_in), int(tokens_out), cost, priced, unpriced,
                 {} if ms is None else {ms: calls})


def _days(conn: sqlite3.Connection, since: Optional[float], until: Optional[float]) -> Iterator[tuple]:
    """(local date, since, until) of each day of the range, cut to the range at both ends."""
    if since is None or until is None:  # the range of the calls there are
        first, last = conn.execute("SELECT MIN(at), MAX(at) FROM calls").fetchone()
        if first is None:
            return
        since, until = first if since is None else since, last + 1 if until is None else until
    start, day = since, dt.date.fromtimestamp(since)
    while start < until:
        end = _midnight(day + dt.timedelta(days=1))
        yield day.isoformat(), start, min(end, until)
        start, day = end, day + dt.timedelta(days=1)


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day).timestamp()


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Delete the calls older than `before` (Unix time); how many were deleted."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        deleted = conn.execute("DELETE FROM calls WHERE at < ?", (before,)).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return deleted


def _where(since: Optional[float], until: Optional[float], alias: Optional[str]) -> tuple:
    clauses, args = [], []
    for clause, value in (("at >= ?", since), ("at < ?", until), ("alias = ?", alias)):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def parse_when(text: str, *, end: bool = False, now: Optional[float] = None) -> float:
    """Unix time of "7d" (ago; also m, h, w) or a local date "2026-12-01" (its start; with
    `end`, the start of the next day, so that --until includes the day named). ValueError
    with what is accepted when it is neither."""
    now = time.time() if now is None else now
    text = text.strip()
    ago = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhdw])", text.lower())
    if ago:
        return now - float(ago.group(1)) * _UNITS[ago.group(2)]
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither an age like 7d, 12h, 30m or 2w nor a date like 2026-12-01") from None
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day).timestamp()  # local midnight


def describe_time(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M")
