"""memory: what 1,000 Ring.chat calls cost in memory against 1,000 raw posts, each side
measured in its own fresh process (the parent's peak RSS is already high from the other
measurements).

    python bench/memory_bench.py ring|raw URL LOCKFILE CALLS rss|trace     # one child run
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from server import serve
from timing import API_KEY, PYTHON, Result, Row, Scale, bench_env, write_bench_lockfile

HERE = Path(__file__).resolve()


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def rss_kib() -> int:
    return _status_kib("VmRSS")


def peak_kib() -> int:
    """Peak RSS of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    exec, so a child of a big parent would start with the parent's peak."""
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def make_call(side: str, url: str, lockfile: str) -> object:
    from timing import ALIAS, PROMPT, raw_request

    if side == "ring":
        from llmring import Ring

        ring = Ring(lockfile_path=lockfile)
        return lambda: ring.chat(ALIAS, PROMPT).content
    import requests

    session = requests.Session()
    body, headers = raw_request()
    return lambda: session.post(f"{url}/v1/chat/completions", json=body, headers=headers,
                                timeout=(10.0, 120.0)).json()["choices"][0]["message"]["content"]


def child(side: str, url: str, lockfile: str, calls: int, mode: str) -> dict:
    start_rss = rss_kib()
    call = make_call(side, url, lockfile)
    call()  # one-time costs (imports, plugins, the connection) are reported apart
    out = {"first_call_kib": peak_kib() - start_rss}
    if mode == "trace":
        import tracemalloc

        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            call()
        current, peak = tracemalloc.get_traced_memory()
        out.update(retained_bytes=current - before, peak_bytes=peak - before)
    else:
        rss0, peak0 = rss_kib(), peak_kib()
        for _ in range(calls):
            call()
        out.update(peak_growth_kib=peak_kib() - peak0, rss_growth_kib=rss_kib() - rss0, peak_kib=peak_kib())
    return out


def run_child(side: str, url: str, lockfile: Path, calls: int, mode: str) -> dict:
    env = bench_env(OPENAI_BASE_URL=f"{url}/v1", OPENAI_API_KEY=API_KEY)
    done = subprocess.run([PYTHON, str(HERE), side, url, str(lockfile), str(calls), mode], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory child ({side}, {mode}) failed: {done.stderr[-800:]}")
    return json.loads(done.stdout)


def measure_memory(scale: Scale) -> Result:
    calls = scale(1000, 50)
    with serve() as url, tempfile.TemporaryDirectory() as folder:
        lockfile = write_bench_lockfile(Path(folder))
        got = {(side, mode): run_child(side, url, lockfile, calls, mode)
               for mode in ("rss", "trace") for side in ("ring", "raw")}
    ring, raw = got["ring", "rss"], got["raw", "rss"]
    ring_t, raw_t = got["ring", "trace"], got["raw", "trace"]
    kib = 1024
    result = Result("memory", data={f"{side} {mode}": v for (side, mode), v in got.items()})
    result.rows += [
        Row(f"traced peak during {calls} calls", ring_t["peak_bytes"] / kib, raw_t["peak_bytes"] / kib, "KiB",
            "tracemalloc: the most Python memory in use at once above the start"),
        Row(f"traced retained after {calls} calls", ring_t["retained_bytes"] / kib,
            raw_t["retained_bytes"] / kib, "KiB", "tracemalloc: what the calls left behind (a leak shows here)"),
        Row(f"peak RSS growth during {calls} calls", ring["peak_growth_kib"], raw["peak_growth_kib"], "KiB",
            f"peak RSS (VmHWM) after - before; RSS now {ring['rss_growth_kib']:+d} vs {raw['rss_growth_kib']:+d} KiB"),
        Row("first call (imports, plugins, connection)", ring["first_call_kib"], raw["first_call_kib"], "KiB",
            "peak RSS after the first call - RSS before creating the client"),
        Row("process peak RSS", ring["peak_kib"], raw["peak_kib"], "KiB", "VmHWM at the end"),
    ]
    return result


if __name__ == "__main__":
    side_, url_, lockfile_, calls_, mode_ = sys.argv[1:6]
    print(json.dumps(child(side_, url_, lockfile_, int(calls_), mode_)))
