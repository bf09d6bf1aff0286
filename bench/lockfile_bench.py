"""lockfile: reading, resolving and writing a big lockfile, against tomllib / tomli_w on the same text."""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from timing import Result, Row, Scale, lockfile_text, median, profile, profile_lines

PROFILES = ("default", "dev", "staging", "prod", "eu")
MODELS = ("openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "google:gemini-2.5-flash",
          "ollama:llama3:8b")


def big_aliases(count: int) -> dict:
    """alias -> 1 to 3 models, varied so the file looks like a real one, only longer."""
    return {f"alias-{i:05d}": [MODELS[(i + j) % len(MODELS)] for j in range(1 + i % 3)] for i in range(count)}


def best_of(fn: Callable[[], object], runs: int) -> tuple:
    """(median seconds, last result); runs stop early once they have taken a few seconds."""
    times, value = [], None
    budget = time.perf_counter() + 3.0
    for _ in range(runs):
        value = None  # each run pays for its own garbage, not for the run before's
        gc.collect()
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
        if time.perf_counter() > budget:
            break
    return median(times), value


def resolve_all(path: Path, aliases: dict) -> tuple:
    """Seconds for Ring(path) + resolving every alias in every profile, then for a second
    (cached) pass over the same Ring."""
    from llmring import Ring

    start = time.perf_counter()
    ring = Ring(lockfile_path=path)
    ring.lockfile  # noqa: B018 - parse before timing the lookups
    parsed = time.perf_counter()
    for profile_name in PROFILES:
        for alias in aliases:
            ring.resolve(alias, profile_name)
    first = time.perf_counter()
    for profile_name in PROFILES:
        for alias in aliases:
            ring.resolve(alias, profile_name)
    return parsed - start, first - parsed, time.perf_counter() - first


def paired(runs: int, *jobs: Callable[[], object]) -> list:
    """Each job's seconds over `runs` rounds, the order turned round each round (a b c, c b a,
    ...) with garbage collected before each run: drift on a shared machine falls on all alike.
    What a job returns is dropped at once, so no run pays for the one before."""
    out: list = [[] for _ in jobs]
    for i in range(runs):
        order = list(enumerate(jobs)) if i % 2 == 0 else list(enumerate(jobs))[::-1]
        for k, job in order:
            gc.collect()
            start = time.perf_counter()
            job()
            out[k].append(time.perf_counter() - start)
    return out


def toml_parser() -> tuple:
    """(tomli.loads, "tomli 2.x, compiled"): the parser lockfile.parse uses, and what it is."""
    import importlib.metadata

    import tomli
    import tomli._parser

    compiled = not tomli._parser.__file__.endswith(".py")
    version = importlib.metadata.version("tomli")
    return tomli.loads, f"tomli {version}, {'compiled (mypyc)' if compiled else 'pure Python'}"


def per_resolve_us(folder: Path, count: int, runs: int) -> tuple:
    """Microseconds per resolve (first, cached) on a lockfile of `count` aliases per profile."""
    aliases = big_aliases(count)
    path = folder / f"small-{count}.lock"
    path.write_text(lockfile_text(aliases, PROFILES), encoding="utf-8")
    timings = [resolve_all(path, aliases) for _ in range(runs)]
    n = count * len(PROFILES)
    return median([t[1] for t in timings]) / n * 1e6, median([t[2] for t in timings]) / n * 1e6


def bind_many_profiles(folder: Path, count: int) -> tuple:
    """(seconds for one bind, seconds for tomllib.loads, count) on a file of `count` profiles."""
    import tomllib

    from llmring import Ring

    text = 'version = "1.0"\n' + "".join(
        f'\n[profiles.p{i}]\nname = "p{i}"\n\n[[profiles.p{i}.bindings]]\nalias = "a"\nmodels = ["mock:echo"]\n'
        for i in range(count))
    path = folder / "profiles.lock"
    path.write_text(text, encoding="utf-8")
    base_s, _ = best_of(lambda: tomllib.loads(text), 3)
    start = time.perf_counter()
    Ring(lockfile_path=path).bind_alias("a", "mock:echo2", profile=f"p{count - 1}")
    return time.perf_counter() - start, base_s, count


def pinned(lf: object) -> str:
    """The lockfile with every binding pinned to the bundled registry, as TOML."""
    from llmring import pins, registry

    pins.pin(lf, registry.load())
    return lf.to_toml()


