"""The usage log: one SQLite row per finished call, on by default, written off the call's path.

    sink()    the observer observe.BUILTIN names: queues each record for the background writer
    spent()   USD an alias has spent since a time (budgets ask it before a paid call)
    flush()   wait until what was queued is written (Ring.close and exit do it)

Where: LLMRING_USAGE_DB, else usage.db in the user's data directory; LLMRING_USAGE=off turns
it off. Reports (`llmring usage`) are in report.py; the schema in db.py."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from typing import Any, Callable, Optional

from . import db, writer

_readers = threading.local()  # each thread's read connection for spent(), by path
_warned: set = set()
READ_BUSY_MS = 100  # spent() runs on a call's path: it waits this long for a locked database at most


def sink() -> Callable:
    """The usage log's observer. LLMRING_USAGE and LLMRING_USAGE_DB are read at each call, so
    switching the log off (or moving it) takes effect at once."""

    def log(record: Any) -> None:
        if db.enabled():
            writer.writer().put(db.path(), record)

    log.flush = flush  # type: ignore[attr-defined]
    return log


def flush(wait: float = writer.FLUSH_WAIT_S) -> bool:
    """Write what this process queued; False if that took longer than `wait` seconds."""
    w = writer.current()
    return True if w is None else w.flush(wait)


def spent(alias: str, profile: Optional[str], since: float) -> float:
    """USD of known cost recorded for `alias` since Unix time `since`: in that profile, or in
    every profile when `profile` is None. Counts the rows in the database plus what this process
    queued but has not written yet; calls of unknown cost count nothing. Never raises: an
    unusable database counts 0.0 (and is reported once on the `llmring.usage` logger)."""
    where = db.path()
    w = writer.current()
    try:
        conn = _reader(where) if where.exists() else None  # opened before the writer's lock is held
        # The writer commits and un-pends under its lock: holding it, no row is counted twice.
        with w.lock if w is not None else contextlib.nullcontext():
            queued = w.pending_cost(where, alias, profile, since) if w is not None else 0.0
            return queued + (db.spent(conn, alias, profile, since) if conn is not None else 0.0)
    except Exception as e:  # noqa: BLE001 - a budget check must never fail the call
        _drop_reader(where)
        if where not in _warned:
            _warned.add(where)
            writer.warn("the usage log %s cannot be read (%s); spending is counted as $0 from it, and this "
                        "is said once.", where, writer.describe(e))
        if w is None:
            return 0.0
        with w.lock:
            return w.pending_cost(where, alias, profile, since)


def _reader(where: Any) -> sqlite3.Connection:
    conns = _readers.__dict__.setdefault("conns", {})
    conn = conns.get(where)
    if conn is None:
        conn = conns[where] = db.connect(where, create=False, busy_ms=READ_BUSY_MS)
    return conn


def _drop_reader(where: Any) -> None:
    conn = _readers.__dict__.get("conns", {}).pop(where, None)
    if conn is not None:
        conn.close()


def _after_fork_in_child() -> None:
    global _readers
    _readers = threading.local()  # the parent's connections are not ours to use


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
