"""Third-party plugins installed by pip: found through the `llmring` entry-point group, with a
broken one reported without breaking the others. The plugins are pip-installed into a fresh
virtualenv, and each check runs in that venv's interpreter, as a user's would."""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PACKAGES = Path(__file__).resolve().parent / "plugin_pkg"
PLUGINS = {"llmring-hello": "llmring_hello", "llmring-broken": "llmring_broken", "llmring-badsig": "llmring_badsig",
           "llmring-unmarked": "llmring_unmarked", "acme-llm-tools": "acme_greeter"}  # package: its module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fresh virtualenv with llmring-hello, acme-llm-tools (named unlike its module and entry
    points) and three broken plugins pip-installed into it (a missing dependency, a hook with a
    wrong signature, a hook without @hookimpl). It sees
    this test environment's packages (llmring and its dependencies) through a .pth file, as a
    user's venv sees what was installed before the plugin; returns the venv's python."""
    for needed in ("llmring", "setuptools", "wheel"):
        try:
            importlib.metadata.distribution(needed)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{needed} is not installed in {sys.prefix}: pip install -e '.[test]' first "
                        "(llmring's own entry points come from its installed metadata).")
    work = tmp_path_factory.mktemp("plugins")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parents = [p for p in sys.path if p.endswith("site-packages")]
    Path(purelib, "_test_environment.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    sources = []
    for name in PLUGINS:
        # Build from a copy: setuptools leaves build/ and *.egg-info beside the sources.
        source = shutil.copytree(PACKAGES / name, work / name,
                                 ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        sources.append(str(source))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--quiet", *sources],
        capture_output=True, text=True, timeout=300, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all((Path(purelib) / f"{module}.py").exists() for module in PLUGINS.values())
    return python


def run(python, code, tmp_path):
    """Run `code` with the plugins' venv, in a fresh interpreter; return its JSON output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMRING_", "PYTHON"))}
    env["LLMRING_USAGE_DB"] = str(tmp_path / "usage.db")  # never the real user's usage log
    done = subprocess.run([str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_installed_plugin_adds_its_prefix_and_a_broken_one_is_reported(site, tmp_path):
    out = run(site, """
        import json
        from llmring.exceptions import ProviderNotFoundError
        from llmring.plugins import registry
        from llmring.provider import ProviderSettings
        from llmring.types import LLMRequest

        def ask(prefix, model, text):
            info = registry.get(prefix)
            provider = info.factory(ProviderSettings(name=prefix))
            return info.package, provider.chat(model, LLMRequest(messages=[text]), (1.0, 5.0)).content

        out = {"hello": ask("hello", "world", "Hi there"), "mock": ask("mock", "echo", "still here")}
        out["broken"] = [[b.name, b.package, b.error] for b in registry.broken]
        try:
            registry.get("broken")
            out["broken_error"] = None
        except ProviderNotFoundError as e:
            out["broken_error"] = str(e)
        out["hello_after"] = ask("hello", "again", "twice")
        out["prefixes"] = sorted(registry.providers)
        print(json.dumps(out))
    """, tmp_path)
    assert out["hello"] == ["llmring-hello", "Hello from world: Hi there"]
    assert out["mock"] == ["llmring", "still here"]
    assert out["hello_after"] == ["llmring-hello", "Hello from again: twice"]
    assert {"hello", "mock"} <= set(out["prefixes"]) and "broken" not in out["prefixes"]
    broken = [b for b in out["broken"] if b[0] == "broken"]
    assert len(broken) == 1
    name, package, error = broken[0]
    assert package == "llmring-broken"
    assert "ModuleNotFoundError" in error and "llmring_broken_missing_dependency" in error
    message = out["broken_error"]
    assert message is not None and "'broken'" in message and "llmring-broken" in message
    assert "failed to load" in message and "llmring_broken_missing_dependency" in message
    assert "hello" in message and "mock" in message  # the installed providers are listed


def test_a_ring_chats_through_an_installed_plugin(site, tmp_path):
    lockfile = tmp_path / "plugins.lock"
    lockfile.write_text(textwrap.dedent("""\
        version = "1.0"
        default_profile = "default"

        [profiles.default]
        name = "default"

        [[profiles.default.bindings]]
        alias = "greeter"
        models = ["broken:anything", "hello:world"]
    """), encoding="utf-8")
    out = run(site, f"""
        import json
        from llmring import Ring

        ring = Ring(lockfile_path={str(lockfile)!r})
        direct = ring.chat("hello:world", "Hi")
        alias = ring.chat("greeter", "Hi again")
        streamed = "".join(c.delta for c in ring.stream("hello:world", "streamed"))
        echoed = ring.chat("mock:echo", "offline").content
        print(json.dumps({{
            "direct": [direct.content, direct.model],
            "alias": [alias.content, alias.model, alias.alias,
                      [[a.model, a.kind, a.message] for a in alias.attempts]],
            "streamed": streamed, "echoed": echoed,
        }}))
    """, tmp_path)
    assert out["direct"] == ["Hello from world: Hi", "hello:world"]
    content, model, alias, attempts = out["alias"]
    assert (content, model, alias) == ("Hello from world: Hi again", "hello:world", "greeter")
    assert [a[:2] for a in attempts] == [["broken:anything", "not_configured"], ["hello:world", None]]
    assert "llmring_broken_missing_dependency" in attempts[0][2]
    assert out["streamed"] == "Hello from world: streamed"
    assert out["echoed"] == "offline"


def test_a_wrong_hook_signature_or_a_missing_hookimpl_is_reported_and_breaks_nothing(site, tmp_path):
    out = run(site, """
        import json
        from llmring import Ring
        from llmring.exceptions import ProviderNotFoundError
        from llmring.plugins import registry

        out = {"chat": [Ring().chat(ref, "Hi").content for ref in ("mock:echo", "hello:world")]}
        out["broken"] = {b.name: [b.package, b.error] for b in registry.broken}
        out["prefixes"] = sorted(registry.providers)
        out["errors"] = {}
        for prefix in ("badsig", "unmarked"):
            try:
                Ring().chat(prefix + ":m", "Hi")
            except Exception as e:
                out["errors"][prefix] = [[c.__name__ for c in type(e).__mro__], str(e)]
        print(json.dumps(out))
    """, tmp_path)
    assert out["chat"] == ["Hi", "Hello from world: Hi"]
    assert {"hello", "mock", "openai"} <= set(out["prefixes"])
    assert not {"badsig", "unmarked", "broken"} & set(out["prefixes"])
    package, error = out["broken"]["badsig"]
    assert package == "llmring-badsig"
    assert "PluginValidationError" in error and "settings" in error and "\n" not in error
    package, error = out["broken"]["unmarked"]
    assert package == "llmring-unmarked"
    assert error == ("its register_providers is not marked with @hookimpl (from llmring.plugins import hookimpl), "
                     "so it adds no provider.")
    for prefix in ("badsig", "unmarked"):
        classes, message = out["errors"][prefix]
        assert {"AllModelsFailedError", "ModelNotFoundError"} <= set(classes), message
        assert f"llmring-{prefix}" in message and "failed to load" in message


def test_llmring_providers_names_the_package_a_plugin_came_from(site, tmp_path):
    # acme-llm-tools installs module acme_greeter under entry points greet and greeting: the
    # package shown is the distribution's name, and the second name of one module is no error.
    out = run(site, """
        import json
        from click.testing import CliRunner
        from llmring.cli import cli

        done = CliRunner().invoke(cli, ["providers", "--json"])
        print(json.dumps(json.loads(done.output)))  # on one line
    """, tmp_path)
    packages = {row["prefix"]: row["package"] for row in out["providers"]}
    assert packages["greet"] == "acme-llm-tools"
    assert packages["hello"] == "llmring-hello" and packages["mock"] == "llmring"
    assert sorted(b["name"] for b in out["broken"]) == ["badsig", "broken", "unmarked"]
    assert {b["name"]: b["package"] for b in out["broken"]}["badsig"] == "llmring-badsig"
