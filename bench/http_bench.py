"""chat, async and stream: llmring against raw `requests` on the same loopback server."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import requests
from requests.adapters import HTTPAdapter
from server import serve
from timing import (
    ALIAS,
    PROMPT,
    Result,
    Row,
    Scale,
    interleaved,
    median,
    openai_env,
    profile,
    profile_lines,
    raw_request,
    write_bench_lockfile,
)

TIMEOUT = (10.0, 120.0)  # what Ring passes by default: the baseline sets the same socket timeouts
AIM_CHAT = 1.15
AIM_STREAM = 1.3


class Bench:
    """One server, a Ring on a lockfile that points at it, and the baseline's session."""

    def __init__(self, url: str, folder: Path) -> None:
        from llmring import Ring

        self.url = f"{url}/v1/chat/completions"
        self.server = url
        self.lockfile = write_bench_lockfile(folder)
        self.ring = Ring(lockfile_path=self.lockfile)
        self.session = requests.Session()
        self.body, self.headers = raw_request()
        self.stream_body = {**self.body, "stream": True, "stream_options": {"include_usage": True}}

    def ring_chat(self) -> str:
        return self.ring.chat(ALIAS, PROMPT).content

    def raw_chat(self, session: Optional[requests.Session] = None) -> str:
        r = (session or self.session).post(self.url, json=self.body, headers=self.headers, timeout=TIMEOUT)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    def ring_stream(self) -> str:
        return "".join(chunk.delta for chunk in self.ring.stream(ALIAS, PROMPT))

    def raw_stream(self) -> str:
        """What a careful hand-written client does: iter_lines, json per data line, keep the text."""
        parts = []
        r = self.session.post(self.url, json=self.stream_body, headers=self.headers, timeout=TIMEOUT, stream=True)
        try:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:]
                if payload == b"[DONE]":
                    break
                choices = json.loads(payload).get("choices")
                if choices:
                    text = choices[0]["delta"].get("content")
                    if text:
                        parts.append(text)
        finally:
            r.close()
        return "".join(parts)

    def last_request(self) -> dict:
        return self.session.get(f"{self.server}/_last", timeout=TIMEOUT).json()

    def same_request(self, ring_call: Any, raw_call: Any) -> str:
        """Check that llmring and the baseline sent the same body and got the same answer,
        so the comparison is fair; an empty string when they did."""
        ring_answer = ring_call()
        ring_sent = self.last_request()["json"]
        raw_answer = raw_call()
        raw_sent = self.last_request()["json"]
        if ring_sent != raw_sent:
            return f"WARNING: bodies differ: llmring sent {ring_sent}, the baseline {raw_sent}"
        if ring_answer != raw_answer:
            return f"WARNING: answers differ: {ring_answer[:60]!r} vs {raw_answer[:60]!r}"
        return ""

    def close(self) -> None:
        self.ring.close()
        self.session.close()


@contextmanager
def bench_server(delay_ms: float = 0, chunks: int = 10) -> Iterator[Bench]:
    """A bench server in its own process, llmring pointed at it, and a Bench for both sides."""
    with serve(delay_ms, chunks) as url, openai_env(url), tempfile.TemporaryDirectory() as folder:
        bench = Bench(url, Path(folder))
        try:
            yield bench
        finally:
            bench.close()


def _pair_rows(result: Result, what: str, timings: tuple, unit_scale: float, unit: str, aim: float) -> None:
    """Rows for interleaved blocks (see timing.interleaved): per-call medians, and as the
    ratio the median of each block's ratio to its neighbour, so a burst of load from
    elsewhere spoils one pair, not the result. Wall time is what a caller waits; the
    client's CPU time is the same comparison with the server and other programs left out."""
    ring_s, raw_s, ring_cpu, raw_cpu, per = timings
    for label, ring_t, raw_t, note in ((what, ring_s, raw_s, f"aim <= {aim}; "),
                                       (f"{what} (client CPU)", ring_cpu, raw_cpu, "")):
        ratios = [x / y for x, y in zip(ring_t, raw_t) if y > 0]
        ring, raw = median(ring_t) / per * unit_scale, median(raw_t) / per * unit_scale
        result.rows.append(Row(label, ring, raw, unit, f"{note}{ring - raw:+.1f} {unit} per call; "
                               f"block ratios {min(ratios):.2f}..{max(ratios):.2f}", paired_ratio=median(ratios)))
    result.data[what] = dict(zip(("ring_wall_s", "raw_wall_s", "ring_cpu_s", "raw_cpu_s", "calls_per_block"),
                                 timings))


