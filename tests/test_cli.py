"""The `llmring` command: the seed's CLI examples, output formats, and every user mistake as
exit 1 with one `Error:` line (never a traceback), usage errors as exit 2. Most tests use
click's CliRunner; the console scripts themselves run as subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import runner

from llmring import lockfile as lf_mod
from llmring.cli import cli

BIN = Path(sys.executable).parent
SCRIPTS = ["llmring", "llmring-cli"]

SEED = '''\
version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "fast"
models = ["openai:gpt-4o-mini"]

[[profiles.default.bindings]]
alias = "balanced"
models = ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4o", "google:gemini-2.5-pro"]
description = "Everyday work."
requires = ["tools"]
params = { temperature = 0.3 }

[[profiles.default.bindings]]
alias = "assistant"
models = ["mock:echo"]

[profiles.dev]
name = "dev"

[[profiles.dev.bindings]]
alias = "assistant"
models = ["mock:echo", "openai:gpt-4o-mini"]
'''


def invoke(*args, input=None):
    return runner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def seeded(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED)
    return path


def script(name: str) -> Path:
    path = BIN / name
    assert path.is_file(), f"{name} is not installed next to {sys.executable}: pip install -e ."
    return path


def run(*args, name="llmring", cwd=None, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMRING_")}
    env.update(env_extra or {})
    return subprocess.run([str(script(name)), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


# -- the console scripts ------------------------------------------------------------------

@pytest.mark.parametrize("name", SCRIPTS)
def test_the_console_scripts_are_installed(name):
    done = run("--version", name=name)
    assert done.returncode == 0, done.stderr
    from llmring import __version__

    assert done.stdout.strip() == f"llmring, version {__version__}"


def test_both_scripts_behave_the_same(seeded):
    outputs = [run(*args, name=name, cwd=seeded.parent)
               for name in SCRIPTS for args in (["aliases"], ["resolve", "balanced"], ["resolve", "nope"])]
    by_script = [[(o.returncode, o.stdout, o.stderr) for o in outputs[i:i + 3]] for i in (0, 3)]
    assert by_script[0] == by_script[1]
    assert by_script[0][0][0] == 0 and by_script[0][2][0] == 1


def test_the_seed_workflow_through_the_real_command(tmp_path):
    """The seed's quick start, typed into a shell."""
    assert run("lock", "init", cwd=tmp_path).returncode == 0
    for args in (["bind", "summarizer", "anthropic:claude-3-5-haiku-20241022"], ["bind", "analyzer", "openai:gpt-4o"],
                 ["bind", "assistant", "mock:echo", "--profile", "dev"]):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    done = run("chat", "Hello", "--profile", "dev", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "Hello\n"), done.stderr
    listed = run("aliases", cwd=tmp_path)
    assert "summarizer → anthropic:claude-3-5-haiku-20241022\n" in listed.stdout
    assert "analyzer → openai:gpt-4o\n" in listed.stdout


MISTAKES = [
    (["bind", "fast", "gpt-4o-mini"], "has no provider; use provider:model, e.g. openai:gpt-4o-mini"),
    (["bind", "fast", "openai:gpt-4o,gpt-4o-mini"], "'gpt-4o-mini' has no provider"),
    (["bind", "fast", ""], "at least one model"),
    (["bind", "openai:fast", "openai:gpt-4o"], "contains a colon"),
    (["bind", "code reviewer", "openai:gpt-4o"], "not a valid name"),
    (["bind", "x", "openai:gpt-4o", "--file", "missing.lock"], "missing.lock: does not exist"),
    (["unbind", "ghost"], "'ghost' is not bound in profile 'default'"),
    (["unbind", "assistant", "--profile", "staging"], "its profiles are default, dev"),
    (["aliases", "--profile", "prod"], "profile 'prod' is not in the lockfile; its profiles are default, dev"),
    (["aliases", "--file", "missing.lock"], "does not exist"),
    (["resolve", "fsat"], "Did you mean 'fast'?"),
    (["resolve", "fast", "--profile", "nope"], "'nope' is not in the lockfile"),
    (["lock", "init"], "already exists; pass --force"),
    (["lock", "validate", "--file", "missing.lock"], "does not exist"),
    (["chat", "Hello", "--model", "nobody"], "'nobody' is not bound"),
    (["chat", "Hello", "--model", "gpt-4o"], "'gpt-4o' is not bound"),
]


