"""startup and cli: fresh interpreters, timed against `python -c pass` in the same run."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from timing import PYTHON, Result, Row, Scale, bench_env, lockfile_text, median, run_ms

HEAVY = ("requests", "urllib3", "cattrs", "pluggy", "click", "backoff", "asyncio", "importlib.metadata",
         "tomllib", "tomli_w", "attrs")
IMPORTS = {
    "import llmring": "import llmring",
    "from llmring import Ring, LLMRequest, Message": "from llmring import Ring, LLMRequest, Message",
}
CLI_CODE = "import sys; sys.argv = ['llmring', 'aliases']; from llmring.cli import main; main()"


def timed_commands(commands: dict, reps: int, env: dict, cwd: str = None) -> dict:
    """name -> median ms; commands run round-robin so drift touches all of them alike."""
    for argv in commands.values():  # warm: .pyc files written, page cache filled
        run_ms(argv, env, cwd)
    times: dict = {name: [] for name in commands}
    for _ in range(reps):
        for name, argv in commands.items():
            times[name].append(run_ms(argv, env, cwd))
    return {name: median(t) for name, t in times.items()}


def new_modules(code: str, env: dict, cwd: str = None, runs: int = 3) -> tuple:
    """(modules, ms): what `code` loads in a fresh interpreter beyond what start-up already
    loaded, and how long it takes in-process (the fastest of a few runs)."""
    probe = ("import sys, time\n_b = set(sys.modules)\n_t = time.perf_counter()\n"
             f"try:\n    exec({code!r})\nexcept SystemExit:\n    pass\n"
             "_t = time.perf_counter() - _t\n"
             "sys.stderr.write(f'\\n@{_t * 1000} ' + ' '.join(sorted(set(sys.modules) - _b)) + '\\n')")
    best, modules = float("inf"), []
    for _ in range(runs):
        out = subprocess.run([PYTHON, "-c", probe], env=env, cwd=cwd, capture_output=True, text=True, check=True)
        ms, *modules = out.stderr.rsplit("\n@", 1)[1].split()
        best = min(best, float(ms))
    return modules, best


def heavy_loaded(modules: list) -> list:
    loaded = set(modules)
    return [h for h in HEAVY if h in loaded]


def import_costs(code: str, env: dict, cwd: str = None, runs: int = 3) -> dict:
    """Where the import time goes, from `python -X importtime` (the smallest of a few runs,
    to drop noise): {"external": [(module, ms)], "own": [(llmring module, ms)]}, costliest
    first. External modules are those llmring's code imports directly (with everything they
    import); an llmring module's own time excludes its imports (mostly: defining classes)."""
    best: dict = {}
    for _ in range(runs):
        out = subprocess.run([PYTHON, "-X", "importtime", "-c", code], env=env, cwd=cwd,
                             capture_output=True, text=True)
        for key, us in _import_times(out.stderr).items():
            best[key] = min(best.get(key, us), us)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    return {kind: [(name, us / 1000) for (k, name), us in ranked if k == kind] for kind in ("external", "own")}


def _import_times(stderr: str) -> dict:
    """("external", module) -> cumulative us for each module imported straight from an
    llmring module; ("own", module) -> own us of each llmring module. -X importtime prints
    a module after its imports, which are one indent deeper."""
    pending: dict = {}  # depth -> [(name, own us, cumulative us, children)]
    line_rx = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
    for line in stderr.splitlines():
        m = line_rx.match(line)
        if m:
            depth = len(m.group(3)) // 2
            node = (m.group(4), int(m.group(1)), int(m.group(2)), pending.pop(depth + 1, []))
            pending.setdefault(depth, []).append(node)
    found: dict = {}

    def walk(node: tuple) -> None:
        name, own, _, children = node
        ours = name.startswith("llmring")
        if ours:
            found["own", name] = own
        for child in children:
            if ours and not child[0].startswith("llmring"):
                found["external", child[0]] = child[2]
            walk(child)

    roots = pending.get(0, [])
    first = next((i for i, node in enumerate(roots) if node[0].startswith("llmring")), len(roots))
    for node in roots[first:]:
        # Modules imported through importlib.import_module (llmring's lazy attributes) get no
        # line of their own, so their imports show up as roots after llmring's: count them too.
        if not node[0].startswith("llmring"):
            found["external", node[0]] = node[2]
        walk(node)
    return found


def cost_lines(costs: dict) -> list:
    own_total = sum(ms for _, ms in costs["own"])
    return ["    imports from llmring's code: " + (", ".join(f"{n} {ms:.1f} ms" for n, ms in costs["external"][:7])
                                                   or "none"),
            f"    llmring's own modules: {own_total:.1f} ms, most in "
            + ", ".join(f"{n} {ms:.1f}" for n, ms in costs["own"][:4])]


def measure_startup(scale: Scale) -> Result:
    env = bench_env()
    commands = {"python -c pass": [PYTHON, "-c", "pass"]}
    commands.update({title: [PYTHON, "-c", code] for title, code in IMPORTS.items()})
    ms = timed_commands(commands, scale(15, 3), env)
    base = ms["python -c pass"]
    result = Result("startup")
    for title, code in IMPORTS.items():
        result.rows.append(Row(title, ms[title], base, "ms", f"+{ms[title] - base:.1f} ms over python -c pass"))
        modules, inside = new_modules(code, env)
        heavy = heavy_loaded(modules)
        result.data[title] = {"ms": ms[title], "in_process_ms": inside, "modules": len(modules), "heavy": heavy}
        result.details.append(f"{title}: {inside:.1f} ms in-process, {len(modules)} modules; heavy ones: "
                              f"{', '.join(heavy) or 'none'}")
        costs = import_costs(code, env)
        result.data[title]["import_ms"] = costs
        result.details += cost_lines(costs)
    result.data["python -c pass"] = base
    return result


def measure_cli(scale: Scale) -> Result:
    env = bench_env()
    script = Path(PYTHON).with_name("llmring")
    cli = [str(script), "aliases"] if script.exists() else [PYTHON, "-c", CLI_CODE]
    with tempfile.TemporaryDirectory(prefix="llmring-bench-") as folder:
        aliases = {"summarizer": ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"],
                   "coder": ["anthropic:claude-sonnet-4-5"], "fast": ["google:gemini-2.5-flash"]}
        Path(folder, "llmring.lock").write_text(lockfile_text(aliases, ("default", "dev")), encoding="utf-8")
        ms = timed_commands({"pass": [PYTHON, "-c", "pass"], "cli": cli}, scale(15, 3), env, folder)
        modules, inside = new_modules(CLI_CODE, env, folder)
        costs = import_costs(CLI_CODE, env, folder)
    result = Result("cli")
    result.rows.append(Row("llmring aliases", ms["cli"], ms["pass"], "ms",
                           f"+{ms['cli'] - ms['pass']:.1f} ms over python -c pass"))
    heavy = heavy_loaded(modules)
    result.details.append(f"`llmring aliases`: {inside:.1f} ms in-process, {len(modules)} modules; heavy ones: "
                          f"{', '.join(heavy) or 'none'}")
    result.details += cost_lines(costs)
    result.data = {"command": cli, "heavy": heavy, "import_ms": costs}
    return result