def measure_chat(scale: Scale, with_profile: bool = False) -> Result:
    calls = scale(1000, 50)
    result = Result("chat")
    with bench_server() as bench:
        warning = bench.same_request(bench.ring_chat, bench.raw_chat)
        for _ in range(scale(100, 10)):  # warm: plugins loaded, connections open, caches filled
            bench.ring_chat()
            bench.raw_chat()
        timings = interleaved(bench.ring_chat, bench.raw_chat, calls, 20)
        _pair_rows(result, "Ring.chat vs session.post", timings, 1e6, "us", AIM_CHAT)
        if warning:
            result.details.append(warning)
        if with_profile:
            for title, fn in (("Ring.chat", bench.ring_chat), ("raw session.post", bench.raw_chat)):
                report = profile(fn, calls)
                result.details += profile_lines(title, report)
                result.data[f"profile {title}"] = report
    return result


def measure_stream(scale: Scale, with_profile: bool = False) -> Result:
    chunks = scale(10000, 500)
    rounds = scale(8, 2)
    result = Result("stream")
    with bench_server(chunks=chunks) as bench:
        warning = bench.same_request(bench.ring_stream, bench.raw_stream)
        timings = interleaved(bench.ring_stream, bench.raw_stream, rounds, rounds)
        _pair_rows(result, f"{chunks}-chunk stream", timings, 1000, "ms", AIM_STREAM)
        ring_s, raw_s = timings[:2]
        result.rows[-2].note += f"; {median(ring_s) / chunks * 1e6:.1f} vs {median(raw_s) / chunks * 1e6:.1f} us/chunk"
        if warning:
            result.details.append(warning)
        if with_profile:
            for title, fn in (("Ring.stream", bench.ring_stream), ("raw iter_lines", bench.raw_stream)):
                report = profile(fn, 1)
                result.details += profile_lines(f"{title} (one {chunks}-chunk stream)", report)
                result.data[f"profile {title}"] = report
    return result


async def _rounds(call: Any, concurrency: int, rounds: int) -> list:
    """Wall seconds of each round of `concurrency` calls started together."""
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        await asyncio.gather(*(call() for _ in range(concurrency)))
        out.append(time.perf_counter() - start)
    return out


async def _async_walls(bench: Bench, concurrency: int, rounds: int) -> tuple:
    from llmring import AsyncRing

    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(concurrency)
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=concurrency)
    session.mount("http://", adapter)

    async def raw_call() -> str:
        return await loop.run_in_executor(pool, bench.raw_chat, session)

    async with AsyncRing(bench.lockfile) as ring:
        async def ring_call() -> str:
            return (await ring.chat(ALIAS, PROMPT)).content

        await ring_call()  # providers loaded: not part of any round
        ring_cold = (await _rounds(ring_call, concurrency, 1))[0]  # threads and connections start here
        raw_cold = (await _rounds(raw_call, concurrency, 1))[0]
        ring_warm, raw_warm = [], []
        for _ in range(rounds):  # alternate, so drift falls on both
            ring_warm += await _rounds(ring_call, concurrency, 1)
            raw_warm += await _rounds(raw_call, concurrency, 1)
    pool.shutdown()
    session.close()
    return ring_cold, raw_cold, ring_warm, raw_warm


def measure_async(scale: Scale) -> Result:
    delay_ms = 100
    concurrency = scale(200, 20)
    result = Result("async")
    with bench_server(delay_ms=delay_ms) as bench:
        ring_cold, raw_cold, ring_warm, raw_warm = asyncio.run(_async_walls(bench, concurrency, scale(5, 2)))
    ring_ms, raw_ms = median(ring_warm) * 1000, median(raw_warm) * 1000
    result.rows += [
        Row(f"AsyncRing {concurrency} concurrent", ring_ms, delay_ms, "ms",
            f"baseline: the server's {delay_ms} ms wait (the ideal); warm pool and connections"),
        Row(f"AsyncRing {concurrency}, first round", ring_cold * 1000, delay_ms, "ms",
            "threads started and connections opened during the round"),
        Row("AsyncRing vs raw threads", ring_ms, raw_ms, "ms",
            f"baseline: {concurrency} requests posts on a {concurrency}-thread pool (warm), same server",
            paired_ratio=median([a / b for a, b in zip(ring_warm, raw_warm)])),
    ]
    result.data = {"ring_warm_s": ring_warm, "raw_warm_s": raw_warm, "ring_cold_s": ring_cold,
                   "raw_cold_s": raw_cold, "delay_ms": delay_ms, "concurrency": concurrency}
    return result