@pytest.mark.parametrize("args, message", MISTAKES, ids=[" ".join(a) or "empty" for a, _ in MISTAKES])
def test_a_user_mistake_is_one_error_line(seeded, args, message):
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert seeded.read_text() == SEED  # no data lost
    assert sorted(p.name for p in seeded.parent.iterdir()) == ["llmring.lock"]  # and nothing created


BROKEN = {
    "syntax": (SEED.replace('alias = "fast"', "alias = fast"), ":8: is not valid TOML"),
    "duplicate": (SEED.replace('alias = "assistant"\nmodels = ["mock:echo"]\n',
                               'alias = "fast"\nmodels = ["mock:echo"]\n'), ":19: alias 'fast' is bound twice"),
    "unknown key": (SEED.replace("description =", "descripton ="), ":14: unknown key 'descripton'"),
    "not utf-8": (SEED + "# \xe9", "is not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("args", [["aliases"], ["resolve", "fast"], ["lock", "validate"], ["chat", "Hi"],
                                  ["bind", "fast", "openai:gpt-4o"], ["unbind", "fast"]],
                         ids=lambda a: " ".join(a))
def test_a_broken_lockfile_is_one_error_line_and_is_left_alone(tmp_path, case, args):
    text, message = BROKEN[case]
    path = tmp_path / "llmring.lock"
    data = text.encode("latin-1" if case == "not utf-8" else "utf-8")
    path.write_bytes(data)
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}"), result.stderr
    assert message in lines[0]
    assert path.read_bytes() == data


def test_a_lockfile_path_variable_pointing_nowhere(tmp_path, monkeypatch, seeded):
    monkeypatch.setenv("LLMRING_LOCKFILE_PATH", str(tmp_path / "gone.lock"))
    result = invoke("aliases")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'gone.lock'}: named by LLMRING_LOCKFILE_PATH does not exist; " \
                            "fix the variable or unset it\n"


def test_no_lockfile_at_all(tmp_path):
    for args, message in ((["lock", "validate"], "no lockfile found here; create one with `llmring lock init`"),
                          (["chat", "Hi"], "bundled lockfile: create your own with `llmring lock init`"),
                          (["unbind", "advisor"], "llmring.lock: no lockfile here; create one with `llmring lock")):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert lf_mod.read(lf_mod.BUNDLED).profiles["default"].get("advisor")  # the bundled file was not edited


SUBPROCESS_MISTAKES = [
    (["bind", "fast", "gpt-4o-mini"],
     "Error: Model reference 'gpt-4o-mini' has no provider; use provider:model, e.g. openai:gpt-4o-mini.\n"),
    (["aliases", "--file", "missing.lock"], "Error: missing.lock: does not exist; check lockfile_path / --file, "
                                           "or create it with `llmring lock init --file missing.lock`\n"),
    (["unbind", "ghost"], None),
]


@pytest.mark.parametrize("name", SCRIPTS)
@pytest.mark.parametrize("args, expected", SUBPROCESS_MISTAKES, ids=[" ".join(a) for a, _ in SUBPROCESS_MISTAKES])
def test_a_mistake_in_the_real_command_has_no_traceback(seeded, name, args, expected):
    done = run(*args, name=name, cwd=seeded.parent)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: "), done.stderr
    if expected:
        assert done.stderr == expected
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert seeded.read_text() == SEED


