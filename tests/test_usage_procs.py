"""Many real processes writing one usage log at once; a writer killed mid-run; fork."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from lockfiles import one_alias
from usagefix import rec, rows

from llmring import Ring, usage
from llmring.usage import db, writer

WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    from usagefix import rec
    from llmring import usage
    from llmring.usage import db, writer
    w, who = writer.writer(), sys.argv[1]
    for i in range(int(sys.argv[2])):
        w.put(db.path(), rec(alias=who, cost=0.001, at=float(i)))
        if sys.argv[4] == "report" and i % 100 == 99:  # say how many rows are surely on disk
            assert usage.flush()
            print(i + 1, flush=True)
    assert usage.flush()
""")
TESTS = os.path.dirname(__file__)


def start(who, count, mode="quiet"):
    return subprocess.Popen([sys.executable, "-c", WRITER, who, str(count), TESTS, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_eight_processes_write_a_thousand_rows_each_and_none_is_lost():
    procs = [start(f"p{n}", 1000) for n in range(8)]
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0 and err == "", err
    conn = sqlite3.connect(str(db.path()))
    counts = dict(conn.execute("SELECT alias, COUNT(*) FROM calls GROUP BY alias"))
    assert counts == {f"p{n}": 1000 for n in range(8)}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


CHATTER = textwrap.dedent("""
    from llmring import Ring
    ring = Ring()
    for i in range(50):
        ring.chat("a", "hello")
    for answer in ring.map("a", ["one", "two"]):
        assert answer.content
""")  # no close(): the rows are written at exit


def test_processes_chatting_through_the_ring_record_every_call(tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    procs = [subprocess.Popen([sys.executable, "-c", CHATTER], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for p in procs:
        assert p.wait() == 0 and p.stderr.read() == ""
    assert len(rows(db.path())) == 4 * 52


def test_a_writer_killed_mid_run_loses_only_unflushed_rows_and_never_corrupts():
    steady = start("steady", 2000)
    victim = start("victim", 1_000_000, "report")
    surely = 0
    for line in victim.stdout:
        surely = int(line)
        if surely >= 1000:
            break
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert steady.wait() == 0
    conn = sqlite3.connect(str(db.path()))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = dict(conn.execute("SELECT alias, COUNT(*) FROM calls GROUP BY alias"))
    assert counts["steady"] == 2000 and counts["victim"] >= surely
    victim.stdout.close()
    victim.stderr.close()
    steady.stdout.close()
    steady.stderr.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_writes_with_its_own_writer(tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    ring = Ring()
    ring.chat("a", "parent")
    parent = writer.current()
    pid = os.fork()
    if pid == 0:  # the child: a new writer, never the parent's queue or connection
        try:
            child_ok = writer.current() is None
            ring.chat("a", "child")
            child_ok = child_ok and writer.current() is not parent and usage.flush()
        finally:
            os._exit(0 if child_ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ring.close()
    assert sorted(r["input_tokens"] for r in rows(db.path())) == [1, 1]
    assert len({r["at"] for r in rows(db.path())}) == 2


def test_a_full_queue_drops_with_one_warning_and_never_blocks(caplog, monkeypatch):
    monkeypatch.setattr(writer, "QUEUE_SIZE", 2)
    monkeypatch.setattr(writer, "INTERVAL_S", 3600)  # the writer sleeps until flushed: the queue fills
    w = writer.Writer()
    for i in range(10):
        w.put(db.path(), rec(at=float(i), cost=1.0))
    assert w.flush()
    said = [r.getMessage() for r in caplog.records if r.name == "llmring.usage"]
    assert len(said) == 1 and "cannot keep up" in said[0]
    assert [r["at"] for r in rows(db.path())] == [0.0, 1.0]
    with w.lock:
        assert w.pending_cost(db.path(), "a", None, 0) == 0.0
