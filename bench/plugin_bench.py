"""plugins: the first `registry.load()` (pluggy's loader, each plugin checked and collected in
its own guard) against the plainest pluggy code that does the job without guards, each in a
fresh interpreter (imports are cached per process); and the one-name-per-call pass that runs
after a plugin fails, to show what the one-walk path saves."""

from __future__ import annotations

import subprocess

from timing import PYTHON, Result, Row, Scale, bench_env, median

SETUP = "import time, pluggy, importlib.metadata\nfrom llmring import hookspecs, plugins\n"
TIMED = "t = time.perf_counter()\n{}\nprint((time.perf_counter() - t) * 1000)\n"
CODE = {
    "registry.load()": "plugins.registry.load()",
    "one name per call": "plugins.PluginRegistry()._load_one_by_one(plugins._entry_points())",
    # The baseline: pluggy loads every entry point, one hook call collects every provider.
    "plain pluggy": ("pm = pluggy.PluginManager('llmring'); pm.add_hookspecs(hookspecs)\n"
                     "pm.load_setuptools_entrypoints('llmring'); found = {}\n"
                     "pm.hook.register_providers(register=found.__setitem__)"),
}


def measure_plugins(scale: Scale) -> Result:
    env = bench_env()
    times: dict = {name: [] for name in CODE}
    for _ in range(scale(15, 2)):  # round-robin, so drift touches every side alike
        for name, code in CODE.items():
            out = subprocess.run([PYTHON, "-c", SETUP + TIMED.format(code)], env=env, capture_output=True,
                                 text=True, check=True)
            times[name].append(float(out.stdout.split()[-1]))
    ms = {name: median(t) for name, t in times.items()}
    base = ms["plain pluggy"]
    result = Result("plugins", data={"ms": ms, "distributions": _count_distributions(env)})
    result.rows.append(Row("first registry.load()", ms["registry.load()"], base, "ms",
                           "guards per plugin against plain pluggy; aim: close to 1"))
    result.rows.append(Row("one entry-point name per call", ms["one name per call"], base, "ms",
                           "the path after a plugin fails: a walk of the installed packages per name"))
    result.details.append(f"{result.data['distributions']} installed distributions")
    return result


def _count_distributions(env: dict) -> int:
    code = "import importlib.metadata as m; print(len(list(m.distributions())))"
    return int(subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
