"""`llmring lock validate --frozen` / Ring.drift: a pinned lockfile against the registry in use,
which each test changes by writing a real registry file to the cache it reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import runner
from httpfake import openai_answer
from lockfiles import one_alias

from llmring import Ring, registry
from llmring.cli import cli

LLMRING = Path(sys.executable).parent / "llmring"


def run(*args):
    return runner().invoke(cli, list(args), catch_exceptions=False)


def registry_changed(change, version="2026-09"):
    """Write the bundled registry, changed by `change(rows by provider:name, models list)`, to the
    cache the registry loads (LLMRING_CACHE_DIR, set by conftest), and load it."""
    doc = json.loads(registry.BUNDLED.read_text())
    doc["version"] = version
    change({f"{m['provider']}:{m['name']}": m for m in doc["models"]}, doc["models"])
    path = registry.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    assert registry.load(refresh=True).source == str(path)


@pytest.fixture
def pinned(tmp_path):
    """./llmring.lock binding `summarizer` to gpt-4o then mock:echo, pinned to the bundled registry."""
    path = one_alias(tmp_path, ["openai:gpt-4o", "mock:echo"], alias="summarizer")
    Ring(path).pin()
    return path


def frozen_lines(*args):
    result = run("lock", "validate", "--frozen", *args)
    return result.exit_code, [line for line in result.stderr.splitlines() if line.startswith("default/")], result


def test_a_fresh_pin_passes(pinned):
    code, lines, result = frozen_lines()
    assert (code, lines) == (0, [])
    assert result.stdout.startswith(f"✓ {pinned} is valid: ") and result.stdout.endswith(", 0 pin problems.\n")


def test_an_unpinned_binding_fails(tmp_path):
    one_alias(tmp_path, ["openai:gpt-4o"], alias="summarizer")
    code, lines, result = frozen_lines()
    assert (code, lines) == (1, ["default/summarizer: not pinned; review it and run `llmring lock pin`"])
    assert "fails --frozen (registry 2026-08): " in result.stdout and ", 1 pin problem.\n" in result.stdout
    assert run("lock", "validate").exit_code == 0  # without --frozen, pins are not asked for


def test_a_price_change_in_the_registry_is_one_line_each(pinned):
    def change(rows, _):
        rows["openai:gpt-4o-2024-08-06"]["input_price"] = 3.0
        rows["openai:gpt-4o-2024-08-06"]["output_price"] = 12.5

    registry_changed(change)
    code, lines, result = frozen_lines()
    assert code == 1
    assert lines == [
        "default/summarizer: price of openai:gpt-4o changed $2.50 -> $3.00 per 1M input tokens since pinned",
        "default/summarizer: price of openai:gpt-4o changed $10.00 -> $12.50 per 1M output tokens since pinned"]
    assert "fails --frozen (registry 2026-09)" in result.stdout


def test_a_context_window_change_fails(pinned):
    registry_changed(lambda rows, _: rows["openai:gpt-4o-2024-08-06"].update(context_window=64000))
    assert frozen_lines()[:2] == (1, [
        "default/summarizer: context window of openai:gpt-4o changed 111,616 -> 64,000 tokens since pinned"])


def test_a_pinned_model_deprecated_or_retired_since_fails(pinned):
    def deprecated(rows, _):
        rows["openai:gpt-4o-2024-08-06"].update(deprecation_date="2026-01-01", successor="openai:gpt-4.1")

    registry_changed(deprecated)
    assert frozen_lines()[:2] == (1, [
        "default/summarizer: openai:gpt-4o-2024-08-06 was deprecated on 2026-01-01; move to openai:gpt-4.1"])
    registry_changed(lambda rows, _: rows["openai:gpt-4o-2024-08-06"].update(active=False))
    assert frozen_lines()[:2] == (1, ["default/summarizer: openai:gpt-4o-2024-08-06 is no longer active"])


def test_a_pinned_snapshot_gone_from_the_registry_fails(pinned):
    registry_changed(lambda rows, models: models.remove(rows["openai:gpt-4o-2024-08-06"]), version="2027-01")
    assert frozen_lines()[:2] == (1, [  # and the floating id falls to the older snapshot left
        "default/summarizer: openai:gpt-4o now stands for openai:gpt-4o-2024-05-13, pinned openai:gpt-4o-2024-08-06 "
        "(calls still go to openai:gpt-4o-2024-08-06)",
        "default/summarizer: openai:gpt-4o-2024-08-06 is gone from the registry in use (version 2027-01)"])


def test_a_floating_id_moved_fails_but_calls_stay_on_the_pinned_snapshot(pinned, server, monkeypatch):
    def moved(rows, models):
        newer = dict(rows["openai:gpt-4o-2024-08-06"], name="gpt-4o-2024-11-20", aliases=["gpt-4o"])
        models.append(newer)

    registry_changed(moved)
    assert frozen_lines()[:2] == (1, [
        "default/summarizer: openai:gpt-4o now stands for openai:gpt-4o-2024-11-20, pinned "
        "openai:gpt-4o-2024-08-06 (calls still go to openai:gpt-4o-2024-08-06)"])
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.add("POST", "/v1/chat/completions", openai_answer("hi"))
    assert Ring(pinned).chat("summarizer", "hi").model == "openai:gpt-4o-2024-08-06"
    assert json.loads(server.requests[0].body)["model"] == "gpt-4o-2024-08-06"


def test_a_binding_edited_without_a_new_pin_fails_and_says_how(pinned):
    Ring(pinned).bind_alias("summarizer", ["openai:gpt-4o-mini", "mock:echo"])
    assert frozen_lines()[:2] == (1, [
        "default/summarizer: models changed from openai:gpt-4o, mock:echo to openai:gpt-4o-mini, mock:echo since "
        "pinned; review it and run `llmring lock pin`"])
    Ring(pinned).pin()
    assert frozen_lines()[:2] == (0, [])
    alias = 'alias = "summarizer"\n'
    pinned.write_text(pinned.read_text().replace(alias, alias + 'requires = ["tools"]\n'))
    assert frozen_lines()[:2] == (1, [
        "default/summarizer: params or requires changed since pinned; review it and run `llmring lock pin`"])


def test_a_description_edit_needs_no_new_pin(pinned):
    Ring(pinned).bind_alias("summarizer", ["openai:gpt-4o", "mock:echo"], description="weekly summaries")
    assert frozen_lines()[:2] == (0, [])


def test_profile_limits_the_check_to_one_profile(tmp_path):
    path = one_alias(tmp_path, ["mock:echo"], tail='[profiles.prod]\nname = "prod"\n\n[[profiles.prod.bindings]]\n'
                                                  'alias = "b"\nmodels = ["openai:gpt-4o"]\n')
    Ring(path).pin("prod")
    assert run("lock", "validate", "--frozen", "--profile", "prod").exit_code == 0
    assert frozen_lines()[:2] == (1, ["default/a: not pinned; review it and run `llmring lock pin`"])
    result = run("lock", "validate", "--frozen", "--profile", "staging")
    assert result.exit_code == 1 and "profile 'staging' is not in the lockfile; its profiles are default, prod" \
        in result.stderr and "Traceback" not in result.stderr


def test_frozen_json_and_ring_drift_say_the_same(pinned):
    registry_changed(lambda rows, _: rows["openai:gpt-4o-2024-08-06"].update(input_price=3.0))
    result = run("lock", "validate", "--frozen", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False and data["registry"] == "2026-09"
    assert data["frozen"] == [{"profile": "default", "alias": "summarizer", "model": "openai:gpt-4o", "message":
                               "price of openai:gpt-4o changed $2.50 -> $3.00 per 1M input tokens since pinned"}]
    assert [str(d) for d in Ring(pinned).drift()] == [
        "default/summarizer: price of openai:gpt-4o changed $2.50 -> $3.00 per 1M input tokens since pinned"]
    assert "frozen" not in json.loads(run("lock", "validate", "--json").stdout)


CI_SCRIPT = """
set -u
llmring lock init --file llmring.lock >/dev/null
llmring bind summarizer "openai:gpt-4o,mock:echo" >/dev/null
llmring lock pin >/dev/null
llmring lock validate --frozen >/dev/null || { echo "fresh pin failed --frozen"; exit 2; }
llmring bind summarizer "openai:gpt-4.1-mini,mock:echo" >/dev/null
if llmring lock validate --frozen 2>frozen.err >/dev/null; then echo "edit passed --frozen"; exit 3; fi
grep -q "^default/summarizer: models changed from openai:gpt-4o, mock:echo to openai:gpt-4.1-mini, mock:echo" \
  frozen.err || { cat frozen.err; exit 4; }
llmring lock pin >/dev/null
llmring lock validate --frozen >/dev/null || { echo "re-pin failed --frozen"; exit 5; }
echo ok
"""


def test_ci_script_pin_edit_fail_repin_pass(tmp_path):
    """What a CI job runs, through the installed `llmring` command in real processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMRING_", "OPENAI_", "ANTHROPIC_"))}
    env.update(PATH=f"{LLMRING.parent}{os.pathsep}{env.get('PATH', '')}", LLMRING_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run(["bash", "-c", CI_SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stdout + done.stderr
