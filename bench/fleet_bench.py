"""fleet: worker processes sharing one rate-limited provider. The bench server answers at most
`rpm` requests in any sliding 60 s window and 429 (with Retry-After) beyond it; 8 processes
loop `ring.chat` against it for a fixed time, once with `[limits.x] rpm` in the lockfile and
the state in a throw-away redis-server (every worker counts against one window), once with no
limits and each process's own state (the 429s and Retry-Afters are all that slow them down).
Needs redis-server on PATH and redis-py, as *state* does.

    python bench/fleet_bench.py [--duration 75] [--rpm 600] [--workers 8] [--quick]

llmring's window is fixed at 60 s, so a run shorter than about 70 s says nothing about a
sustained rate; the defaults keep both sides together under 3 minutes."""

from __future__ import annotations

import math
import multiprocessing
import tempfile
import time
from bisect import bisect_left
from pathlib import Path
from typing import Optional

from server import WINDOW, serve
from state_bench import redis_server
from timing import PROMPT, Result, Row, Scale

WORKERS = 8
RPM = 600
DURATION = 75.0  # seconds per side: a full window, and 15 s more in which to slide it
QUICK_DURATION = 3.0  # --quick: checks the bench runs, measures nothing
AIM = 95.0  # % of the limit answered in every 60 s window, with no 429
MODEL_REF = "x:gpt-4o-mini"
BUCKET = 5.0  # seconds per bucket in the timelines under the table
SLOTS = 3  # numbers each worker shares with the parent (see _worker)


def lockfile(url: str, rpm: Optional[int]) -> str:
    """Alias `fleet` -> an OpenAI-compatible endpoint `x` at the bench server, with or without
    `[limits.x] rpm`."""
    limits = f"[limits.x]\nrpm = {rpm}\n\n" if rpm else ""
    return (f'version = "1.0"\ndefault_profile = "default"\n\n{limits}'
            f'[providers.x]\ntype = "openai"\nbase_url = "{url}/v1"\n\n'
            '[profiles.default]\nname = "default"\n\n'
            f'[[profiles.default.bindings]]\nalias = "fleet"\nmodels = ["{MODEL_REF}"]\n')


def _worker(lock: str, state_url: str, start: object, counts: object, index: int) -> None:
    """One worker process: make a Ring, wait for the others, then call until it is stopped.
    counts[SLOTS * index:]: calls answered, calls failed, 1 once the Redis state has fallen back."""
    from llmring import Ring
    from llmring.exceptions import AllModelsFailedError

    ring = Ring(lock, state_url=state_url)
    state = ring.breaker.state
    start.wait()
    answered = failed = 0
    while True:
        try:
            ring.chat("fleet", PROMPT)  # no deadline: llmring's normal policy waits for room
            answered += 1
        except AllModelsFailedError:
            failed += 1
        mine = SLOTS * index
        counts[mine], counts[mine + 1] = answered, failed
        if state_url and not state.sharing:
            counts[mine + 2] = 1


def run_side(folder: Path, rpm: int, duration: float, workers: int, state_url: str, limited: bool) -> dict:
    """Start a fresh rate-limited server and `workers` processes; after `duration` seconds,
    read what they and the server counted, then stop them."""
    import requests

    ctx = multiprocessing.get_context("spawn")  # fresh processes, like a fleet's workers
    with serve(rpm=rpm) as url:
        lock = folder / f"llmring-{'limits' if limited else 'none'}.lock"
        lock.write_text(lockfile(url, rpm if limited else None), encoding="utf-8")
        start = ctx.Barrier(workers + 1)
        counts = ctx.Array("q", SLOTS * workers, lock=False)
        procs = [ctx.Process(target=_worker, args=(str(lock), state_url, start, counts, i), daemon=True)
                 for i in range(workers)]
        for p in procs:
            p.start()
        try:
            start.wait(timeout=120)
            began = time.time()
            time.sleep(duration)
            ended = time.time()
            seen = list(counts)
            stats = requests.get(f"{url}/_stats", timeout=30).json()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.join(10)
    answered = [t for t in stats["answered"] if began <= t <= ended]
    return {"began": began, "ended": ended, "answered": answered,
            "refused": [t for t in stats["refused"] if began <= t <= ended],
            "calls_answered": sum(seen[0::SLOTS]), "calls_failed": sum(seen[1::SLOTS]),
            "fell_back": sum(seen[2::SLOTS])}


