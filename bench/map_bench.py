"""map: 1,000 calls at once to a server that takes 100 ms, through `Ring.map(...,
concurrency=1000)` and `AsyncRing.map`, against the ideal 0.1 s and against a raw baseline
(1,000 `requests` posts on a 1,000-thread pool). Each side runs in its own fresh process, so
its peak RSS is its own.

    python bench/map_bench.py ring|async|gather|raw URL LOCKFILE CALLS    # one child run, prints JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from memory_bench import peak_kib, rss_kib
from server import serve
from timing import API_KEY, PYTHON, Result, Row, Scale, bench_env, median, write_bench_lockfile

HERE = Path(__file__).resolve()
DELAY_MS = 100
AIM = 3.0  # at most 3x the ideal (one server delay)
AIM_RSS_MIB = 150
ROUNDS = 3  # the first round also starts the threads and opens the connections


def _ring_round(side: str, url: str, lockfile: str, calls: int) -> object:
    from timing import ALIAS, PROMPT

    if side == "ring":
        from llmring import Ring

        ring = Ring(lockfile_path=lockfile, pool_size=calls)
        ring.chat(ALIAS, PROMPT)
        return lambda: sum(1 for r in ring.map(ALIAS, [PROMPT] * calls, concurrency=calls) if r.content)
    import asyncio

    from llmring import AsyncRing

    ring = AsyncRing(lockfile, pool_size=calls)
    ring.ring.chat(ALIAS, PROMPT)

    async def mapped() -> int:
        return sum([1 async for r in ring.map(ALIAS, [PROMPT] * calls, concurrency=calls) if r.content])

    async def gathered() -> int:  # before map: chat() on the AsyncRing's default 256-thread pool
        return sum(1 for r in await asyncio.gather(*(ring.chat(ALIAS, PROMPT) for _ in range(calls))) if r.content)

    return lambda: asyncio.run(mapped() if side == "async" else gathered())


def _raw_round(url: str, calls: int) -> object:
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from requests.adapters import HTTPAdapter
    from timing import raw_request

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=calls))
    body, headers = raw_request()

    def post(_: int) -> str:
        r = session.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=(10.0, 120.0))
        return r.json()["choices"][0]["message"]["content"]

    post(0)
    pool = ThreadPoolExecutor(calls)
    return lambda: sum(1 for c in pool.map(post, range(calls)) if c)


def child(side: str, url: str, lockfile: str, calls: int) -> dict:
    before = rss_kib()
    run = _raw_round(url, calls) if side == "raw" else _ring_round(side, url, lockfile, calls)
    walls, cpus = [], []
    for _ in range(ROUNDS):
        start, cpu = time.perf_counter(), time.process_time()
        assert run() == calls
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return {"walls": walls, "cpus": cpus, "peak_kib": peak_kib(), "start_kib": before,
            "threads_after": threading.active_count()}


def _run_child(side: str, url: str, lockfile: Path, calls: int) -> dict:
    env = bench_env(OPENAI_BASE_URL=f"{url}/v1", OPENAI_API_KEY=API_KEY)
    done = subprocess.run([PYTHON, str(HERE), side, url, str(lockfile), str(calls)], env=env,
                          capture_output=True, text=True, cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"map_bench {side} failed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


def measure_map(scale: Scale, with_profile: bool = False) -> Result:
    calls = scale(1000, 100)
    result = Result("map")
    with tempfile.TemporaryDirectory() as tmp, serve(delay_ms=DELAY_MS) as url:
        lockfile = write_bench_lockfile(Path(tmp))
        sides = {side: _run_child(side, url, lockfile, calls) for side in ("ring", "async", "gather", "raw")}
    ideal = DELAY_MS / 1000
    raw = sides["raw"]
    for side, label in (("ring", "Ring.map"), ("async", "AsyncRing.map")):
        got = sides[side]
        warm, first = median(got["walls"][1:]), got["walls"][0]
        result.rows.append(Row(f"{label}, {calls} at once (warm) vs ideal", warm * 1000, ideal * 1000, "ms",
                               f"aim <= {AIM}x; first round {first * 1000:.0f} ms"))
        result.rows.append(Row(f"{label} vs raw thread pool (warm)", warm * 1000, median(raw["walls"][1:]) * 1000,
                               "ms", f"raw first round {raw['walls'][0] * 1000:.0f} ms"))
        result.rows.append(Row(f"{label} client CPU vs raw (warm)", median(got["cpus"][1:]) * 1000,
                               median(raw["cpus"][1:]) * 1000, "ms", "CPU seconds of the client process per round"))
        result.rows.append(Row(f"{label} peak RSS vs raw", got["peak_kib"], raw["peak_kib"], "KiB",
                               f"aim <= {AIM_RSS_MIB} MiB; {got['start_kib'] // 1024} MiB at start"))
    mapped, gathered = (median(sides[side]["walls"][1:]) * 1000 for side in ("ring", "gather"))
    result.rows.append(Row("Ring.map vs AsyncRing.chat + gather (256 threads)", mapped, gathered, "ms",
                           "the same calls the way AsyncRing ran them before map"))
    result.data.update(sides)
    return result


if __name__ == "__main__":
    side, url, lockfile, calls = sys.argv[1:5]
    print(json.dumps(child(side, url, lockfile, int(calls))))
