"""The usage log: rows as the Ring records them, the schema and its migrations, spent()."""

import json
import os
import sqlite3

import pytest
from lockfiles import one_alias
from usagefix import rec, rows

from llmring import Ring, usage
from llmring.exceptions import AllModelsFailedError
from llmring.usage import db, writer


def db_file():
    return db.path()


def test_the_db_lives_in_the_users_data_dir_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("LLMRING_USAGE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    assert db.path() == tmp_path / "xdg" / "llmring" / "usage.db"
    monkeypatch.setattr("sys.platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert db.path() == tmp_path / "local" / "llmring" / "usage.db"
    monkeypatch.setattr("sys.platform", "darwin")
    assert db.path().parts[-4:] == ("Library", "Application Support", "llmring", "usage.db")
    monkeypatch.setenv("LLMRING_USAGE_DB", str(tmp_path / "mine.db"))
    assert db.path() == tmp_path / "mine.db"


def test_every_chat_is_one_row(tmp_path):
    one_alias(tmp_path, ["mock:fail-auth", "mock:echo"])
    ring = Ring()
    ring.chat("a", "hello there")
    ring.close()
    [row] = rows(db_file())
    assert (row["alias"], row["profile"], row["model"], row["provider"]) == ("a", "default", "mock:echo", "mock")
    assert json.loads(row["attempts"]) == [["mock:fail-auth", "auth"], ["mock:echo", None]]
    assert (row["failovers"], row["input_tokens"], row["output_tokens"], row["stream"]) == (1, 2, 2, 0)
    assert row["cost"] is None and "no price" in row["cost_note"]  # unknown is NULL, never 0
    assert row["finish_reason"] == "stop" and row["error_kind"] is None and row["latency"] > 0
    assert row["prompt"] is None and row["answer"] is None  # text only when opted in
    assert row["lockfile"].endswith("llmring.lock")


def test_a_stream_records_its_first_chunk_and_a_failed_walk_its_error(tmp_path):
    one_alias(tmp_path, ["mock:fail-auth"], alias="b")
    ring = Ring()
    with pytest.raises(AllModelsFailedError):
        ring.chat("b", "x")
    ring.close()
    one_alias(tmp_path, ["mock:echo"])
    ring = Ring()
    assert "".join(c.delta for c in ring.stream("a", "one two")) == "one two"
    ring.close()
    failed, streamed = rows(db_file())
    assert failed["model"] is None and failed["error_kind"] == "auth" and failed["failovers"] == 1
    assert streamed["stream"] == 1 and 0 < streamed["first_chunk"] <= streamed["latency"]


def test_text_is_stored_only_when_opted_in(tmp_path, monkeypatch):
    one_alias(tmp_path, ["mock:echo"])
    monkeypatch.setenv("LLMRING_USAGE_TEXT", "on")
    ring = Ring()
    ring.chat("a", "secret plan")
    ring.close()
    [row] = rows(db_file())
    assert row["answer"] == "secret plan" and "secret plan" in row["prompt"]


def test_off_means_no_file(tmp_path, monkeypatch):
    one_alias(tmp_path, ["mock:echo"])
    monkeypatch.setenv("LLMRING_USAGE", "off")
    ring = Ring()
    ring.chat("a", "x")
    ring.close()
    assert not db_file().exists()


def test_map_rows_appear(tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    ring = Ring()
    assert len(list(ring.map("a", ["one", "two", "three"]))) == 3
    ring.close()
    assert sorted(r["input_tokens"] for r in rows(db_file())) == [1, 1, 1]


def test_cached_and_reasoning_tokens_are_columns(tmp_path):
    w = writer.writer()
    w.put(db_file(), rec(input_tokens=10, output_tokens=5, cached_tokens=7, reasoning_tokens=3))
    assert usage.flush()
    [row] = rows(db_file())
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (7, 3)


V1 = db.MIGRATIONS[0]


def test_a_v1_database_migrates_forward_keeping_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in V1:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO calls (at, alias, cost, stream) VALUES (5.0, 'old', 0.25, 0)")
    conn.commit()
    conn.close()
    conn = db.connect(path, create=False)
    assert db.version(conn) == db.VERSION == 2
    assert conn.execute("SELECT alias, cost, cached_tokens FROM calls").fetchall() == [("old", 0.25, None)]
    assert "calls_alias_at" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.migrate(conn)  # again: nothing to do
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 2
    conn.close()


def test_a_newer_database_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "new.db"
    db.connect(path, create=True).execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(db.UnusableError, match="newer than this llmring.*upgrade llmring"):
        db.connect(path, create=False)


def test_a_sqlite_file_of_something_else_is_not_taken_over(tmp_path):
    path = tmp_path / "other.db"
    sqlite3.connect(str(path)).execute("CREATE TABLE notes (x)")
    with pytest.raises(db.UnusableError, match="not an llmring usage log"):
        db.connect(path, create=True)


def test_the_db_is_in_wal_mode(tmp_path):
    writer.writer().put(db_file(), rec())
    assert usage.flush()
    assert sqlite3.connect(str(db_file())).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- spent(): what budgets ask ----------------------------------------------------------------

def test_spent_counts_known_cost_of_the_alias_since_a_time():
    w = writer.writer()
    for r in (rec(cost=1.0, at=100), rec(cost=2.0, at=200), rec(cost=None, at=300), rec(alias="b", cost=4.0, at=300),
              rec(cost=8.0, at=300, profile="prod"), rec(cost=16.0, at=50)):
        w.put(db_file(), r)
    assert usage.flush()
    assert usage.spent("a", "default", 100) == 3.0
    assert usage.spent("a", None, 100) == 11.0  # every profile
    assert usage.spent("a", "prod", 0) == 8.0
    assert usage.spent("a", "default", 201) == 0.0
    assert usage.spent("nobody", None, 0) == 0.0


def test_spent_without_a_db_is_zero():
    assert not db_file().exists()
    assert usage.spent("a", None, 0) == 0.0
    assert not db_file().exists()  # asking never creates it


def test_spent_counts_what_is_queued_but_not_written_yet_once():
    w = writer.writer()
    w.put(db_file(), rec(cost=1.0))
    assert usage.flush()
    holder = sqlite3.connect(str(db_file()), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the writer waits for this lock: the next row stays queued
    w.put(db_file(), rec(cost=2.0))
    assert usage.spent("a", None, 0) == 3.0
    holder.execute("COMMIT")
    assert usage.flush()
    assert usage.spent("a", None, 0) == 3.0
    assert len(rows(db_file())) == 2


def test_spent_on_a_corrupt_db_is_zero_with_one_warning(caplog):
    db_file().write_bytes(os.urandom(8192))
    for _ in range(2):
        assert usage.spent("a", None, 0) == 0.0
    said = [r for r in caplog.records if r.name == "llmring.usage"]
    assert len(said) == 1 and "cannot be read" in said[0].getMessage()
    assert "not a SQLite database" in said[0].getMessage()


def test_many_threads_and_the_async_ring_are_all_recorded(tmp_path):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from llmring import AsyncRing

    one_alias(tmp_path, ["mock:echo"])
    ring = Ring()
    with ThreadPoolExecutor(8) as pool:
        assert len(list(pool.map(lambda i: ring.chat("a", f"n{i}"), range(200)))) == 200
    ring.close()

    async def main():
        async with AsyncRing() as aring:
            await asyncio.gather(*(aring.chat("a", "async call") for _ in range(5)))

    asyncio.run(main())
    assert usage.flush()  # AsyncRing.close does not wait for the log; Ring.close and exit do
    counts = sorted(r["input_tokens"] for r in rows(db_file()))
    assert counts == [1] * 200 + [2] * 5