def least_in_window(times: list, began: float, ended: float, step: float = 0.05) -> Optional[int]:
    """The fewest of `times` in any whole 60 s window inside [began, ended]; None when the run
    is shorter than a window."""
    if ended - began < WINDOW:
        return None
    times = sorted(times)
    least, w = len(times), began
    while w + WINDOW <= ended:
        least = min(least, bisect_left(times, w + WINDOW) - bisect_left(times, w))
        w += step
    return least


def timeline(times: list, began: float, ended: float) -> str:
    buckets = [0] * max(1, math.ceil((ended - began) / BUCKET))
    for t in times:
        buckets[min(len(buckets) - 1, int((t - began) // BUCKET))] += 1
    return " ".join(str(n) for n in buckets)


def measure_fleet(scale: Scale, duration: Optional[float] = None, rpm: Optional[int] = None,
                  workers: int = WORKERS) -> Result:
    duration = duration or (DURATION if scale.factor >= 1 else QUICK_DURATION)
    rpm = rpm or scale(RPM, 10)
    result = Result("fleet")
    with tempfile.TemporaryDirectory() as tmp, redis_server(tmp) as redis_url:
        folder = Path(tmp)
        a = run_side(folder, rpm, duration, workers, redis_url, limited=True)
        b = run_side(folder, rpm, duration, workers, "", limited=False)
    result.rows += rows(a, b, rpm, duration)
    result.details += [
        f"{workers} worker processes, {duration:.0f} s per side, the server answers {rpm} requests in any "
        f"sliding {WINDOW:.0f} s window (429 + Retry-After beyond); llmring: [limits.x] rpm = {rpm} "
        f"and Ring(state_url=redis://...); baseline: no limits, each process's own state",
        f"workers whose Redis state fell back to their own during the run: {a['fell_back']} of {workers}",
    ]
    for name, side in (("limits + Redis", a), ("no limits", b)):
        result.details.append(f"{name}: answered per {BUCKET:.0f} s: "
                              f"{timeline(side['answered'], side['began'], side['ended'])}")
        result.details.append(f"{name}: 429s per {BUCKET:.0f} s: "
                              f"{timeline(side['refused'], side['began'], side['ended'])}")
    result.data = {"rpm": rpm, "duration_s": duration, "workers": workers, "limits": summary(a), "none": summary(b)}
    return result


def summary(side: dict) -> dict:
    """A side's counts for --json (the times themselves stay out)."""
    return {key: len(v) if isinstance(v, list) else v for key, v in side.items() if key not in ("began", "ended")}


def rows(a: dict, b: dict, rpm: int, duration: float) -> list:
    """llmring (limits + Redis) against the baseline (no limits), one row per count."""
    least_a = least_in_window(a["answered"], a["began"], a["ended"])
    least_b = least_in_window(b["answered"], b["began"], b["ended"])
    minutes = duration / WINDOW
    n_a, n_b = len(a["answered"]), len(b["answered"])
    out = [Row("requests answered 200", n_a, n_b, "", f"ratio: useful work with limits / without, in the same "
               f"{duration:.0f} s ({n_a / minutes:.0f} vs {n_b / minutes:.0f} a minute on average)")]
    if least_a is not None and least_b is not None:
        out.append(Row("answered in the least busy 60 s window", least_a / rpm * 100, least_b / rpm * 100, "%",
                       f"of rpm = {rpm}; aim >= {AIM:.0f} % with limits ({least_a} vs {least_b} requests)"))
    else:
        out.append(Row("answered a minute (run < 60 s: not sustained)", n_a / minutes / rpm * 100,
                       n_b / minutes / rpm * 100, "%", f"of rpm = {rpm}"))
    out.append(Row("429s the server sent", len(a["refused"]), len(b["refused"]), "", "aim: 0 with limits"))
    out.append(Row("calls failed", a["calls_failed"], b["calls_failed"], "",
                   f"calls answered, as the workers counted: {a['calls_answered']} vs {b['calls_answered']}"))
    return out


def main() -> None:
    import argparse

    from run import table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help=f"seconds per side (default {DURATION:.0f})")
    parser.add_argument("--rpm", type=int, help=f"the server's and the lockfile's limit (default {RPM})")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"worker processes (default {WORKERS})")
    parser.add_argument("--quick", action="store_true", help="a few seconds: a smoke test, not a measurement")
    args = parser.parse_args()
    print(table([measure_fleet(Scale(0.1 if args.quick else 1.0), args.duration, args.rpm, args.workers)]))


if __name__ == "__main__":
    main()
