"""`llmring explain ALIAS` and ring.explain(alias): the models in the order they are tried,
where the binding comes from, each provider and key (never the key's value), what the
registry says, limits, pins, and which requests would skip which model, by the walker's own rule."""

import json

import pytest
from clitools import runner

from llmring import AsyncRing, Ring
from llmring.cli import cli
from llmring.exceptions import AliasNotFoundError

SECRET = "sk-explain-secret-1234567890"

REGISTRY = {"version": "2026-12-01", "models": [
    {"provider": "openai", "name": "gpt-full", "input_price": 1.0, "output_price": 4.0, "context_window": 128000,
     "max_output": 16000, "capabilities": ["tools", "vision", "json_schema", "json_mode"]},
    {"provider": "openai", "name": "gpt-text", "input_price": 0.1, "output_price": 0.4, "context_window": 32000,
     "capabilities": ["tools", "json_mode"]},
    {"provider": "openai", "name": "gpt-plain", "input_price": 0.05, "output_price": 0.2,
     "capabilities": ["streaming"]},
    {"provider": "anthropic", "name": "claude-old", "input_price": 3.0, "output_price": 15.0,
     "capabilities": ["tools", "vision"], "deprecation_date": "2020-01-01", "successor": "claude-new"},
]}

LOCK = '''version = "1.0"
default_profile = "default"

[limits.openai]
rpm = 500

[limits."openai:gpt-text"]
tpm = 10000

[providers.local]
type = "openai"
base_url = "https://llm.internal.example/v1"
api_key_env = "LOCAL_LLM_KEY"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-full", "openai:gpt-text", "openai:gpt-plain", "mock:echo"]
description = "Short summaries"
params = { temperature = 0.2 }
budget = { usd_per_day = 5.0, usd_per_month = 100.0 }

[[profiles.default.bindings]]
alias = "looker"
models = ["openai:gpt-text", "anthropic:claude-old", "local:any", "nosuch:model"]
requires = ["vision"]

[profiles.prod]
name = "prod"
extends = "default"
'''


@pytest.fixture
def lock(tmp_path):
    cache = tmp_path / ".llmring-cache"
    cache.mkdir()
    (cache / "registry.json").write_text(json.dumps(REGISTRY))
    path = tmp_path / "llmring.lock"
    path.write_text(LOCK)
    return path


