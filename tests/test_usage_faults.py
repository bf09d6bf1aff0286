"""A usage log that cannot be written never fails a call: one warning, and the call goes on.
Real files: junk bytes, a path under a regular file, a lock held by another connection, a
process whose file-size limit makes the disk "full"."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from lockfiles import one_alias
from usagefix import rec, rows

from llmring import Ring, usage
from llmring.usage import db, writer


def warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "llmring.usage"]


def chat_twice(tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    ring = Ring()
    answers = [ring.chat("a", "still answered").content for _ in range(2)]
    usage.flush()
    ring.chat("a", "again")
    ring.close()
    return answers


def test_a_corrupt_db_warns_once_and_calls_go_on(tmp_path, caplog, monkeypatch):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x13\x37" * 8192)
    monkeypatch.setenv("LLMRING_USAGE_DB", str(junk))
    assert chat_twice(tmp_path) == ["still answered"] * 2
    [said] = warnings(caplog)
    assert "not a SQLite database" in said and "LLMRING_USAGE_DB" in said
    assert junk.read_bytes() == b"\x13\x37" * 8192  # left as it was


def test_a_path_that_cannot_be_made_warns_once(tmp_path, caplog, monkeypatch):
    (tmp_path / "plain-file").write_text("x")
    monkeypatch.setenv("LLMRING_USAGE_DB", str(tmp_path / "plain-file" / "usage.db"))
    assert chat_twice(tmp_path) == ["still answered"] * 2
    [said] = warnings(caplog)
    assert "cannot be written" in said and "plain-file" in said


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_db_warns_once(tmp_path, caplog):
    writer.writer().put(db.path(), rec())
    assert usage.flush()
    os.chmod(db.path(), 0o444)
    assert chat_twice(tmp_path) == ["still answered"] * 2
    assert len(warnings(caplog)) == 1


def test_a_locked_db_is_written_once_the_lock_is_gone(tmp_path, caplog):
    path = db.path()
    db.connect(path, create=True).close()
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    one_alias(tmp_path, ["mock:echo"])
    ring = Ring()
    assert ring.chat("a", "x").content == "x"  # had the call waited on the lock, it would warn first
    assert warnings(caplog) == []
    holder.execute("COMMIT")
    ring.close()
    assert len(rows(path)) == 1 and warnings(caplog) == []


def test_a_db_locked_for_longer_than_the_writer_waits_warns_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 20)
    path = db.path()
    db.connect(path, create=True).close()
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    assert chat_twice(tmp_path) == ["still answered"] * 2
    [said] = warnings(caplog)
    assert "database is locked" in said
    holder.execute("COMMIT")
    ring = Ring()
    ring.chat("a", "after")
    ring.close()
    assert [r["input_tokens"] for r in rows(path)] == [1]  # written again once the lock was gone


FULL = textwrap.dedent("""
    import logging, resource, signal, sys
    logging.basicConfig(format="%(name)s: %(message)s")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from llmring import Ring, usage
    ring = Ring()
    for i in range(300):
        assert ring.chat("a", "word " * 400).content
        if i % 50 == 49:
            usage.flush()  # batches of 50: the first fit under the limit, the later ones do not
    ring.close()
    print("all answered")
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file-size limit")
def test_a_full_disk_warns_once_and_calls_go_on(tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    path = db.path()
    db.connect(path, create=True).close()
    env = {**os.environ, "LLMRING_USAGE_TEXT": "on"}
    done = subprocess.run([sys.executable, "-c", FULL, str(400_000)], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "all answered"
    said = [line for line in done.stderr.splitlines() if line.startswith("llmring.usage")]
    assert len(said) == 1 and "full" in said[0], done.stderr
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 0 < conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] < 300
