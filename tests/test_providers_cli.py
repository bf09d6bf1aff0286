"""`llmring providers`: where each prefix sends its key, lockfile tables that redirect a
prefix or send an unusual key variable, and broken plugins."""

import json
import types

import pytest
from clitools import runner

import llmring.plugins
from llmring.cli import cli
from llmring.lockfile import Endpoint
from llmring.plugins import PluginRegistry, hookimpl, registry
from llmring.provider import Provider
from llmring.trust import endpoint_warnings

SECRET = "sk-this-value-must-never-be-shown-0123456789"
HEAD = 'version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\nname = "default"\n'


def providers(*args):
    result = runner().invoke(cli, ["providers", *args], env={"OPENAI_API_KEY": SECRET}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "sk-this" not in result.output
    return result.stdout


def rows(*args):
    return {r["prefix"]: r for r in json.loads(providers("--json", *args))["providers"]}


def test_each_prefix_shows_its_base_url_and_key_variable_never_the_key():
    table = rows()
    assert table["openai"]["base_url"] == "https://api.openai.com/v1"
    assert table["openai"]["key_env"] == ["OPENAI_API_KEY"]
    assert table["openai"]["ready"] and table["openai"]["warnings"] == []
    assert table["google"]["key_env"] == ["GEMINI_API_KEY", "GOOGLE_API_KEY"] and not table["google"]["ready"]
    assert table["mock"]["base_url"] is None and table["mock"]["key_env"] == []
    lines = {line.split()[0]: line for line in providers().splitlines()}
    assert lines["openai"].split() == ["openai", "llmring", "https://api.openai.com/v1", "OPENAI_API_KEY", "ready"]
    assert lines["mock"].split() == ["mock", "llmring", "-", "(no", "key)", "ready"]


def test_a_lockfile_that_redirects_a_prefix_or_sends_an_unusual_key_is_marked(tmp_path):
    (tmp_path / "llmring.lock").write_text(HEAD + """
[providers.openai]
type = "openai"
base_url = "http://evil.example/v1"
api_key_env = "AWS_SECRET_ACCESS_KEY"
allow_http = true

[providers.groq]
type = "openai"
base_url = "https://api.groq.com/openai/v1"
api_key_env = "GROQ_API_KEY"

[providers.local]
type = "openai"
base_url = "http://127.0.0.1:8000/v1"
""")
    table = rows()
    openai = table["openai"]  # the lockfile's table replaces the built-in row: it is what calls use
    assert openai["package"] == "llmring.lock (openai endpoint)" and openai["base_url"] == "http://evil.example/v1"
    assert openai["key_env"] == ["AWS_SECRET_ACCESS_KEY"]
    assert openai["warnings"] == [
        "[providers.openai] takes over the installed provider 'openai' (llmring): its calls go to "
        "http://evil.example/v1 instead of https://api.openai.com/v1.",
        "[providers.openai] sends the variable AWS_SECRET_ACCESS_KEY as its API key, not the usual OPENAI_API_KEY; "
        "make sure that secret is meant for http://evil.example/v1.",
        "[providers.openai] allows plain http (allow_http = true): its requests and AWS_SECRET_ACCESS_KEY travel "
        "unencrypted to http://evil.example/v1."]
    assert table["groq"]["warnings"] == [] and table["local"]["warnings"] == []
    assert table["local"]["key_env"] == [] and table["local"]["ready"]
    text = providers()
    assert [line.split()[0] for line in text.splitlines()].count("openai") == 1
    assert "\n  warning: [providers.openai] takes over the installed provider 'openai'" in text


@pytest.mark.parametrize("endpoint, concern", [
    (Endpoint("openai", "https://api.groq.com/openai/v1", "OPENAI_API_KEY"),
     "sends the variable OPENAI_API_KEY as its API key, not the usual GROQ_API_KEY; make sure that secret is "
     "meant for https://api.groq.com/openai/v1."),  # the OpenAI key sent to another host
    (Endpoint("openai", None, "OPENAI_API_KEY"), None),  # the type's own host and key
    (Endpoint("openai", "https://api.openai.com/v1/", "GROQ_API_KEY"), None),
    (Endpoint("nosuch", "https://x.example", "SOME_TOKEN"), "sends the variable SOME_TOKEN as its API key, not "
                                                            "the usual GROQ_API_KEY; make sure that secret is meant "
                                                            "for https://x.example."),
])
def test_which_key_variables_are_usual(endpoint, concern):
    registry.load()
    found = endpoint_warnings("groq", endpoint, registry.providers)
    assert found == ([f"[providers.groq] {concern}"] if concern else [])


def test_broken_plugins_and_providers_that_cannot_be_built_are_listed(monkeypatch):
    class Exploding(Provider):
        def __init__(self, settings):
            raise RuntimeError("no config file")

    @hookimpl
    def register_providers(register):
        register("boom", Exploding)

    good, empty = types.ModuleType("boom_plugin"), types.ModuleType("empty_plugin")
    good.register_providers = register_providers
    plugins = PluginRegistry()
    plugins.register(good)
    plugins.register(empty)
    monkeypatch.setattr(llmring.plugins, "registry", plugins)
    out = json.loads(providers("--json"))
    assert out["broken"] == [{"name": "empty_plugin", "package": "empty_plugin",
                              "error": "it implements no llmring hook, so it adds no provider."}]
    boom = {r["prefix"]: r for r in out["providers"]}["boom"]
    assert not boom["ready"] and boom["problem"] == "its provider cannot be set up (RuntimeError: no config file)"
    text = providers()
    assert "empty_plugin  empty_plugin  BROKEN: it implements no llmring hook" in text
    assert "not configured: its provider cannot be set up (RuntimeError: no config file)" in text
