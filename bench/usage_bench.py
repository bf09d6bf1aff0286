"""usage: what the usage log costs a call, how many processes it takes at once, and how fast
`llmring usage --by day` reads a million rows.

  chat, log on vs off      Ring.chat on the loopback server, interleaved blocks; aim <= 1.03
  8 writer processes       8 x 1,000 records at once into one database: all rows there, seconds
  report, 1,000,000 rows   report.summarize(by day) in-process and `llmring usage --by day` as a
                           user runs it, against a bare full scan (COUNT, TOTAL(cost)); aim < 2 s
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from http_bench import _pair_rows, bench_server
from timing import PYTHON, Result, Row, Scale, bench_env, interleaved, median

AIM_CHAT = 1.03
AIM_REPORT_S = 2.0
LLMRING = str(Path(PYTHON).parent / "llmring")


def measure_usage(scale: Scale) -> Result:
    result = Result("usage")
    saved = os.environ.get("LLMRING_USAGE_DB")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LLMRING_USAGE_DB"] = str(Path(folder) / "chat.db")
        try:
            _chat(result, scale)
        finally:
            os.environ.pop("LLMRING_USAGE", None)
            if saved is None:
                os.environ.pop("LLMRING_USAGE_DB", None)
            else:
                os.environ["LLMRING_USAGE_DB"] = saved
        _writers(result, Path(folder) / "writers.db", scale)
        _report(result, Path(folder) / "million.db", scale(1_000_000, 10_000))
    return result


def _chat(result: Result, scale: Scale) -> None:
    from llmring import usage

    calls = scale(4000, 100)
    with bench_server() as bench:
        def on() -> str:
            os.environ["LLMRING_USAGE"] = "on"
            return bench.ring_chat()

        def off() -> str:
            os.environ["LLMRING_USAGE"] = "off"
            return bench.ring_chat()

        for _ in range(scale(100, 10)):  # warm: the writer thread and its connection exist
            on()
            off()
        usage.flush()
        timings = interleaved(on, off, calls, 40)
        _pair_rows(result, "Ring.chat, log on vs off", timings, 1e6, "us", AIM_CHAT)
        usage.flush()
    written = sqlite3.connect(os.environ["LLMRING_USAGE_DB"]).execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    result.details.append(f"chat: {written:,} rows written by the log-on side")


WRITER = textwrap.dedent("""
    import sys
    from llmring import usage
    from llmring.record import CallRecord
    from llmring.types import Attempt
    from llmring.usage import db, writer
    w = writer.writer()
    for i in range(int(sys.argv[1])):
        w.put(db.path(), CallRecord(float(i), 0.5, "p" + sys.argv[2], "default", "llmring.lock", False,
                                    "openai:gpt-4o-mini", (Attempt("openai:gpt-4o-mini"),), 10, 2, cost=0.001))
    assert usage.flush(60)
""")


def _writers(result: Result, path: Path, scale: Scale) -> None:
    each, procs = scale(1000, 100), 8
    env = bench_env(LLMRING_USAGE_DB=str(path))
    start = time.perf_counter()
    running = [subprocess.Popen([PYTHON, "-c", WRITER, str(each), str(n)], env=env, stderr=subprocess.PIPE)
               for n in range(procs)]
    errors = [p.communicate()[1].decode() for p in running]
    wall = time.perf_counter() - start
    conn = sqlite3.connect(str(path))
    rows = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    failed = [e for e in errors if e.strip()]
    result.rows.append(Row(f"{procs} processes x {each:,} records", wall * 1000, None, "ms",
                           f"{rows:,} of {procs * each:,} rows; integrity {ok}; {len(failed)} process(es) "
                           "with errors" + (f": {failed[0][-200:]}" if failed else "")))


def _report(result: Result, path: Path, count: int) -> None:
    made = time.perf_counter()
    now = _fill(path, count)
    made = time.perf_counter() - made
    from llmring.usage import report

    conn = sqlite3.connect(str(path))
    walls, cpus, scans = [], [], []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        found = report.summarize(conn, "day", now - 100 * 86400, None)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        t = time.perf_counter()
        conn.execute("SELECT COUNT(*), TOTAL(cost) FROM calls WHERE at >= ?", (now - 100 * 86400,)).fetchone()
        scans.append(time.perf_counter() - t)
    conn.close()
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        done = subprocess.run([LLMRING, "usage", "--by", "day", "--since", "100d"], capture_output=True,
                              env=bench_env(LLMRING_USAGE_DB=str(path)))
        cli.append(time.perf_counter() - t)
        if done.returncode != 0:
            result.details.append(f"WARNING: llmring usage failed: {done.stderr.decode()[-300:]}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result.rows += [
        Row(f"summarize by day, {count:,} rows", median(walls), median(scans), "s",
            f"aim < {AIM_REPORT_S} s; baseline: a bare scan (COUNT, TOTAL(cost)); CPU {median(cpus):.2f} s; "
            f"{len(found.rows)} days"),
        Row(f"`llmring usage --by day`, {count:,} rows", median(cli), AIM_REPORT_S, "s",
            f"the command as a user runs it (start-up included), against the aim; load average {load:.1f}"),
    ]
    result.details.append(f"report: {count:,} rows generated in {made:.0f} s (time order, as the log grows)")


def _fill(path: Path, count: int) -> float:
    """`count` calls over 90 days in time order: 5 aliases, 4 models (one unpriced)."""
    from llmring.usage import db

    rnd, now = random.Random(7), time.time()
    aliases = ("summarizer", "extractor", "chat", "classifier", "translator")
    models = ("openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5", "google:gemini-2.5-flash", "ollama:llama3")

    def rows():
        for i in range(count):
            model = rnd.choice(models)
            priced = not model.startswith("ollama")
            failed = rnd.random() < 0.01
            yield (now - 90 * 86400 + i * 90 * 86400 / count, rnd.choice(aliases), "default", "/app/llmring.lock",
                   None if failed else model, None if failed else model.split(":")[0], f'[["{model}",null]]',
                   int(failed), 500, 100, None, None, 0.001 if priced and not failed else None,
                   None if priced else "no price", rnd.lognormvariate(0, 0.6), None, "stop",
                   "server" if failed else None, 0, None, None)

    conn = db.connect(path, create=True)
    conn.execute("BEGIN")
    conn.executemany(db.INSERT, rows())
    conn.execute("COMMIT")
    conn.close()
    return now


if __name__ == "__main__":
    from run import main

    sys.exit(main(["usage", *sys.argv[1:]]))
