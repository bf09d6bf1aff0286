"""llmring's benchmarks: every number is a ratio against a baseline measured in the same run
on this machine, never an absolute threshold. See bench/README.md for what each one means.

    python bench/run.py                     # everything, as a table (about 4 minutes)
    python bench/run.py chat stream         # some of them
    python bench/run.py --json out.json     # also write the results as JSON ("-": stdout only)
    python bench/run.py chat --profile      # add cProfile breakdowns (chat, stream, lockfile)
    python bench/run.py --quick             # smaller counts: a smoke test, not a measurement
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from budget_bench import measure_budget
from fleet_bench import measure_fleet
from http_bench import measure_async, measure_chat, measure_stream
from lockfile_bench import measure_lockfile
from map_bench import measure_map
from memory_bench import measure_memory
from plugin_bench import measure_plugins
from startup_bench import measure_cli, measure_startup
from state_bench import measure_state
from timing import Result, Scale
from usage_bench import measure_usage

MEASUREMENTS = {
    "startup": measure_startup,
    "cli": measure_cli,
    "lockfile": measure_lockfile,
    "chat": measure_chat,
    "async": measure_async,
    "stream": measure_stream,
    "memory": measure_memory,
    "map": measure_map,
    "state": measure_state,
    "fleet": measure_fleet,
    "usage": measure_usage,
    "budget": measure_budget,
    "plugins": measure_plugins,
}
PROFILED = {"lockfile", "chat", "stream"}


def _fmt(value: float, unit: str) -> str:
    if value is None:
        return "-"
    if not unit:  # a count
        return f"{value:,.0f}"
    if unit == "KiB" and abs(value) >= 10240:
        return f"{value / 1024:.1f} MiB"
    return f"{value:.1f} {unit}" if abs(value) < 1000 else f"{value:,.0f} {unit}"


def table(results: list) -> str:
    header = ("measurement", "metric", "llmring", "baseline", "ratio", "")
    lines = [header]
    for r in results:
        for row in r.rows:
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "n/a"
            lines.append((r.name, row.metric, _fmt(row.value, row.unit), _fmt(row.baseline, row.unit), ratio,
                          row.note))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    out = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
           + "  " + line[5] for line in lines]
    out.insert(1, "-" * (sum(widths) + 2 * len(widths)))
    for r in results:
        if r.details:
            out.append(f"\n[{r.name}]")
            out += [f"  {d}" for d in r.details]
    return "\n".join(out)


def as_json(results: list, elapsed: float) -> dict:
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
        "elapsed_s": round(elapsed, 1),
        "results": {r.name: {"rows": [{**dataclasses.asdict(row), "ratio": row.ratio} for row in r.rows],
                             "details": r.details, "data": r.data} for r in results},
    }


def main(argv: list = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="measurements: " + ", ".join(MEASUREMENTS))
    parser.add_argument("names", nargs="*", metavar="NAME", help="measurements to run (default: all)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE ('-': stdout)")
    parser.add_argument("--profile", action="store_true", help="profile llmring's side of chat, stream, lockfile")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work: checks the bench runs")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(unknown)}; choose from {', '.join(MEASUREMENTS)}")
    try:
        import llmring  # noqa: F401
    except ImportError:
        parser.error(f"{sys.executable} cannot import llmring: run with the project's venv "
                     "(.venv/bin/python bench/run.py) or pip install -e . first")
    scale = Scale(0.1 if args.quick else 1.0)
    # Every call the benchmarks make is logged (the usage log is on by default): into a file of
    # this run, never the user's own log. bench_env passes it on to the bench's processes.
    usage_dir = tempfile.TemporaryDirectory()
    os.environ.setdefault("LLMRING_USAGE_DB", str(Path(usage_dir.name) / "usage.db"))
    to_stdout = args.json == "-"
    results: list = []
    started = time.perf_counter()
    for name in args.names or list(MEASUREMENTS):
        fn = MEASUREMENTS[name]
        if args.profile and name in PROFILED:
            fn = functools.partial(fn, with_profile=True)
        t0 = time.perf_counter()
        result: Result = fn(scale)
        if not to_stdout:
            print(f"{name}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        results.append(result)
    elapsed = time.perf_counter() - started
    if args.json:
        text = json.dumps(as_json(results, elapsed), indent=2, default=str)
        if to_stdout:
            print(text)
            return 0
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(table(results))
    print(f"\n{len(results)} measurement(s) in {elapsed:.0f} s on {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}{' (--quick: smoke test only)' if args.quick else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