@pytest.mark.parametrize("args", [
    ["bind"], ["bind", "fast"], ["unbind"], ["resolve"], ["chat"], ["bogus"], ["aliases", "--bogus"],
    ["chat", "Hi", "--max-tokens", "0"], ["chat", "Hi", "--temperature", "warm"], ["lock", "init", "--forse"],
    ["aliases", "--file", "."],
], ids=lambda a: " ".join(a))
def test_usage_errors_exit_2(seeded, args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Error:" in result.stderr
    assert seeded.read_text() == SEED


def test_usage_errors_exit_2_from_the_real_command(seeded):
    done = run("bind", "fast", cwd=seeded.parent)
    assert done.returncode == 2
    assert "Missing argument 'MODELS'" in done.stderr and "Traceback" not in done.stderr


# -- lock init / validate -----------------------------------------------------------------

def test_lock_init_writes_a_valid_lockfile_here(tmp_path):
    result = invoke("lock", "init")
    assert result.exit_code == 0, result.output
    path = tmp_path / "llmring.lock"
    assert result.stdout.startswith(f"Created {path} with ")
    lf = lf_mod.read(path)
    assert lf.profiles[lf.default_profile].bindings
    assert invoke("lock", "validate").exit_code == 0


def test_lock_init_refuses_to_overwrite_without_force(seeded):
    assert invoke("lock", "init").exit_code == 1
    assert seeded.read_text() == SEED
    result = invoke("lock", "init", "--force")
    assert result.exit_code == 0, result.output
    assert seeded.read_text() != SEED
    lf_mod.read(seeded)


def test_lock_init_at_a_path_creates_its_folders(tmp_path):
    result = invoke("lock", "init", "--file", "config/llm/app.lock")
    assert result.exit_code == 0, result.output
    path = tmp_path / "config" / "llm" / "app.lock"
    lf_mod.read(path)
    assert not (tmp_path / "llmring.lock").exists()
    assert invoke("lock", "init", "--file", str(path)).exit_code == 1
    assert invoke("lock", "validate", "--file", str(path)).exit_code == 0


def test_lock_validate(seeded):
    result = invoke("lock", "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"✓ {seeded} is valid: 2 profiles, 4 bindings")
    single = seeded.parent / "single.lock"
    single.write_text('[profiles.default]\n\n[[profiles.default.bindings]]\nalias = "a"\nmodels = ["mock:echo"]\n')
    assert "is valid: 1 profile, 1 binding, " in invoke("lock", "validate", "--file", str(single)).stdout
    other = seeded.parent / "other.lock"
    other.write_text(SEED.replace("[profiles.dev]", "[profiles.dev]\nregistry = 1"))
    result = invoke("lock", "validate", "--file", str(other))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {other}:23: unknown key 'registry' in profile 'dev'; "
                             "did you mean 'registry_versions'?\n")


def test_lock_validate_json(seeded):
    result = invoke("lock", "validate", "--json")
    data = json.loads(result.stdout)
    assert (data["lockfile"], data["valid"], data["profiles"], data["aliases"]) == (str(seeded), True,
                                                                                     ["default", "dev"], 4)


# -- bind / unbind ------------------------------------------------------------------------

def test_the_seeds_aliases_output(tmp_path):
    for args in (["bind", "fast", "openai:gpt-4o-mini"],
                 ["bind", "balanced", "anthropic:claude-sonnet-4-5-20250929,openai:gpt-4o,google:gemini-2.5-pro"],
                 ["bind", "deep", "anthropic:claude-opus-4"]):
        assert invoke(*args).exit_code == 0
    result = invoke("aliases")
    assert result.exit_code == 0
    assert result.stdout == ("fast → openai:gpt-4o-mini\n"
                             "balanced → anthropic:claude-sonnet-4-5-20250929 (+ 2 fallbacks)\n"
                             "deep → anthropic:claude-opus-4\n")


def test_bind_single_model(seeded):
    result = invoke("bind", "summarizer", "openai:gpt-4o-mini")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"summarizer → openai:gpt-4o-mini  (profile default, {seeded})\n"
    assert lf_mod.read(seeded).profiles["default"].get("summarizer").models == ["openai:gpt-4o-mini"]
    assert 'alias = "summarizer"\nmodels = ["openai:gpt-4o-mini"]\n' in seeded.read_text()


def test_bind_with_fallbacks(seeded):
    result = invoke("bind", "balanced", "anthropic:claude-sonnet-4-5-20250929,openai:gpt-4o")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("balanced → anthropic:claude-sonnet-4-5-20250929 (+ 1 fallback)  (profile")
    b = lf_mod.read(seeded).profiles["default"].get("balanced")
    assert b.models == ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4o"]
    assert (b.description, b.requires, b.params) == ("Everyday work.", ["tools"], {"temperature": 0.3})
    assert 'models = [\n    "anthropic:claude-sonnet-4-5-20250929",\n    "openai:gpt-4o",\n]' in seeded.read_text()


def test_bind_to_profiles(seeded):
    assert invoke("bind", "assistant", "openai:gpt-4o-mini", "--profile", "dev").exit_code == 0
    result = invoke("bind", "assistant", "anthropic:claude-opus-4", "--profile", "prod")
    assert result.exit_code == 0, result.output
    assert "(profile prod," in result.stdout
    lf = lf_mod.read(seeded)
    assert lf.profiles["dev"].get("assistant").models == ["openai:gpt-4o-mini"]
    assert lf.profiles["prod"].get("assistant").models == ["anthropic:claude-opus-4"]
    assert lf.profiles["default"].get("assistant").models == ["mock:echo"]


def test_bind_uses_the_profile_variable(seeded, monkeypatch):
    monkeypatch.setenv("LLMRING_PROFILE", "dev")
    assert invoke("bind", "fast", "mock:echo").exit_code == 0
    lf = lf_mod.read(seeded)
    assert lf.profiles["dev"].get("fast").models == ["mock:echo"]
    assert lf.profiles["default"].get("fast").models == ["openai:gpt-4o-mini"]


def test_bind_with_a_file(tmp_path, seeded):
    other = tmp_path / "elsewhere" / "app.lock"
    other.parent.mkdir()
    other.write_text(SEED)
    result = invoke("bind", "extra", "mock:echo", "--file", str(other), "--description", "For tests.")
    assert result.exit_code == 0, result.output
    assert lf_mod.read(other).profiles["default"].get("extra").description == "For tests."
    assert seeded.read_text() == SEED


def test_bind_without_a_lockfile_starts_one_here(tmp_path):
    result = invoke("bind", "summarizer", "openai:gpt-4o-mini")
    assert result.exit_code == 0, result.output
    assert list(lf_mod.read(tmp_path / "llmring.lock").profiles["default"].bindings) == [
        lf_mod.Binding("summarizer", ["openai:gpt-4o-mini"])]


def test_unbind(seeded):
    result = invoke("unbind", "fast")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Removed fast from profile default ({seeded})\n"
    assert invoke("unbind", "assistant", "--profile", "dev").exit_code == 0
    lf = lf_mod.read(seeded)
    assert [b.alias for b in lf.profiles["default"].bindings] == ["balanced", "assistant"]
    assert lf.profiles["dev"].bindings == []


# -- aliases / resolve --------------------------------------------------------------------

def test_aliases_of_a_profile(seeded):
    result = invoke("aliases", "--profile", "dev")
    assert result.stdout == ("fast → openai:gpt-4o-mini\n"
                             "balanced → anthropic:claude-sonnet-4-5-20250929 (+ 2 fallbacks)\n"
                             "assistant → mock:echo (+ 1 fallback)\n")


def test_aliases_verbose(seeded):
    result = invoke("aliases", "--verbose", "--profile", "dev")
    assert result.exit_code == 0
    out = result.stdout
    assert "balanced  → anthropic:claude-sonnet-4-5-20250929, openai:gpt-4o, google:gemini-2.5-pro" \
           "  [from default]" in out
    assert "assistant → mock:echo, openai:gpt-4o-mini\n" in out
    assert "description: Everyday work." in out and "requires: tools" in out and "params: temperature=0.3" in out
    assert out.endswith(f"profile dev · {seeded} (cwd)\n")


def test_aliases_json(seeded):
    data = json.loads(invoke("aliases", "--json", "--profile", "dev").stdout)
    assert data["lockfile"] == str(seeded) and data["profile"] == "dev"
    rows = {row["alias"]: row for row in data["aliases"]}
    assert rows["balanced"]["models"] == ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4o",
                                          "google:gemini-2.5-pro"]
    assert (rows["balanced"]["profile"], rows["assistant"]["profile"]) == ("default", "dev")
    assert rows["balanced"]["params"] == {"temperature": 0.3}


