"""What `llmring usage` reports: calls grouped by alias, model, provider, profile or day over a
time range, with tokens, cost (unknown cost counted apart, never as zero) and latency p50/p95.

One indexed scan of `calls` does it all: rows are grouped by key and by latency bucket (two
significant digits: 1 ms steps under 0.1 s, 10 ms under 1 s, 100 ms under 10 s, then 1 s), so
the percentiles come from a small histogram rather than from every row. Days are local days,
numbered with integer arithmetic (SQLite's date() costs more than the rest of the scan): the
range is cut where the UTC offset changes (DST), and each piece is one query."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from typing import Optional

import attrs

GROUPS = {
    "alias": "COALESCE(alias, '(direct)')",
    "model": "COALESCE(model, '(none answered)')",
    "provider": "COALESCE(provider, '(none answered)')",
    "profile": "COALESCE(profile, '-')",
    "day": "CAST((at + ?) / 86400 AS INTEGER)",  # the local day's number, given the piece's UTC offset
}
_BUCKET_MS = ("CASE WHEN latency < 0.1 THEN CAST(latency * 1000 AS INTEGER) "
              "WHEN latency < 1 THEN CAST(latency * 100 AS INTEGER) * 10 "
              "WHEN latency < 10 THEN CAST(latency * 10 AS INTEGER) * 100 "
              "ELSE CAST(latency AS INTEGER) * 1000 END")
DAY = 86400
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
    for piece_since, piece_until, offset, day in _pieces(conn, by, since, until):
        where, args = _where(piece_since, piece_until, alias)
        sql = (f"SELECT {GROUPS[by]} AS k, {_BUCKET_MS} AS ms, COUNT(*), SUM(error_kind IS NOT NULL), "
               "TOTAL(failovers), TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cost), COUNT(cost), "
               f"SUM(cost IS NULL AND model IS NOT NULL) FROM calls {where} GROUP BY k, ms")
        for key, ms, *sums in conn.execute(sql, ([offset] if by == "day" else []) + args):
            if by == "day":
                key = day or dt.date.fromtimestamp(key * DAY - offset + DAY / 2).isoformat()
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


def _pieces(conn: sqlite3.Connection, by: str, since: Optional[float], until: Optional[float]) -> list:
    """(since, until, UTC offset, day) pieces of the range: in each, every local day is 24 hours
    long at one offset. A day with a DST change is a piece of its own, named by `day` (its rows
    are that day, whatever their key). One piece when not grouping by day."""
    if by != "day":
        return [(since, until, 0, None)]
    if since is None or until is None:  # the range of the calls there are
        first, last = conn.execute("SELECT MIN(at), MAX(at) FROM calls").fetchone()
        if first is None:
            return []
        since, until = first if since is None else since, last + 1 if until is None else until
    pieces: list = []
    start, day = since, dt.date.fromtimestamp(since)
    while start < until:
        begin, end = _midnight(day), _midnight(day + dt.timedelta(days=1))
        if end - begin != DAY:
            pieces.append((start, min(end, until), 0, day.isoformat()))
        elif pieces and pieces[-1][3] is None and pieces[-1][2] == -begin % DAY:
            pieces[-1] = (pieces[-1][0], min(end, until), pieces[-1][2], None)
        else:
            pieces.append((start, min(end, until), -begin % DAY, None))
        start, day = end, day + dt.timedelta(days=1)
    return pieces


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
