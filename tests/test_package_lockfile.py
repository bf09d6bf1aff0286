"""A library's own lockfile: Ring(package="mypackage") reads the llmring.lock shipped inside an
installed package, from a folder or a zip (zipimport, as from a zipped install), with
lockfile_path and LLMRING_LOCKFILE_PATH still overriding it; it is never edited; and a Ring
made this way pickles into other processes."""

import importlib
import itertools
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lockfiles import one_alias

from llmring import AsyncRing, Ring
from llmring.exceptions import LockfileError

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count()

PACKAGE_LOCK = '''version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["mock:echo"]
'''


def make_package(tmp_path, monkeypatch, *, zipped, lockfile=PACKAGE_LOCK):
    """An importable package (a new name each time: imports are cached) with `lockfile` as its
    llmring.lock (None: none), in a folder or a zip put on sys.path. Returns (name, where)."""
    name = f"libpkg{next(_names)}_{os.getpid()}"
    files = {f"{name}/__init__.py": "REQUIRED_ALIASES = ['summarizer']\n"}
    if lockfile is not None:
        files[f"{name}/llmring.lock"] = lockfile
    if zipped:
        where = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(where, "w") as z:
            for path, text in files.items():
                z.writestr(path, text)
    else:
        where = tmp_path / "site"
        for path, text in files.items():
            (where / path).parent.mkdir(parents=True, exist_ok=True)
            (where / path).write_text(text)
    monkeypatch.syspath_prepend(str(where))
    importlib.invalidate_caches()
    return name, where


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_a_package_lockfile_is_used_and_calls_go_through_it(tmp_path, monkeypatch, zipped):
    name, where = make_package(tmp_path, monkeypatch, zipped=zipped)
    ring = Ring(package=name)
    assert ring.lockfile_source == "package"
    assert str(ring.lockfile_path) == str(where / name / "llmring.lock")
    ring.require_aliases(["summarizer"], context=name)
    assert ring.chat("summarizer", "Hello").content == "Hello"
    if zipped:
        assert sys.modules[name].__loader__.__class__.__name__ == "zipimporter"


def test_the_package_lockfile_wins_over_the_working_directorys(tmp_path, monkeypatch):
    name, _ = make_package(tmp_path, monkeypatch, zipped=True)
    one_alias(tmp_path, ["mock:cwd"], alias="summarizer")
    assert Ring(package=name).resolve_alias("summarizer") == "mock:echo"
    assert Ring().resolve_alias("summarizer") == "mock:cwd"


def test_lockfile_path_and_the_environment_override_the_package(tmp_path, monkeypatch):
    name, _ = make_package(tmp_path, monkeypatch, zipped=True)
    mine = one_alias(tmp_path, ["mock:mine"], alias="summarizer")
    assert Ring(mine, package=name).resolve_alias("summarizer") == "mock:mine"
    (tmp_path / "env").mkdir()
    theirs = one_alias(tmp_path / "env", ["mock:env"], alias="summarizer")
    monkeypatch.setenv("LLMRING_LOCKFILE_PATH", str(theirs))
    ring = Ring(package=name)
    assert (ring.resolve_alias("summarizer"), ring.lockfile_source) == ("mock:env", "env")


def test_a_package_that_is_not_installed_is_a_clear_error(tmp_path):
    with pytest.raises(LockfileError, match=r"package 'no_such_pkg_xyz' is not installed, so it has no lockfile"):
        Ring(package="no_such_pkg_xyz")


def test_a_package_without_a_lockfile_is_a_clear_error(tmp_path, monkeypatch):
    name, where = make_package(tmp_path, monkeypatch, zipped=True, lockfile=None)
    with pytest.raises(LockfileError) as e:
        AsyncRing(package=name)
    assert f"package {name!r} ships no llmring.lock (looked for {where / name / 'llmring.lock'})" in str(e.value)
    assert "pass lockfile_path" in str(e.value)


def test_a_module_is_not_a_package(tmp_path, monkeypatch):
    (tmp_path / "plainmod_xyz.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(LockfileError, match="'plainmod_xyz' is a module, not a package"):
        Ring(package="plainmod_xyz")


def test_a_broken_package_lockfile_names_the_file_and_line(tmp_path, monkeypatch):
    name, where = make_package(tmp_path, monkeypatch, zipped=True, lockfile=PACKAGE_LOCK + "models = 3\n")
    ring = Ring(package=name)
    with pytest.raises(LockfileError) as e:
        ring.resolve("summarizer")
    assert str(e.value).startswith(f"{where / name / 'llmring.lock'}:")


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_a_package_lockfile_is_never_edited(tmp_path, monkeypatch, zipped):
    name, where = make_package(tmp_path, monkeypatch, zipped=zipped)
    before = where.read_bytes() if zipped else (where / name / "llmring.lock").read_bytes()
    ring = Ring(package=name)
    for edit in (lambda: ring.bind_alias("x", "mock:echo"), lambda: ring.unbind_alias("summarizer"),
                 lambda: ring.init_lockfile(force=True)):
        with pytest.raises(LockfileError, match=rf"is the lockfile package '{name}' ships, which is not edited; "
                                                "copy it and pass the copy as lockfile_path"):
            edit()
    assert (where.read_bytes() if zipped else (where / name / "llmring.lock").read_bytes()) == before
    assert not (tmp_path / "llmring.lock").exists()
    copy = tmp_path / "mine.lock"
    ring.init_lockfile(path=copy)  # a writable path given: it is used from then on
    ring.bind_alias("x", "mock:echo")
    assert ring.lockfile_path == copy and ring.has_alias("x")


def test_a_package_ring_pickles_into_another_process(tmp_path, monkeypatch):
    name, where = make_package(tmp_path, monkeypatch, zipped=True)
    ring = Ring(package=name, profile="default")
    data = pickle.dumps([ring, AsyncRing(package=name)])
    script = ("import pickle, sys; ring, aring = pickle.loads(sys.stdin.buffer.read()); "
              "print(ring.lockfile_source, ring.resolve_alias('summarizer'), ring.chat('summarizer', 'hi').content, "
              "aring.lockfile_source, aring.list_aliases())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, env=env, cwd=tmp_path,
                         check=True)
    assert out.stdout.decode().split() == ["package", "mock:echo", "hi", "package", "{'summarizer':", "'mock:echo'}"]
    assert pickle.loads(data)[0] is not None  # and in this process too


def test_without_the_package_in_the_other_process_unpickling_says_so(tmp_path, monkeypatch):
    name, _ = make_package(tmp_path, monkeypatch, zipped=True)
    data = pickle.dumps(Ring(package=name))
    script = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, env=env, cwd=tmp_path)
    assert out.returncode == 1
    assert f"package {name!r} is not installed" in out.stderr.decode()
