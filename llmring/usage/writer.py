"""The background writer: a call appends its record to a deque (no lock, no wake-up) and a
daemon thread writes what gathered every INTERVAL_S, one transaction per batch, so a call never
waits for the disk and the log costs a call about a microsecond.

A full deque drops the record (one warning) rather than grow or block. Each record carries
the database path it was made for (the environment can change between calls: tests, tools).
What this process has queued but not committed stays visible to `spent` (budgets count it).
After fork the child gets a new deque, thread and connections; the parent's are left alone."""

from __future__ import annotations

import atexit
import collections
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Optional

from . import db

QUEUE_SIZE = 10_000  # records waiting at most; more are dropped
BATCH = 1000  # rows per transaction at most; this many waiting wake the writer early
INTERVAL_S = 0.5  # how often the writer looks for records; a kill -9 loses at most this much
FLUSH_WAIT_S = 5.0  # how long flush() (Ring.close, exit) waits for the writer at most


class Writer:
    def __init__(self) -> None:
        self.items: collections.deque = collections.deque()  # (path, record) or a flush marker (an Event)
        self.inflight: list = []  # the batch being written, still counted by pending_cost
        self.lock = threading.Lock()  # guards taking a batch, committing it, and reading what is pending
        self.wake = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.conns: dict = {}  # path -> sqlite3.Connection (the writer thread's own)
        self.broken: set = set()  # paths whose trouble was already reported
        self.dropped = False

    def put(self, where: Path, record: Any) -> None:
        """Queue one record for `where`; never blocks, never raises for a full queue."""
        if self.thread is None:
            self._start()
        waiting = len(self.items)
        if waiting >= QUEUE_SIZE:
            return self._drop()
        self.items.append((where, record))  # deque.append is atomic: no lock on the call's path
        if waiting + 1 == BATCH:
            self.wake.set()

    def flush(self, wait: float = FLUSH_WAIT_S) -> bool:
        """Wait (at most `wait` seconds) until what was queued before now is written."""
        if self.thread is None or not self.thread.is_alive():
            return True
        done = threading.Event()
        self.items.append(done)
        self.wake.set()
        return done.wait(wait)

    def pending_cost(self, where: Path, alias: str, profile: Optional[str], since: float) -> float:
        """Cost queued for `alias` and not yet committed; the caller holds self.lock."""
        total = 0.0
        for item in list(self.items) + self.inflight:  # list(deque) copies atomically
            if isinstance(item, tuple):
                path, r = item
                if (r.cost is not None and r.alias == alias and r.started_at >= since and path == where
                        and (profile is None or r.profile == profile)):
                    total += r.cost
        return total

    def _drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            warn("the usage log cannot keep up (%d records waiting); records are dropped until it does, "
                 "and this is said once.", QUEUE_SIZE)

    def _start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="llmring-usage", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            self.wake.wait(INTERVAL_S)
            self.wake.clear()
            while self.items:
                self._write_some()

    def _write_some(self) -> None:
        """Write up to BATCH records (grouped by path) and set the flush markers among them."""
        with self.lock:
            batch = []
            while self.items and len(batch) < BATCH:
                batch.append(self.items.popleft())
            self.inflight = [item for item in batch if isinstance(item, tuple)]
        by_path: dict = {}
        for item in batch:
            if isinstance(item, threading.Event):  # a flush marker: everything before it is written
                self._write_groups(by_path)
                by_path = {}
                item.set()
            else:
                by_path.setdefault(item[0], []).append(item[1])
        self._write_groups(by_path)
        with self.lock:
            self.inflight = []

    def _write_groups(self, by_path: dict) -> None:
        for where, records in by_path.items():
            try:
                self._insert(where, records)
            except Exception as e:  # noqa: BLE001 - the log must never fail anything; it says why once
                self._broke(where, e)

    def _insert(self, where: Path, records: list) -> None:
        conn = self.conns.get(where)
        if conn is None:
            conn = self.conns[where] = db.connect(where, create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(db.INSERT, [db.row(r) for r in records])
            with self.lock:  # commit and un-pend together: `spent` never counts a row twice
                conn.execute("COMMIT")
                done = {id(r) for r in records}
                self.inflight = [item for item in self.inflight if id(item[1]) not in done]
        except BaseException:
            self.conns.pop(where, None)
            _close(conn)
            raise

    def _broke(self, where: Path, error: BaseException) -> None:
        if where in self.broken:
            return
        self.broken.add(where)
        warn("the usage log %s cannot be written (%s); calls go on (unrecorded while this lasts), and this is "
             "said once. Fix the file or set LLMRING_USAGE_DB elsewhere (LLMRING_USAGE=off turns the log off).",
             where, describe(error))


def describe(error: BaseException) -> str:
    if isinstance(error, sqlite3.DatabaseError) and "not a database" in str(error):
        return "it is not a SQLite database: corrupt or another kind of file"
    if isinstance(error, sqlite3.OperationalError) and "disk I/O error" in str(error):
        return "disk I/O error: is the disk full, or the file too large?"
    return f"{type(error).__name__}: {error}"


def warn(message: str, *args: Any) -> None:
    from ..walker import _log

    _log("llmring.usage").warning("llmring: " + message, *args)


def _close(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass


_writer: Optional[Writer] = None
_made = threading.Lock()
_inherited: list = []  # a parent's writer, kept (never closed) in a forked child


def writer() -> Writer:
    global _writer
    if _writer is None:
        with _made:
            if _writer is None:
                _writer = Writer()
                atexit.register(_at_exit)
    return _writer


def current() -> Optional[Writer]:
    return _writer


def _at_exit() -> None:
    if _writer is not None:
        _writer.flush()


def _after_fork_in_child() -> None:
    """The child starts afresh: the parent's thread does not exist here, and its SQLite
    connections must not be used (nor closed: that could release the parent's locks)."""
    global _writer, _made
    if _writer is not None:
        _inherited.append(_writer)
    _writer, _made = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
