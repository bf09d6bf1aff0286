"""`llmring diff` and llmring.lockdiff: two profiles, or two versions of a lockfile (one of them
from stdin, as `git show HEAD~1:llmring.lock` gives it). Exit 0 equal, 1 different, 2 error."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import runner

from llmring import lockdiff
from llmring import lockfile as lf_mod
from llmring.cli import cli
from llmring.exceptions import LockfileError

LLMRING = Path(sys.executable).parent / "llmring"

REGISTRY = {"version": "2026-12-01", "models": [
    {"provider": "openai", "name": "cheap", "input_price": 0.15, "output_price": 0.6},
    {"provider": "openai", "name": "big", "input_price": 2.5, "output_price": 10.0},
]}

OLD = '''version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:cheap", "mock:echo"]

[[profiles.default.bindings]]
alias = "fast"
models = ["mock:fast"]

[[profiles.default.bindings]]
alias = "gone"
models = ["mock:gone"]

[profiles.staging]
name = "staging"

[[profiles.staging.bindings]]
alias = "writer"
models = ["mock:a", "mock:b", "mock:c"]
description = "Drafts"

[profiles.prod]
name = "prod"
extends = "staging"
'''

NEW = '''version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:big", "mock:echo", "mock:new"]

[[profiles.default.bindings]]
alias = "fast"
models = ["mock:fast"]

[[profiles.default.bindings]]
alias = "added"
models = ["openai:cheap"]

[profiles.staging]
name = "staging"

[[profiles.staging.bindings]]
alias = "writer"
models = ["mock:c", "mock:a", "mock:b"]
description = "Drafts"
requires = ["tools"]
params = { temperature = 0.3 }

[profiles.prod]
name = "prod"
extends = "staging"

[[profiles.prod.bindings]]
alias = "fast"
models = ["mock:fast"]
'''


@pytest.fixture
def files(tmp_path):
    cache = tmp_path / ".llmring-cache"
    cache.mkdir()
    (cache / "registry.json").write_text(json.dumps(REGISTRY))
    (tmp_path / "old.lock").write_text(OLD)
    (tmp_path / "llmring.lock").write_text(NEW)
    return tmp_path / "old.lock", tmp_path / "llmring.lock"


def run(*args, stdin=None):
    return runner().invoke(cli, ["diff", *args], input=stdin)


def test_two_profiles_are_compared_as_they_resolve(files):
    result = run("--profile", "default", "--profile", "prod")
    assert result.exit_code == 1, result.stderr
    # prod binds fast itself, to the same models as default: comparing profiles, no news
    assert result.stdout.splitlines() == [
        "--- default", "+++ prod", "profiles default → prod:",
        "+ writer → mock:c, mock:a, mock:b  [from staging]"]


def test_a_profile_that_only_inherits_equals_its_parent(files):
    result = run("-p", "staging", "-p", "prod")
    assert (result.exit_code, result.stdout) == (0, "No differences between staging and prod.\n")
    assert json.loads(run("-p", "staging", "-p", "prod", "--json").stdout) == {
        "old": "staging", "new": "prod", "default_profile": None, "profiles": [], "equal": True}


def test_two_lockfiles_alias_by_alias(files):
    old, new = files
    result = run(str(old), str(new))
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"--- {old}", f"+++ {new}"]
    default = lines[lines.index("profile default:") + 1:lines.index("profile staging:")]
    assert default == [
        "+ added → openai:cheap  [from default]  (openai:cheap $0.15/$0.60 per 1M tokens in/out)",
        "- gone (was mock:gone)  [from default]",
        "~ summarizer",
        "    models: openai:cheap, mock:echo → openai:big, mock:echo, mock:new",
        "    + openai:big", "    + mock:new", "    - openai:cheap",
        "    price per 1M tokens (in/out): openai:cheap $0.15/$0.60 → openai:big $2.50/$10.00"]
    staging = lines[lines.index("profile staging:") + 1:lines.index("profile prod:")]
    assert staging == [
        "~ writer", "    models: mock:a, mock:b, mock:c → mock:c, mock:a, mock:b",
        "    reordered: the models both have are tried in another order",
        '    params: (none) → {"temperature": 0.3}', '    requires: (none) → ["tools"]']


def test_the_python_api_and_json_say_the_same(files):
    old, new = files
    d = lockdiff.compare_files(lf_mod.read(old), lf_mod.read(new), "old", "new")
    assert not d.equal and [p.new for p in d.profiles] == ["default", "staging", "prod"]
    # each change under the profile that holds it: prod lists only what it now binds itself
    fast, = d.profiles[2].aliases  # the same models, now bound in prod itself
    assert fast.status == "changed" and (fast.old_origin, fast.new_origin) == ("default", "prod")
    writer, = d.profiles[1].aliases
    assert writer.new_origin == "staging" and writer.fields["requires"] == [[], ["tools"]]
    prod = {c.alias: c for c in lockdiff.compare_files(lf_mod.read(old), lf_mod.read(new), "old", "new",
                                                       profile="prod").profiles[0].aliases}
    assert sorted(prod) == ["added", "fast", "gone", "summarizer", "writer"]  # one profile: all it resolves
    summarizer = prod["summarizer"]
    assert (summarizer.old_price, summarizer.new_price) == (
        lockdiff.Price("openai:cheap", 0.15, 0.6), lockdiff.Price("openai:big", 2.5, 10.0))
    data = json.loads(run(str(old), str(new), "--json").stdout)
    assert data == {**lockdiff.compare_files(lf_mod.read(old), lf_mod.read(new), str(old), str(new)).to_dict()}
    assert data["equal"] is False


def test_one_profile_of_two_lockfiles(files):
    old, new = files
    result = run(str(old), str(new), "--profile", "staging")
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if line.startswith("profile")] == ["profile staging:"]


def test_a_price_unknown_on_either_side_is_left_out_and_an_unchanged_one_too(tmp_path):
    cache = tmp_path / ".llmring-cache"
    cache.mkdir()
    (cache / "registry.json").write_text(json.dumps(REGISTRY))
    a = _lock(tmp_path / "a.lock", {"default": {"x": ["mock:one"], "y": ["openai:cheap"]}})
    b = _lock(tmp_path / "b.lock", {"default": {"x": ["mock:two"], "y": ["openai:cheap", "mock:z"]}})
    out = run(str(a), str(b)).stdout
    assert "price per 1M" not in out and "  ~ y" not in out and "    + mock:z" in out
    d = lockdiff.compare_files(lf_mod.read(a), lf_mod.read(b), "a", "b")
    assert all(c.old_price is None and c.new_price is None for c in d.profiles[0].aliases)


def test_extends_default_profile_and_whole_profiles_are_reported(tmp_path):
    a = _lock(tmp_path / "a.lock", {"default": {"x": ["mock:x"]}, "base": {}, "prod": {}}, extends={"prod": "base"})
    b = _lock(tmp_path / "b.lock", {"default": {"x": ["mock:x"]}, "base": {}, "new": {"y": ["mock:y"]}},
              default_profile="base")
    result = run(str(a), str(b))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "default_profile: default → base" in lines
    assert lines[lines.index("profile prod:") + 1:lines.index("profile prod:") + 3] == [
        "  (the profile is removed)", "- x (was mock:x)  [from default]"]
    assert "  (the profile is added)" in lines and "+ y → mock:y  [from new]" in lines
    c = _lock(tmp_path / "c.lock", {"default": {"x": ["mock:x"]}, "base": {}, "prod": {}})
    moved = run(str(a), str(c)).stdout.splitlines()
    assert moved[2:] == ["profile prod:", "  extends: base → (nothing)"]


def test_equal_files_exit_0(files):
    old, _ = files
    copy = old.parent / "copy.lock"
    copy.write_text(OLD.replace('name = "prod"', 'name = "prod"  # a comment changes nothing'))
    result = run(str(old), str(copy))
    assert (result.exit_code, result.stdout) == (0, f"No differences between {old} and {copy}.\n")


def test_stdin_is_read_for_a_dash(files):
    old, new = files
    result = run("-", str(new), stdin=old.read_bytes())
    assert result.exit_code == 1 and result.stdout.splitlines()[0] == "--- -"
    assert run(str(new), "-", stdin=new.read_bytes()).exit_code == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_show_piped_into_diff_as_a_review_would(files, tmp_path):
    old, new = files
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    for text in (OLD, NEW):
        (repo / "llmring.lock").write_text(text)
        subprocess.run([*git, "add", "llmring.lock"], check=True, env=env)
        subprocess.run([*git, "commit", "-qm", "lock"], check=True, env=env)
    pipe = f"git show HEAD~1:llmring.lock | {LLMRING} diff - llmring.lock"
    done = subprocess.run(pipe, shell=True, cwd=repo, capture_output=True, text=True, env=env)
    assert done.returncode == 1, done.stderr
    assert "~ summarizer" in done.stdout and "- gone (was mock:gone)  [from default]" in done.stdout
    same = subprocess.run(f"git show HEAD:llmring.lock | {LLMRING} diff - llmring.lock", shell=True, cwd=repo,
                          capture_output=True, text=True, env=env)
    assert (same.returncode, same.stdout) == (0, "No differences between - and llmring.lock.\n")


@pytest.mark.parametrize("args, stdin, message", [
    (["missing.lock", "llmring.lock"], None,
     "Error: missing.lock: does not exist; give the path of a lockfile, or - to read one from stdin"),
    (["-", "llmring.lock"], b"\xff\xfe", "Error: <stdin>: is not UTF-8 text; a lockfile is TOML"),
    (["-", "llmring.lock"], b'version = "1.0"\n[profiles.x\n', "Error: <stdin>:2: is not valid TOML"),
    (["-p", "default", "-p", "nope"], None, "profile 'nope' is not in the lockfile; its profiles are"),
    (["llmring.lock", "llmring.lock", "-p", "nope"], None, "profile 'nope' is not in the lockfile"),
])
def test_errors_exit_2_with_one_clear_line(files, args, stdin, message):
    result = run(*args, stdin=stdin)
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["a.lock"], ["-p", "x"], ["-", "-"], ["a", "b", "-p", "x", "-p", "y"],
                                  ["a", "b", "--file", "c"]])
def test_usage_mistakes_exit_2_saying_what_to_give(files, args):
    result = run(*args)
    assert result.exit_code == 2
    assert "give two profiles (--profile A --profile B) or two lockfiles (OLD NEW" in result.stderr


def test_a_broken_lockfile_exits_2_not_1(files):
    old, new = files
    new.write_text(NEW.replace('models = ["mock:fast"]', "models = 3", 1))
    result = run(str(old), str(new))
    assert result.exit_code == 2 and f"Error: {new}:" in result.stderr and "models must be a list" in result.stderr


def test_a_budget_change_is_shown(tmp_path):
    a = _lock(tmp_path / "a.lock", {"default": {"x": ["mock:x"]}})
    b = _lock(tmp_path / "b.lock", {"default": {"x": ["mock:x"]}})
    b.write_text(b.read_text() + "budget = { usd_per_day = 5.0 }\n")
    result = run(str(a), str(b))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[3:] == ["~ x", '    budget: (none) → {"usd_per_day": 5.0}']
    d = lockdiff.compare_files(lf_mod.read(a), lf_mod.read(b), "a", "b")
    assert d.profiles[0].aliases[0].fields == {"budget": [None, {"usd_per_day": 5.0}]}
    with pytest.raises(LockfileError, match="profile 'x' is not in the lockfile"):
        lockdiff.compare_profiles(lf_mod.read(a), "default", "x")


def _lock(path, profiles, default_profile="default", extends=None):
    text = f'version = "1.0"\ndefault_profile = "{default_profile}"\n'
    for name, bindings in profiles.items():
        text += f'\n[profiles.{name}]\nname = "{name}"\n'
        if (extends or {}).get(name):
            text += f'extends = "{extends[name]}"\n'
        for alias, models in bindings.items():
            text += f'\n[[profiles.{name}.bindings]]\nalias = "{alias}"\nmodels = {json.dumps(models)}\n'
    path.write_text(text)
    return path


def test_a_pin_is_shown_in_brief_and_prices_are_the_pinned_snapshots(tmp_path):
    cache = tmp_path / ".llmring-cache"
    cache.mkdir()
    snapshot = {"provider": "openai", "name": "big-2026-01-01", "input_price": 2.0, "output_price": 8.0}
    (cache / "registry.json").write_text(json.dumps({**REGISTRY, "models": REGISTRY["models"] + [snapshot]}))
    a = _lock(tmp_path / "a.lock", {"default": {"x": ["openai:cheap"]}})
    b = _lock(tmp_path / "b.lock", {"default": {"x": ["openai:big"]}})
    pin = ('pin = { hash = "sha256:00", registry = "r1", pinned_at = "2026-12-02T12:00:00Z", models = '
           '[{ model = "openai:big", snapshot = "openai:big-2026-01-01" }] }\n')
    b.write_text(b.read_text() + pin)
    lines = run(str(a), str(b)).stdout.splitlines()
    assert "    pin: (not pinned) → sha256:00 (registry r1, 2026-12-02T12:00:00Z)" in lines
    assert "    price per 1M tokens (in/out): openai:cheap $0.15/$0.60 → openai:big-2026-01-01 $2.00/$8.00" in lines
    data = json.loads(run(str(a), str(b), "--json").stdout)
    assert data["profiles"][0]["aliases"][0]["fields"]["pin"][1]["models"][0]["snapshot"] == "openai:big-2026-01-01"
