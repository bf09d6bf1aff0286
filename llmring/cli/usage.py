"""`llmring usage`: what the calls of this machine cost, from the local usage log."""

from __future__ import annotations

import csv
import sys
from typing import Any, Optional

import click

from .common import echo_json, json_option

FIELDS = ("key", "calls", "failed", "failovers", "input_tokens", "output_tokens", "cost", "unpriced_calls",
          "latency_p50", "latency_p95")
BAR_WIDTH = 40


@click.command("usage")
@click.option("--since", default="30d", show_default=True,
              help="Start: an age (7d, 12h, 30m, 2w) or a local date (2026-12-01).")
@click.option("--until", default=None, help="End: an age or a date (that day included). Default: now.")
@click.option("--by", type=click.Choice(["alias", "model", "provider", "profile", "day"]), default="alias",
              show_default=True, help="Group the calls by this; `day` also draws cost per day.")
@click.option("--alias", "alias", default=None, help="Only the calls of this alias.")
@click.option("--prune", default=None, metavar="AGE",
              help="Delete the calls older than AGE (e.g. 90d) or a date, and report nothing else.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one row per group, then the total).")
@click.pass_context
def usage(ctx: click.Context, since: str, until: Optional[str], by: str, alias: Optional[str], prune: Optional[str],
          as_json: bool, as_csv: bool) -> None:
    """Calls, failures, fail-overs, tokens, cost (USD) and latency from the usage log, per group.
    The log is $LLMRING_USAGE_DB, else usage.db in your data directory."""
    from ..usage import db, report

    try:
        start = report.parse_when(since)
        end = report.parse_when(until, end=True) if until else None
        cutoff = report.parse_when(prune) if prune else None
    except ValueError as e:
        _bad(ctx, f"{e}.")
    if end is not None and end <= start:
        _bad(ctx, f"--until ({until}) is not after --since ({since}); swap them or widen the range.")
    where = db.path()
    if not where.exists():
        return _nothing(where, as_json, as_csv, by)
    conn = _open(where)
    try:
        if cutoff is not None:
            deleted = report.prune(conn, cutoff)
            return click.echo(f"Deleted {deleted:,} call{'s' if deleted != 1 else ''} from before "
                              f"{report.describe_time(cutoff)} in {where}.")
        found = report.summarize(conn, by, start, end, alias)
    finally:
        conn.close()
    if as_json:
        echo_json(_as_json(found))
    elif as_csv:
        _csv(found)
    else:
        _table(found, where)


def _bad(ctx: click.Context, message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    ctx.exit(2)


def _open(where: Any) -> Any:
    import sqlite3

    from ..usage import db
    from ..usage.writer import describe

    try:
        return db.connect(where, create=False)
    except (sqlite3.Error, db.UnusableError) as e:
        raise click.ClickException(f"The usage log {where} cannot be read ({describe(e)}); move it aside, or "
                                   "point LLMRING_USAGE_DB at another file.") from None


def _nothing(where: Any, as_json: bool, as_csv: bool, by: str) -> None:
    from ..usage import report

    if as_json or as_csv:
        empty = report.Report(by, None, None, [], report.Group(None))
        return echo_json(_as_json(empty)) if as_json else _csv(empty)
    click.echo(f"No usage recorded yet: {where} does not exist. Every call through llmring is logged there "
               "(LLMRING_USAGE=off turns that off).")


def _as_json(found: Any) -> dict:
    total = found.total.as_dict()
    del total["key"]
    return {"rows": [g.as_dict() for g in found.rows], "total": total}


def _csv(found: Any) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(FIELDS)
    for row in [g.as_dict() for g in found.rows] + [{**found.total.as_dict(), "key": "total"}]:
        out.writerow(["" if row[f] is None else row[f] for f in FIELDS])


def _table(found: Any, where: Any) -> None:
    from ..usage import report

    span = f"since {report.describe_time(found.since)}"
    if found.until is not None:
        span += f" until {report.describe_time(found.until)}"
    click.echo(f"Usage {span}, by {found.by} ({where})")
    header = (found.by, "calls", "failed", "failovers", "tokens in", "tokens out", "cost", "p50", "p95")
    lines = [header] + [_cells(g, g.key) for g in found.rows] + [_cells(found.total, "total")]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        if n == len(lines) - 1:
            click.echo("-" * (sum(widths) + 2 * (len(widths) - 1)))
        click.echo("  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                   .rstrip())
    if found.by == "day" and found.rows:
        _bars(found.rows)


def _cells(g: Any, key: str) -> tuple:
    return (key, f"{g.calls:,}", f"{g.failed:,}", f"{g.failovers:,}", f"{g.input_tokens:,}", f"{g.output_tokens:,}",
            money(g.known_cost, g.unpriced_calls), _seconds(g.percentile(0.5)), _seconds(g.percentile(0.95)))


def money(cost: Optional[float], unpriced: int) -> str:
    """"$1.23", "$1.23 + 4 unpriced", or "unknown (4 unpriced)": unknown cost is never shown as $0."""
    if cost is None:
        return f"unknown ({unpriced:,} unpriced)"
    text = f"${cost:,.2f}" if cost >= 0.01 or cost == 0 else f"${cost:.4f}"
    return f"{text} + {unpriced:,} unpriced" if unpriced else text


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value < 0.001:  # the first latency bucket: under a millisecond
        return "<1 ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _bars(rows: list) -> None:
    top = max((g.cost for g in rows), default=0.0)
    click.echo("\nCost per day")
    for g in rows:
        width = round(BAR_WIDTH * g.cost / top) if top > 0 else 0
        bar = "█" * width or ("▏" if g.cost > 0 else "")
        click.echo(f"{g.key}  {bar.ljust(BAR_WIDTH)}  {money(g.known_cost, g.unpriced_calls)}")


COMMANDS = [usage]
