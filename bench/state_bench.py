"""state: what sharing the circuit breaker (and limits) through Redis on loopback costs a call,
next to the same Ring with its state in the process. Needs redis-server on PATH and redis-py
(`pip install -e ".[redis]"`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from server import serve
from timing import ALIAS, MODEL, PROMPT, Result, Row, Scale, interleaved, lockfile_text, median, openai_env

AIM = 1.05
SERVER_DELAYS_MS = (0, 20)  # at once: the pure overhead; 20 ms: still a very fast model


@contextmanager
def redis_server(folder: str) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port; yields its URL."""
    exe = shutil.which("redis-server")
    if not exe:
        raise RuntimeError("the state bench needs redis-server on PATH (apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1500):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def _round_trip_us(url: str, n: int) -> float:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    start = time.perf_counter()
    for _ in range(n):
        client.pttl("llmring:bench:nothing")
    took = time.perf_counter() - start
    client.close()
    return took / n * 1e6


def measure_state(scale: Scale) -> Result:
    result = Result("state")
    calls = scale(600, 40)
    with tempfile.TemporaryDirectory() as folder, redis_server(folder) as url:
        # A fallback after the primary: each call asks whether the primary rests and, when it
        # answers, clears its failures (what Redis said of it is trusted for 50 ms, so a busy
        # worker asks seldom); the last rows add a limit that never binds: an admit and a
        # release per call, always asked of Redis.
        text = lockfile_text({ALIAS: [f"openai:{MODEL}", "openai:gpt-4o"]})
        plain, limited = Path(folder) / "plain.lock", Path(folder) / "limited.lock"
        plain.write_text(text, encoding="utf-8")
        limited.write_text(text + f"\n[limits.openai]\nrpm = {LOOSE_RPM}\n", encoding="utf-8")
        for label, lock, delay in ((f"chat, server waits {d} ms", plain, d) for d in SERVER_DELAYS_MS):
            result.rows.append(_row(label, lock, url, delay, calls if delay == 0 else max(20, calls // 10), scale))
        for d in SERVER_DELAYS_MS:
            result.rows.append(_row(f"chat with [limits] rpm, server waits {d} ms", limited, url, d,
                                    calls if d == 0 else max(20, calls // 10), scale))
        result.details.append(f"one Redis round trip on this loopback (PTTL, redis-py): "
                              f"{_round_trip_us(url, scale(2000, 100)):.0f} us")
    return result


LOOSE_RPM = 60_000_000  # a limit that never binds (paced at a million a second)


def _row(label: str, lock: Path, url: str, delay: int, per: int, scale: Scale) -> Row:
    """Ring.chat with the state in Redis against the same Ring with its state in the process."""
    from llmring import Ring

    with serve(delay) as server, openai_env(server):
        local, shared = Ring(lock), Ring(lock, state_url=url)
        for ring in (local, shared):
            for _ in range(scale(50, 5)):  # warm: providers, connections, scripts loaded
                ring.chat(ALIAS, PROMPT)
        wall_shared, wall_local, *_, per_block = interleaved(
            partial(shared.chat, ALIAS, PROMPT), partial(local.chat, ALIAS, PROMPT), per, 10)
        assert shared.breaker.state.sharing, "the Redis state fell back during the bench"
        local.close()
        shared.close()
    ratios = [a / b for a, b in zip(wall_shared, wall_local) if b > 0]
    s_us, l_us = median(wall_shared) / per_block * 1e6, median(wall_local) / per_block * 1e6
    return Row(label, s_us, l_us, "us", f"aim <= {AIM} (for real model latencies); {s_us - l_us:+.0f} us per call; "
               f"block ratios {min(ratios):.2f}..{max(ratios):.2f}", paired_ratio=median(ratios))
