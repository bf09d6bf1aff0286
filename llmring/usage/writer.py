"""The background writer: records go on a bounded queue and a daemon thread writes them in
batches, one transaction per batch, so a call never waits for the disk.

A full queue drops the record (one warning) rather than block a call. Each record carries the
database path it was made for (the environment can change between calls: tests, tools). What
this process has queued but not committed stays visible to `spent` (budgets count it).
After fork the child gets a new queue, thread and connections; the parent's are left alone."""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Optional

from . import db

QUEUE_SIZE = 10_000
BATCH = 500  # rows per transaction at most
FLUSH_WAIT_S = 5.0  # how long flush() (Ring.close, exit) waits for the writer at most


class Writer:
    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.lock = threading.Lock()  # guards pending, thread start, and the commit of a batch
        self.pending: dict = {}  # seq -> (path, alias, profile, at, cost): queued, not committed
        self.seq = itertools.count()
        self.thread: Optional[threading.Thread] = None
        self.conns: dict = {}  # path -> sqlite3.Connection (the writer thread's own)
        self.broken: set = set()  # paths whose trouble was already reported
        self.dropped = False

    def put(self, where: Path, record: Any) -> None:
        """Queue one record for `where`; never blocks, never raises for a full queue."""
        item = (next(self.seq), where, db.row(record))
        if self.thread is None:
            self._start()
        if record.cost is not None and record.alias is not None:
            with self.lock:
                self.pending[item[0]] = (where, record.alias, record.profile, record.started_at, record.cost)
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            with self.lock:
                self.pending.pop(item[0], None)
            if not self.dropped:
                self.dropped = True
                warn("the usage log cannot keep up (%d records waiting); records are dropped until it does, "
                     "and this is said once.", QUEUE_SIZE)

    def flush(self, wait: float = FLUSH_WAIT_S) -> bool:
        """Wait (at most `wait` seconds) until what was queued before now is written."""
        if self.thread is None or not self.thread.is_alive():
            return True
        done = threading.Event()
        try:
            self.queue.put(done, timeout=wait)
        except queue.Full:
            return False
        return done.wait(wait)

    def pending_cost(self, where: Path, alias: str, profile: Optional[str], since: float) -> float:
        """Cost queued for `alias` and not yet committed; the caller holds self.lock."""
        return sum((cost for path, a, p, at, cost in self.pending.values()
                    if a == alias and at >= since and path == where and (profile is None or p == profile)), 0.0)

    def _start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="llmring-usage", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list) -> None:
        by_path: dict = {}
        for item in batch:
            if isinstance(item, threading.Event):  # a flush marker: everything before it is written
                self._write_groups(by_path)
                by_path = {}
                item.set()
            else:
                by_path.setdefault(item[1], []).append(item)
        self._write_groups(by_path)

    def _write_groups(self, by_path: dict) -> None:
        for where, items in by_path.items():
            try:
                self._insert(where, items)
            except Exception as e:  # noqa: BLE001 - the log must never fail anything; it says why once
                with self.lock:
                    for item in items:
                        self.pending.pop(item[0], None)
                self._broke(where, e)

    def _insert(self, where: Path, items: list) -> None:
        conn = self.conns.get(where)
        if conn is None:
            conn = self.conns[where] = db.connect(where, create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(db.INSERT, [item[2] for item in items])
            with self.lock:  # commit and un-pend together: `spent` never counts a row twice
                conn.execute("COMMIT")
                for item in items:
                    self.pending.pop(item[0], None)
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