def test_aliases_of_an_empty_profile(seeded):
    invoke("unbind", "assistant", "--profile", "dev")
    invoke("lock", "init", "--file", "empty.lock")
    path = seeded.parent / "empty.lock"
    lf = lf_mod.read(path)
    lf.profiles["default"].bindings.clear()
    lf_mod.write(lf, path)
    result = invoke("aliases", "--file", str(path))
    assert result.exit_code == 0 and result.stdout == ""
    assert "No aliases in profile default" in result.stderr
    assert json.loads(invoke("aliases", "--file", str(path), "--json").stdout)["aliases"] == []


def test_resolve(seeded):
    result = invoke("resolve", "balanced", "--profile", "dev")
    assert result.exit_code == 0
    assert result.stdout == ("balanced → anthropic:claude-sonnet-4-5-20250929 (+ 2 fallbacks)\n"
                             "  fallbacks: openai:gpt-4o, google:gemini-2.5-pro\n"
                             "  profile:   default\n"
                             f"  lockfile:  {seeded} (cwd)\n")


def test_resolve_json(seeded):
    data = json.loads(invoke("resolve", "assistant", "--profile", "dev", "--json").stdout)
    assert data == {"alias": "assistant", "model": "mock:echo", "models": ["mock:echo", "openai:gpt-4o-mini"],
                    "profile": "dev", "lockfile": str(seeded), "lockfile_source": "cwd"}