def measure_lockfile(scale: Scale, with_profile: bool = False) -> Result:
    import tomli_w
    import tomllib

    from llmring import Ring
    from llmring import lockfile as lf_mod

    count = scale(5000, 200)
    small = 50
    aliases = big_aliases(count)
    text = lockfile_text(aliases, PROFILES)
    resolves = count * len(PROFILES)
    result = Result("lockfile")
    with tempfile.TemporaryDirectory(prefix="llmring-bench-") as tmp:
        folder = Path(tmp)
        path = folder / "llmring.lock"
        path.write_text(text, encoding="utf-8")
        tomli_loads, parser = toml_parser()
        # The fastest of 5 alternated runs each: the cost without the noise of a shared machine.
        # Nothing big is alive meanwhile: a full collection would walk it, in llmring's runs only.
        ring_parts: list = []
        toml_s, tomli_s, parse_s, _ = (min(runs) for runs in paired(
            5, lambda: tomllib.loads(text), lambda: tomli_loads(text), lambda: lf_mod.parse(text, path),
            lambda: ring_parts.append(resolve_all(path, aliases))))
        load_s, first_s, cached_s = min(ring_parts, key=lambda t: t[0] + t[1])
        data = tomllib.loads(text)
        lf = lf_mod.parse(text, path)
        small_first, small_cached = per_resolve_us(folder, small, 20)
        dump_base_s, _ = best_of(lambda: tomli_w.dumps(data), 3)
        dump_s, dumped = best_of(lambda: lf_mod.dumps(lf), 3)
        start = time.perf_counter()
        Ring(lockfile_path=path).bind_alias("alias-00000", "openai:gpt-4o", profile="dev")
        bind_s = time.perf_counter() - start
        many_s, many_base_s, many = bind_many_profiles(folder, scale(8000, 200))
        pin_s, pinned_text = best_of(lambda: pinned(lf_mod.parse(text, path)), 3)
        pinned_toml_s, _ = best_of(lambda: tomllib.loads(pinned_text), 3)
        pinned_parse_s, _ = best_of(lambda: lf_mod.parse(pinned_text, path), 3)
        if with_profile:
            report = profile(lambda: resolve_all(path, aliases), 1)
            result.details += profile_lines("Ring(path) + resolving every alias twice", report)
            result.data["profile"] = report

    ms = 1000
    result.rows += [
        Row("parse (lockfile.parse)", parse_s * ms, toml_s * ms, "ms", "baseline: tomllib.loads of the same text"),
        Row("load + resolve all", (load_s + first_s) * ms, toml_s * ms, "ms",
            f"Ring(path) + {resolves} resolve() calls; baseline: tomllib.loads"),
        Row("load + resolve all, vs tomli", (load_s + first_s) * ms, tomli_s * ms, "ms",
            "the same; baseline: tomli.loads, the parser llmring reads with (its own cost on top)"),
        Row("resolve, first time", first_s / resolves * 1e6, small_first, "us",
            f"per alias; baseline: the same on a {small}-alias file (1.0 = lookup cost independent of size)"),
        Row("resolve, cached", cached_s / resolves * 1e6, small_cached, "us",
            f"per alias, second pass; baseline: the same on a {small}-alias file"),
        Row("write (lockfile.dumps)", dump_s * ms, dump_base_s * ms, "ms", "baseline: tomli_w.dumps of the same data"),
        Row("bind one alias", bind_s * ms, (toml_s + dump_base_s) * ms, "ms",
            "Ring.bind_alias (locked read-modify-validate-write); baseline: tomllib.loads + tomli_w.dumps"),
        Row(f"bind, {many} profiles", many_s * ms, many_base_s * ms, "ms",
            "one alias in each profile (was quadratic in profiles); baseline: tomllib.loads of the same text"),
        Row("pin every binding", pin_s * ms, parse_s * ms, "ms",
            "lockfile.parse + pins.pin + lockfile.dumps; baseline: lockfile.parse of the unpinned text"),
        Row("parse, every binding pinned", pinned_parse_s * ms, pinned_toml_s * ms, "ms",
            f"{len(pinned_text) / 1e6:.1f} MB; baseline: tomllib.loads of the same text"),
    ]
    result.details.append(f"{count} aliases x {len(PROFILES)} profiles: {len(text) / 1e6:.1f} MB of TOML, "
                          f"{resolves} bindings; llmring writes it back as {len(dumped) / 1e6:.1f} MB "
                          f"(Python {sys.version.split()[0]}); llmring parses with {parser}")
    return result
