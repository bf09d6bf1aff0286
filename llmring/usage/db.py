"""The usage database: where it lives, its schema and versions, and opening it safely.

One table, `calls`, one row per finished call. The attempts of a call are a JSON column (they
are shown, never filtered on) and the fail-over count is kept beside them, so every report is
one indexed scan of `calls`. The schema's version is in `schema_version`; opening a database
applies the migrations it lacks, in one IMMEDIATE transaction, so many processes opening an old
file at once migrate it once."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, Optional

ENV_DB = "LLMRING_USAGE_DB"
ENV_SWITCH = "LLMRING_USAGE"
BUSY_TIMEOUT_MS = 5000  # the writer and the reports wait this long for another process's write

# Each version's statements, applied in order to reach it. Never edit one that shipped: add one.
MIGRATIONS: tuple = (
    # 1: the log as first released
    ("""CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            alias TEXT, profile TEXT, lockfile TEXT, model TEXT, provider TEXT,
            attempts TEXT NOT NULL DEFAULT '[]',
            failovers INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER, output_tokens INTEGER,
            cost REAL, cost_note TEXT,
            latency REAL, first_chunk REAL, finish_reason TEXT, error_kind TEXT,
            stream INTEGER NOT NULL DEFAULT 0,
            prompt TEXT, answer TEXT)""",
     "CREATE INDEX calls_at ON calls(at)"),
    # 2: cached and reasoning tokens; spend per alias (budgets) without a scan
    ("ALTER TABLE calls ADD COLUMN cached_tokens INTEGER",
     "ALTER TABLE calls ADD COLUMN reasoning_tokens INTEGER",
     "CREATE INDEX calls_alias_at ON calls(alias, at)"),
)
VERSION = len(MIGRATIONS)

COLUMNS = ("at", "alias", "profile", "lockfile", "model", "provider", "attempts", "failovers",
           "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost", "cost_note",
           "latency", "first_chunk", "finish_reason", "error_kind", "stream", "prompt", "answer")
INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class UnusableError(Exception):
    """The database cannot be used (newer than this llmring, or not a usage log)."""


def enabled() -> bool:
    """Whether the usage log is on (it is unless LLMRING_USAGE=off)."""
    return os.environ.get(ENV_SWITCH, "").strip().lower() not in ("off", "0", "false", "no")


def path() -> Path:
    """LLMRING_USAGE_DB, else usage.db in the platform's per-user data directory."""
    global _path
    settings = (os.environ.get(ENV_DB), os.environ.get("XDG_DATA_HOME"), sys.platform)
    if _path is None or _path[0] != settings:  # every call asks: remember the answer
        explicit = (settings[0] or "").strip()
        _path = (settings, Path(explicit).expanduser() if explicit else data_dir() / "usage.db")
    return _path[1]


_path: Optional[tuple] = None


def data_dir() -> Path:
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "llmring"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "llmring"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "llmring"


def connect(where: Path, *, create: bool, busy_ms: Optional[int] = None) -> sqlite3.Connection:
    """An open, migrated connection (autocommit: transactions are begun explicitly).

    Raises sqlite3.Error or OSError when the file cannot be opened, UnusableError when it is
    not a usage log this llmring can write."""
    busy_ms = BUSY_TIMEOUT_MS if busy_ms is None else busy_ms
    if create:
        where.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(where), timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
    else:  # a report never creates the file (nor its directory)
        conn = sqlite3.connect(f"{where.resolve().as_uri()}?mode=rw", uri=True, timeout=busy_ms / 1000,
                               isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0: a new, empty one)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise UnusableError("it is not an llmring usage log (it has other tables)")
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to VERSION (no-op when it is there already)."""
    if version(conn) == VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = version(conn)  # again, inside the lock: another process may have just done it
        if have > VERSION:
            raise UnusableError(f"it has schema version {have}, newer than this llmring knows ({VERSION}); "
                                "upgrade llmring or point LLMRING_USAGE_DB elsewhere")
        if have == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number in range(have + 1, VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def row(record: Any) -> tuple:
    """The `calls` row of a record.CallRecord, in COLUMNS order."""
    attempts = json.dumps([[a.model, "skipped" if a.skipped and a.kind is None else a.kind]
                           for a in record.attempts], separators=(",", ":"))
    return (record.started_at, record.alias, record.profile, record.lockfile, record.model, record.provider,
            attempts, record.failovers, record.input_tokens, record.output_tokens, record.cached_tokens,
            record.reasoning_tokens, record.cost, record.cost_note, record.elapsed, record.first_chunk,
            record.finish_reason, record.error_kind, int(record.stream), record.prompt, record.answer)


def spent(conn: sqlite3.Connection, alias: str, profile: Optional[str], since: float) -> float:
    """USD of known cost recorded for `alias` (in `profile`, or any when None) since `since`."""
    sql = "SELECT TOTAL(cost) FROM calls WHERE alias = ? AND at >= ?"
    args: list = [alias, since]
    if profile is not None:
        sql += " AND profile = ?"
        args.append(profile)
    return float(conn.execute(sql, args).fetchone()[0])
