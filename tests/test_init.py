"""`lock init`'s models and key variables come from the installed providers, not the core."""

import types

import pytest

import llmring.plugins
from llmring import init
from llmring.plugins import PluginRegistry, hookimpl
from llmring.provider import Provider


class HelloProvider(Provider):
    key_envs = ("HELLO_KEY",)
    starter_models = {"assistant": ["big", "small"], "summarizer": ["small"], "no-such-task": ["x"]}


class RehearsalProvider(Provider):  # answers offline, as the mock does
    offline = True
    starter_models = {"assistant": ["script"], "summarizer": ["gist"]}


@pytest.fixture
def with_hello(monkeypatch):
    @hookimpl
    def register_providers(register):
        register("hello", HelloProvider)
        register("bare", lambda settings: HelloProvider(settings))  # a factory with no attributes
        register("rehearsal", RehearsalProvider)

    plugin = types.ModuleType("hello_plugin")
    plugin.register_providers = register_providers
    plugins = PluginRegistry()
    plugins.register(plugin)
    monkeypatch.setattr(llmring.plugins, "registry", plugins)


def bindings(lf):
    return {b.alias: b.models for b in lf.profiles["default"].bindings}


def test_key_variables_come_from_the_provider_classes(with_hello):
    assert init.providers_with_keys({"HELLO_KEY": "h"}) == ["hello"]
    assert init.providers_with_keys({"GOOGLE_API_KEY": "g", "OPENAI_API_KEY": "o"}) == ["google", "openai"]
    assert init.providers_with_keys({}) == []


def test_a_plugin_providers_starter_models_are_bound(with_hello):
    lf = init.new_lockfile({"HELLO_KEY": "h"})
    assert bindings(lf) == {"assistant": ["hello:big", "hello:small"], "summarizer": ["hello:small"]}
    assert lf.profiles["default"].registry_versions == {"hello": "2026-08"}


def test_several_providers_give_one_model_each_in_prefix_order(with_hello):
    lf = init.new_lockfile({"HELLO_KEY": "h", "OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a"})
    assert bindings(lf) == {
        "assistant": ["anthropic:claude-sonnet-5", "hello:big", "openai:gpt-5.6-terra"],
        "summarizer": ["anthropic:claude-haiku-4-5-20251001", "hello:small", "openai:gpt-5.6-luna"],
        "extractor": ["anthropic:claude-haiku-4-5-20251001", "openai:gpt-5.6-luna"],
        "code-reviewer": ["anthropic:claude-opus-5", "openai:gpt-5.6-sol"],
    }


def test_starters_the_registry_rules_out_are_passed_over(monkeypatch):
    from llmring_providers.openai import OpenAIProvider

    monkeypatch.setattr(OpenAIProvider, "starter_models", {
        "assistant": ["no-such-model", "gpt-4o-mini"],
        "extractor": ["o3-deep-research", "gpt-4.1-mini"],  # o3-deep-research lacks json_schema
        "summarizer": ["claude-haiku-4-5-20251001"],  # another provider's name: unknown here
    })
    assert bindings(init.new_lockfile({"OPENAI_API_KEY": "o"})) == {
        "assistant": ["openai:gpt-4o-mini"], "extractor": ["openai:gpt-4.1-mini"]}


def test_with_no_key_the_offline_providers_stand_in(with_hello):
    """No key set: the providers that declare `offline` (the mock, and here a plugin's) give
    the starter lockfile, so a new project runs at once; the core names none of them."""
    lf = init.new_lockfile({})
    assert bindings(lf) == {"assistant": ["mock:echo", "rehearsal:script"], "summarizer": ["rehearsal:gist"]}
    assert all(b.description.startswith("Offline placeholder") and f"llmring bind {b.alias} " in b.description
               for b in lf.profiles["default"].bindings)
    assert lf.profiles["default"].registry_versions == {}
    with_key = bindings(init.new_lockfile({"HELLO_KEY": "h"}))  # a key set: no offline stand-ins
    assert not any(m.startswith(("rehearsal:", "mock:")) for models in with_key.values() for m in models)
