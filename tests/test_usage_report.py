"""report.py: local days across a DST change, percentiles, and the times a user may write."""

import datetime as dt
import time

import pytest
from usagefix import rec

from llmring import usage
from llmring.usage import db, report, writer


@pytest.fixture
def new_york(monkeypatch):
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def local(text):
    return dt.datetime.fromisoformat(text).timestamp()


def test_days_are_local_days_even_across_a_dst_change(new_york):
    # 2026-11-01 is 25 hours long in New York: its last hour must not spill into the 2nd.
    w = writer.writer()
    for when in ("2026-10-31 23:59:59", "2026-11-01 00:00:00", "2026-11-01 23:59:59", "2026-11-02 00:00:00",
                 "2026-11-02 23:59:59", "2026-11-03 00:30:00"):
        w.put(db.path(), rec(at=local(when), cost=1.0))
    w.put(db.path(), rec(at=local("2026-11-01 01:30:00") + 3600, cost=1.0))  # the repeated 1:30
    assert usage.flush()
    conn = db.connect(db.path(), create=False)
    found = report.summarize(conn, "day", local("2026-10-31 12:00:00"), local("2026-11-03 01:00:00"))
    assert [(g.key, g.calls) for g in found.rows] == [("2026-10-31", 1), ("2026-11-01", 3), ("2026-11-02", 2),
                                                       ("2026-11-03", 1)]
    everything = report.summarize(conn, "day")
    assert [g.calls for g in everything.rows] == [1, 3, 2, 1]
    conn.close()


def test_percentiles_come_from_the_calls_latencies():
    g = report.Group("k", latencies={100: 50, 200: 45, 3000: 5})
    assert (g.percentile(0.5), g.percentile(0.95), g.percentile(0.96)) == (0.1, 0.2, 3.0)
    assert report.Group("empty").percentile(0.5) is None


def test_latency_buckets_keep_two_significant_digits():
    w = writer.writer()
    for latency in (0.0123, 0.456, 7.89, 123.4):
        w.put(db.path(), rec(elapsed=latency))
    assert usage.flush()
    conn = db.connect(db.path(), create=False)
    [group] = report.summarize(conn, "alias").rows
    assert sorted(group.latencies) == [12, 450, 7800, 123000]
    conn.close()


def test_ages_and_dates():
    now = 1_800_000_000.0
    assert report.parse_when("7d", now=now) == now - 7 * 86400
    assert report.parse_when("12h", now=now) == now - 12 * 3600
    assert report.parse_when("30m", now=now) == now - 1800
    assert report.parse_when("2w", now=now) == now - 14 * 86400
    assert report.parse_when("1.5d", now=now) == now - 1.5 * 86400
    assert report.parse_when("2026-12-01") == local("2026-12-01 00:00:00")
    assert report.parse_when("2026-12-01", end=True) == local("2026-12-02 00:00:00")
    for bad in ("", "7", "d", "-1d", "7 days", "2026-02-30", "tomorrow"):
        with pytest.raises(ValueError, match="neither an age like 7d"):
            report.parse_when(bad, now=now)
