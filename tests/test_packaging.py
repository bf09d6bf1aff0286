"""The distributions: an sdist and a wheel built from a clean copy of the repository (the
files git tracks, plus new files it does not ignore) carry everything a user needs."""

import configparser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("openai", "anthropic", "google", "ollama", "mock")


def repository_files() -> list:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: {done.stderr.strip()}")
    # A file deleted in the work tree but not yet in the index is not part of the copy.
    return [name for name in done.stdout.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("the `build` package is missing: pip install -e '.[test]'")
    work = tmp_path_factory.mktemp("packaging")
    source = work / "src"
    for name in repository_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    out = work / "dist"
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                           "--outdir", str(out), str(source)], capture_output=True, text=True, timeout=600,
                          cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0], "source": source}


@pytest.fixture(scope="module")
def wheel_names(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        return set(z.namelist())


@pytest.fixture(scope="module")
def sdist_names(dists):
    with tarfile.open(dists["sdist"]) as t:
        names = t.getnames()
    # Every member sits under "<name>-<version>/".
    return {name.split("/", 1)[1] for name in names if "/" in name}


def test_the_wheel_carries_the_data_files(wheel_names):
    assert "llmring/data/llmring.lock" in wheel_names
    assert "llmring/data/registry.json" in wheel_names
    assert "llmring/py.typed" in wheel_names


def test_the_wheel_carries_every_module(dists, wheel_names):
    source = dists["source"]
    for package in ("llmring", "llmring_providers"):
        modules = {p.relative_to(source).as_posix() for p in (source / package).rglob("*.py")}
        assert modules and modules <= wheel_names, sorted(modules - wheel_names)
    assert {f"llmring_providers/{name}.py" for name in PROVIDERS} <= wheel_names
    assert not any(name.startswith("tests/") for name in wheel_names)


def test_the_wheel_declares_the_entry_points(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(z.read(info).decode())
    scripts = dict(parser["console_scripts"])
    assert scripts == {"llmring": "llmring.cli:main", "llmring-cli": "llmring.cli:main"}
    assert dict(parser["llmring"]) == {name: f"llmring_providers.{name}" for name in PROVIDERS}


def test_the_wheel_declares_only_the_chosen_dependencies(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    required = {line.split(":", 1)[1].strip().split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
                for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    # tomli-w is the user's choice too, but llmring writes TOML one way (its comment-keeping
    # writer, llmring/lockwrite.py), so tomli-w is only the tests' and benchmarks' reference.
    assert required == {"requests", "attrs", "cattrs", "tomli", "click", "pluggy", "backoff"}


def test_the_sdist_carries_docs_and_tests(dists, sdist_names):
    for name in ("README.md", "CHANGELOG.md", "setup.cfg", "pyproject.toml", "MANIFEST.in",
                 "llmring/data/llmring.lock", "llmring/data/registry.json",
                 "llmring/py.typed", "tests/conftest.py", "tests/httpfake.py",
                 "tests/test_lockfile.py", "tests/test_packaging.py"):
        assert name in sdist_names, name
    docs = {p.relative_to(dists["source"]).as_posix() for p in (dists["source"] / "docs").rglob("*.md")}
    assert docs and docs <= sdist_names, sorted(docs - sdist_names)
    plugin_sources = {p.relative_to(dists["source"]).as_posix()
                      for p in (dists["source"] / "tests" / "plugin_pkg").rglob("*") if p.is_file()}
    assert plugin_sources <= sdist_names, sorted(plugin_sources - sdist_names)


def test_the_readme_is_the_long_description(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    readme = (dists["source"] / "README.md").read_text(encoding="utf-8")
    first_line = next(line for line in readme.splitlines() if line.strip())
    assert "Description-Content-Type: text/markdown" in meta
    assert first_line in meta
