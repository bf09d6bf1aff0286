"""What every measurement shares: results, timing, subprocesses, a test lockfile, profiling."""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

PYTHON = sys.executable
API_KEY = "sk-bench-0123456789abcdef"
ALIAS = "bench"
MODEL = "gpt-4o-mini"
PROMPT = "Say hello in five words."


@dataclass
class Row:
    """One line of the table: llmring's number against its baseline's, measured in the same run."""

    metric: str
    value: float
    baseline: Optional[float]
    unit: str
    note: str = ""
    paired_ratio: Optional[float] = None  # when set, the ratio: median of side-by-side block ratios

    @property
    def ratio(self) -> Optional[float]:
        if self.paired_ratio is not None:
            return self.paired_ratio
        return self.value / self.baseline if self.baseline else None


@dataclass
class Result:
    name: str
    rows: list = field(default_factory=list)
    details: list = field(default_factory=list)  # lines printed under the table
    data: dict = field(default_factory=dict)  # anything else worth keeping in --json


@dataclass
class Scale:
    """Repetition counts; --quick divides them for a smoke run."""

    factor: float = 1.0

    def __call__(self, n: int, least: int = 1) -> int:
        return max(least, int(n * self.factor))


def median(values: list) -> float:
    return statistics.median(values)


def interleaved(a: Callable[[], object], b: Callable[[], object], calls: int, blocks: int) -> tuple:
    """Time `calls` runs of a and of b in alternating blocks (a b, b a, ...) so drift
    (CPU frequency, the other process, the allocator) falls on both alike. Returns each
    side's per-block wall seconds, then each side's per-block CPU seconds of this process
    (which other programs' load on the machine barely touches), then calls per block."""
    per_block = max(1, calls // blocks)
    wall: dict = {a: [], b: []}
    cpu: dict = {a: [], b: []}
    for i in range(blocks):
        for fn in ((a, b) if i % 2 == 0 else (b, a)):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(per_block):
                fn()
            wall[fn].append(time.perf_counter() - start)
            cpu[fn].append(time.process_time() - start_cpu)
    return wall[a], wall[b], cpu[a], cpu[b], per_block


def bench_env(**extra: str) -> dict:
    """This environment without anything that would steer llmring (LLMRING_*, provider keys)
    or make start-up unlike a user's: PYTHONDONTWRITEBYTECODE would recompile every module
    in every run, PYTHONPROFILEIMPORTTIME / PYTHONTRACEMALLOC would slow it down."""
    drop = ("LLMRING_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "OLLAMA_", "PYTHONDONTWRITEBYTECODE",
            "PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if "LLMRING_USAGE_DB" in os.environ:  # the run's own usage log (run.py), never the user's
        env["LLMRING_USAGE_DB"] = os.environ["LLMRING_USAGE_DB"]
    env.update(extra)
    return env


def run_ms(argv: list, env: dict, cwd: Optional[str] = None) -> float:
    """Wall milliseconds of one subprocess run, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return ms


def lockfile_text(aliases: dict, profiles: tuple = ("default",)) -> str:
    """A lockfile binding each alias (-> list of models) in every profile."""
    out = ['version = "1.0"', 'default_profile = "default"', ""]
    for profile in profiles:
        out += [f"[profiles.{profile}]", f'name = "{profile}"', ""]
        for alias, models in aliases.items():
            refs = ", ".join(f'"{m}"' for m in models)
            out += [f"[[profiles.{profile}.bindings]]", f'alias = "{alias}"', f"models = [{refs}]", ""]
    return "\n".join(out)


def write_bench_lockfile(folder: Path) -> Path:
    """The lockfile the HTTP measurements use: alias `bench` -> openai:gpt-4o-mini."""
    path = folder / "llmring.lock"
    path.write_text(lockfile_text({ALIAS: [f"openai:{MODEL}"]}), encoding="utf-8")
    return path


@contextmanager
def openai_env(url: str) -> Iterator[None]:
    """Point llmring's OpenAI provider at the bench server for the duration."""
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    os.environ.update(OPENAI_BASE_URL=f"{url}/v1", OPENAI_API_KEY=API_KEY)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def raw_request() -> tuple:
    """The baseline's body and headers: what llmring sends for ring.chat("bench", PROMPT)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    return body, headers


# -- profiling ---------------------------------------------------------------------------------

_GROUPS = (("/llmring_providers/", "llmring_providers"), ("/llmring/", "llmring"), ("/requests/", "requests"),
           ("/urllib3/", "urllib3"), ("/http/", "http.client"), ("/json/", "json"), ("/socket.py", "socket"),
           ("attrs generated", "attrs"), ("/attr/", "attrs"), ("/email/", "email"), ("/threading.py", "threading"),
           ("/queue.py", "queue"), ("/selectors.py", "selectors"))


def _group(filename: str, name: str) -> str:
    if filename == "~":  # a builtin: attribute it by what it is
        if "socket" in name or "recv" in name or "send" in name:
            return "socket (C)"
        return "builtins (C)"
    return next((label for key, label in _GROUPS if key in filename), "other")


def profile(fn: Callable[[], object], runs: int, top: int = 15) -> dict:
    """cProfile `runs` calls of fn: the functions with the most own time, and own time per package."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        fn()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, func) -> (cc, nc, tottime, cumtime, callers)
    total = sum(s[2] for s in stats.values()) or 1e-12
    groups: dict = {}
    for (filename, _, name), s in stats.items():
        key = _group(filename, name)
        groups[key] = groups.get(key, 0.0) + s[2]
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return {
        "runs": runs,
        "us_per_run": total / runs * 1e6,
        "by_package": {k: round(v / total * 100, 1) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "top": [{"function": _where(key), "calls_per_run": round(s[1] / runs, 2),
                 "own_pct": round(s[2] / total * 100, 1), "cum_pct": round(s[3] / total * 100, 1)}
                for key, s in rows],
    }


def _where(key: tuple) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    parts = Path(filename).parts
    for anchor in ("llmring", "llmring_providers", "site-packages", "python3.11"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            short = "/".join(parts[i + (anchor in ("site-packages", "python3.11")):])
            return f"{short}:{line} {name}"
    return f"{Path(filename).name}:{line} {name}"


def profile_lines(title: str, report: dict) -> list:
    lines = [f"profile of {title}: {report['us_per_run']:.1f} us per call under cProfile; own time by package: "
             + ", ".join(f"{k} {v}%" for k, v in report["by_package"].items() if v >= 0.5)]
    for r in report["top"]:
        lines.append(f"    {r['own_pct']:5.1f}% own {r['cum_pct']:5.1f}% cum  {r['calls_per_run']:>8g}/call  "
                     f"{r['function']}")
    return lines