def test_each_model_in_order_with_its_provider_key_registry_data_and_limits(lock, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    ex = Ring().explain("summarizer", profile="prod")
    assert (ex.alias, ex.profile, ex.origin, ex.chain) == ("summarizer", "prod", "default", ["prod", "default"])
    assert (ex.description, ex.params, ex.requires, ex.lockfile) == (
        "Short summaries", {"temperature": 0.2}, [], str(lock))
    assert (ex.budget.usd_per_day, ex.budget.usd_per_month) == (5.0, 100.0)
    assert [m.ref for m in ex.models] == ["openai:gpt-full", "openai:gpt-text", "openai:gpt-plain", "mock:echo"]
    full, text, plain, echo = ex.models
    assert (full.installed, full.package, full.key_env, full.key_set, full.problem) == (
        True, "llmring", ["OPENAI_API_KEY"], True, None)
    assert (full.context_window, full.max_output, full.input_price, full.output_price) == (128000, 16000, 1.0, 4.0)
    assert full.limits == {"openai": {"rpm": 500}}
    assert text.limits == {"openai:gpt-text": {"tpm": 10000}, "openai": {"rpm": 500}}
    assert (echo.known, echo.key_env, echo.key_set, echo.capabilities) == (False, [], None, [])
    assert ex.skips() == {"tools": ["openai:gpt-plain"], "images": ["openai:gpt-text", "openai:gpt-plain"],
                          "json_schema": ["openai:gpt-plain"]}
    assert all(m.pinned is None and not m.lacks_required for m in ex.models)


NOSUCH = ("provider 'nosuch' is not installed (installed: anthropic, google, mock, ollama, openai); pip install its "
          "plugin (e.g. llmring-nosuch) or declare [providers.nosuch] in the lockfile")


def test_missing_keys_endpoints_uninstalled_providers_and_requirements(lock):
    ex = AsyncRing().explain("looker")
    text, old, local, nosuch = ex.models
    assert (text.key_set, text.problem) == (False, "openai needs an API key: set OPENAI_API_KEY.")
    assert text.lacks_required == "vision" and not old.lacks_required
    assert (old.deprecated, old.active) == ("2020-01-01", True)
    assert (local.package, local.key_env, local.key_set) == (
        "openai endpoint in the lockfile", ["LOCAL_LLM_KEY"], False)
    assert (local.known, local.lacks_required) == (False, "")  # unknown capabilities: tried, as the walker does
    assert (nosuch.installed, nosuch.problem) == (False, NOSUCH)


def test_what_explain_says_is_skipped_the_walker_skips(lock, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    ring = Ring()
    ring.bind_alias("tooling", ["openai:gpt-plain", "mock:echo"])
    assert ring.explain("tooling").skips() == {"tools": ["openai:gpt-plain"], "images": ["openai:gpt-plain"],
                                               "json_schema": ["openai:gpt-plain"]}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    r = ring.chat("tooling", "hi", tools=[tool])
    assert server.requests == []
    assert [(a.model, a.skipped, a.kind) for a in r.attempts] == [
        ("openai:gpt-plain", True, "unsupported"), ("mock:echo", False, None)]


def test_the_cli_prints_the_explanation_and_never_a_key(lock, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LOCAL_LLM_KEY", SECRET)
    result = runner().invoke(cli, ["explain", "summarizer", "--profile", "prod"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert SECRET not in out + result.stderr
    lines = out.splitlines()
    assert lines[0] == "summarizer  (profile prod, from default; looked up in prod → default)"
    assert lines[1] == f"  lockfile: {lock} (cwd)"
    assert "  description: Short summaries" in lines and "  params: temperature=0.2" in lines
    assert "  budget: $5.00 a day, $100.00 a month" in lines
    assert lines[lines.index("1. openai:gpt-full") + 1:lines.index("2. openai:gpt-text")] == [
        "     provider: openai (llmring), installed, key OPENAI_API_KEY is set",
        "     registry: context 128,000 tokens; max output 16,000; $1.00 in / $4.00 out per 1M tokens; "
        "capabilities: tools, vision, json_schema, json_mode",
        "     limits:   [limits.openai] rpm = 500"]
    assert "     registry: not in the registry (capabilities unknown: tried for every request; cost unknown)" in lines
    assert lines[-3:] == ["A request needing tools would skip: openai:gpt-plain",
                          "A request needing images would skip: openai:gpt-text, openai:gpt-plain",
                          "A request needing a JSON schema would skip: openai:gpt-plain"]
    looker = runner().invoke(cli, ["explain", "looker"]).stdout.splitlines()
    assert "     skipped:  always, it lacks vision, which the binding requires" in looker
    assert "     provider: local (openai endpoint in the lockfile), installed, key LOCAL_LLM_KEY is set" in looker
    assert f"     provider: NOT INSTALLED: {NOSUCH}" in looker
    assert any("DEPRECATED since 2020-01-01" in line for line in looker)


def test_json_output_is_the_python_api_as_data(lock, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    result = runner().invoke(cli, ["explain", "summarizer", "--json"])
    assert result.exit_code == 0 and SECRET not in result.stdout
    data = json.loads(result.stdout)
    assert data == Ring().explain("summarizer").to_dict()
    assert data["models"][0]["key_env"] == ["OPENAI_API_KEY"] and data["models"][0]["key_set"] is True
    assert data["skips"]["images"] == ["openai:gpt-text", "openai:gpt-plain"]
    assert (data["origin"], data["chain"], data["budget"]) == (
        "default", ["default"], {"usd_per_day": 5.0, "usd_per_month": 100.0})
    assert json.loads(runner().invoke(cli, ["explain", "looker", "--json"]).stdout)["budget"] is None


def test_an_unknown_alias_exits_1_with_one_clear_line(lock):
    result = runner().invoke(cli, ["explain", "summarizr"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == (f"Error: Alias 'summarizr' is not bound in profile 'default' of {lock}. "
                                     "Did you mean 'summarizer'? Bind it with `llmring bind summarizr provider:model`.")
    with pytest.raises(AliasNotFoundError):
        Ring().explain("summarizr")
    bad = runner().invoke(cli, ["explain", "summarizer", "--profile", "nope"])
    assert bad.exit_code == 1 and "profile 'nope' is not in the lockfile" in bad.stderr


def test_a_provider_model_reference_is_explained_without_a_binding(lock):
    ex = Ring().explain("openai:gpt-text")
    assert (ex.chain, ex.origin, ex.requires, [m.ref for m in ex.models]) == ([], None, [], ["openai:gpt-text"])
    out = runner().invoke(cli, ["explain", "openai:gpt-text"]).stdout
    assert out.splitlines()[0] == "openai:gpt-text  (a provider:model reference, not an alias)"


def test_a_pinned_model_is_explained_as_the_snapshot_it_calls(lock, monkeypatch):
    snapshot = {"provider": "openai", "name": "gpt-text-2026-01-01", "input_price": 0.2, "output_price": 0.8,
                "context_window": 64000, "capabilities": ["tools", "vision", "json_mode"]}
    (lock.parent / ".llmring-cache" / "registry.json").write_text(
        json.dumps({**REGISTRY, "models": REGISTRY["models"] + [snapshot]}))
    pin = ('{ hash = "sha256:00", registry = "2026-12-01", pinned_at = "2026-12-02T12:00:00Z", models = ['
           '{ model = "openai:gpt-text", snapshot = "openai:gpt-text-2026-01-01" }, { model = "mock:echo" }] }')
    lock.write_text(LOCK + f'\n[[profiles.default.bindings]]\nalias = "pinned"\nmodels = ["openai:gpt-text", '
                           f'"mock:echo"]\npin = {pin}\n')
    ex = Ring().explain("pinned")
    text, echo = ex.models
    assert (text.ref, text.pinned, text.input_price, text.context_window) == (
        "openai:gpt-text", "openai:gpt-text-2026-01-01", 0.2, 64000)
    assert "images" not in text.skipped_for  # the snapshot has vision; the floating id's row does not
    # the walker counts a pinned snapshot's calls against the id the binding names as well
    assert text.limits == {"openai:gpt-text": {"tpm": 10000}, "openai": {"rpm": 500}}
    assert (echo.ref, echo.pinned) == ("mock:echo", None)
    out = runner().invoke(cli, ["explain", "pinned"]).stdout.splitlines()
    assert out[out.index("1. openai:gpt-text") + 3] == "     pinned:   calls openai:gpt-text-2026-01-01"
