"""Evidence for issue 10 item 4: llmring's own comment-keeping writer or tomlkit?

    .venv/bin/pip install tomlkit   # only for this comparison: llmring does not depend on it
    .venv/bin/python bench/toml_writer_bench.py

Part 1, speed: one `bind` on a 5,000-alias x 5-profile lockfile. llmring's side is the whole
`lockfile.edit` (lock, read, validate, rewrite, validate the result, fsync, rename); tomlkit's
side is only tomlkit.parse + the change + tomlkit.dumps (no validation, no I/O), so the
comparison favours tomlkit. Baseline for both: tomllib.loads of the same text.

Part 2, the comment cases of issue 9 item 13 (and CRLF, a byte-order mark): the same edit
done by each, then: does every comment of the original survive?
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lockfile_bench import PROFILES, big_aliases  # noqa: E402
from timing import lockfile_text  # noqa: E402

CASES = {
    "multi-line description": ('version = "1.0"\n\n[profiles.default]\nname = "default"\n\n# writes summaries\n'
                               '[[profiles.default.bindings]]\nalias = "s"\nmodels = ["mock:echo"]  # cheap\n'
                               'description = """\nSummaries.\n"""\n', ("bind", "new", ["mock:echo"])),
    "nan in the file": ('version = "1.0"\n\n[metadata]\nscore = nan  # not measured yet\n\n[profiles.default]\n'
                        'name = "default"\n\n# the one alias\n[[profiles.default.bindings]]\nalias = "s"\n'
                        'models = ["mock:echo"]\n', ("bind", "new", ["mock:echo"])),
    "comment after a blank line, binding above rebound": (
        'version = "1.0"\n\n[profiles.default]\nname = "default"\n\n[[profiles.default.bindings]]\nalias = "a"\n'
        'models = ["mock:echo"]\n\n# --- section ---\n\n[[profiles.default.bindings]]\nalias = "b"\n'
        'models = ["mock:echo"]\n', ("bind", "a", ["mock:echo2"])),
    "comment after a blank line, binding above unbound": (
        'version = "1.0"\n\n[profiles.default]\nname = "default"\n\n[[profiles.default.bindings]]\nalias = "a"\n'
        'models = ["mock:echo"]\n\n# --- section ---\n\n[[profiles.default.bindings]]\nalias = "b"\n'
        'models = ["mock:echo"]\n', ("unbind", "a", None)),
    "end-of-file comment, last binding unbound": (
        'version = "1.0"\n\n[profiles.default]\nname = "default"\n\n[[profiles.default.bindings]]\nalias = "a"\n'
        'models = ["mock:echo"]\n\n[[profiles.default.bindings]]\nalias = "b"\nmodels = ["mock:echo"]\n\n'
        '# end of file\n', ("unbind", "b", None)),
}


def llmring_edit(path: Path, op: tuple) -> None:
    from llmring import lockfile as lf_mod

    action, alias, models = op

    def change(lf: object) -> None:
        profile = lf.profile("default")
        if action == "bind":
            profile.rebind(alias, models)
        else:
            profile.unbind(alias)

    lf_mod.edit(path, change)


def tomlkit_edit(text: str, op: tuple, profile: str = "default") -> str:
    import tomlkit

    action, alias, models = op
    doc = tomlkit.parse(text)
    bindings = doc["profiles"][profile]["bindings"]
    at = next((i for i, t in enumerate(bindings) if t["alias"] == alias), None)
    if action == "unbind":
        del bindings[at]
    elif at is None:
        table = tomlkit.table()
        table["alias"], table["models"] = alias, models
        bindings.append(table)
    else:
        bindings[at]["models"] = models
    return tomlkit.dumps(doc)


def comments(text: str) -> list:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def speed() -> None:
    import tomllib

    aliases = big_aliases(5000)
    text = lockfile_text(aliases, PROFILES)
    op = ("bind", "alias-00000", ["openai:gpt-4o"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llmring.lock"
        path.write_text(text)
        runs = {"tomllib.loads": lambda: tomllib.loads(text), "llmring edit": lambda: llmring_edit(path, op),
                "tomlkit parse+dumps": lambda: tomlkit_edit(text, op, "dev")}
        best = {}
        for _ in range(3):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    base = best["tomllib.loads"]
    print(f"speed: one bind on {len(text) / 1e6:.1f} MB ({len(aliases)} aliases x {len(PROFILES)} profiles), best of 3")
    for name, seconds in best.items():
        print(f"  {name:22} {seconds * 1000:8.0f} ms  {seconds / base:5.1f}x tomllib.loads")


def comment_cases() -> None:
    print("comments kept (all of the original's):")
    with tempfile.TemporaryDirectory() as tmp:
        cases = dict(CASES)
        first = CASES["multi-line description"]
        cases["CRLF line ends"] = (first[0].replace("\n", "\r\n"), first[1])
        cases["byte-order mark"] = ("\ufeff" + first[0], first[1])
        for name, (text, op) in cases.items():
            path = Path(tmp) / "llmring.lock"
            path.write_bytes(text.encode())
            llmring_edit(path, op)
            ours = path.read_bytes().decode()
            try:
                theirs = tomlkit_edit(text, op)
                kit = "yes" if set(comments(text)) <= set(comments(theirs)) else "NO"
                kit += "" if ("\r\n" in theirs) == ("\r\n" in text) else " (line ends changed)"
            except Exception as e:  # noqa: BLE001 - a case tomlkit cannot do is a result
                kit = f"fails: {type(e).__name__}: {str(e)[:60]}"
            mine = "yes" if set(comments(text)) <= set(comments(ours)) else "NO"
            print(f"  {name:52} llmring: {mine:4} tomlkit: {kit}")


if __name__ == "__main__":
    comment_cases()
    speed()