def test_resolve_a_model_reference(seeded):
    result = invoke("resolve", "ollama:llama3:8b")
    assert (result.exit_code, result.stdout) == (0, "ollama:llama3:8b → ollama:llama3:8b\n")


# -- chat ---------------------------------------------------------------------------------

def test_chat_hello_through_mock_echo(seeded):
    result = invoke("chat", "Hello")
    assert (result.exit_code, result.stdout) == (0, "Hello\n"), result.output


def test_chat_options(seeded):
    assert invoke("chat", "Hello", "--profile", "dev", "--no-stream").stdout == "Hello\n"
    data = json.loads(invoke("chat", "Hello there", "--json", "-m", "assistant").stdout)
    assert (data["content"], data["model"], data["alias"], data["profile"]) == ("Hello there", "mock:echo",
                                                                                "assistant", "default")
    assert invoke("chat", "-", input="from stdin").stdout == "from stdin\n"
    result = invoke("chat", "Hi", "--verbose")
    assert result.stdout == "Hi\n" and "[mock:echo" in result.stderr


def test_chat_reports_every_failed_model(seeded):
    invoke("bind", "broken", "mock:fail-server,mock:fail-auth")
    result = invoke("chat", "Hi", "-m", "broken")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no model could answer for 'broken':\n")
    assert "mock:fail-server" in result.stderr and "mock:fail-auth" in result.stderr
    assert "Traceback" not in result.output
