"""The plugin manager's guards, with in-process plugins (installed ones: test_plugin_install.py)."""

import json
import types

import pytest
from clitools import runner
from lockfiles import one_alias

import llmring.plugins
from llmring import Ring
from llmring.checks import check
from llmring.cli import cli
from llmring.exceptions import ProviderNotFoundError
from llmring.lockfile import Endpoint, read
from llmring.plugins import PluginRegistry, hookimpl
from llmring.provider import Provider


def plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, fn)
    return module


@hookimpl
def good(register):
    register("good", Provider)


def loaded(*plugins):
    reg = PluginRegistry()
    for p in plugins:
        reg.register(p)
    reg.load()
    return reg


def broken(reg):
    return {b.name: b.error for b in reg.broken}


def test_providers_come_through_the_pluggy_hook_and_name_their_package():
    reg = loaded(plugin("goodplugin", register_providers=good))
    assert reg.get("good").factory is Provider and reg.get("good").package == "goodplugin"
    assert reg.get("mock").package == "llmring" and reg.broken == []
    assert [c.name for c in reg.pm.get_hookcallers(reg.pm.get_plugin("goodplugin"))] == ["register_providers"]


def test_a_hook_that_raises_is_broken_and_registers_nothing_half_way():
    @hookimpl
    def half(register):
        register("half", Provider)
        raise RuntimeError("no network in the hook, please")

    reg = loaded(plugin("halfplugin", register_providers=half), plugin("goodplugin", register_providers=good))
    assert broken(reg) == {"halfplugin": "RuntimeError: no network in the hook, please."}
    assert "half" not in reg.providers and "good" in reg.providers
    assert reg.pm.get_plugin("halfplugin") is None  # unregistered: never called again


@pytest.mark.parametrize("args, shown", [(("bad:prefix", Provider), "'bad:prefix'"), (("", Provider), "''"),
                                         (("Upper", Provider), "'Upper'"),
                                         (("fine", "not callable"), "'not callable'")])
def test_register_refuses_a_bad_prefix_or_factory(args, shown):
    @hookimpl
    def bad(register):
        register(*args)

    error = broken(loaded(plugin("badplugin", register_providers=bad)))["badplugin"]
    assert error.startswith("it called register(") and shown in error and "lower-case letters" in error


def test_an_unknown_hook_name_is_reported():
    @hookimpl
    def register_provider(register):  # a typo of register_providers
        register("typo", Provider)

    reg = loaded(plugin("typoplugin", register_provider=register_provider))
    assert broken(reg)["typoplugin"] == ("it implements register_provider, which is not an llmring hook "
                                         "(known: call_finished, register_providers).")
    assert "typo" not in reg.providers


def test_a_plugin_with_no_hooks_is_reported():
    reg = loaded(plugin("emptyplugin"))
    assert broken(reg)["emptyplugin"] == "it implements no llmring hook, so it adds no provider."


def test_an_unknown_prefix_names_the_plugins_that_failed_to_load():
    reg = loaded(plugin("emptyplugin"))
    with pytest.raises(ProviderNotFoundError) as e:
        reg.get("nosuch")
    assert str(e.value) == ("Provider 'nosuch' is not installed (installed: anthropic, google, mock, ollama, openai); "
                            "pip install its plugin (e.g. llmring-nosuch) or declare [providers.nosuch] in the "
                            "lockfile; plugin 'emptyplugin' (emptyplugin) failed to load and may be the one (it "
                            "implements no llmring hook, so it adds no provider).")


def test_a_second_plugin_cannot_take_a_prefix_over():
    @hookimpl
    def impostor(register):
        register("extra", Provider)
        register("openai", Provider)

    reg = loaded(plugin("impostor_plugin", register_providers=impostor))
    assert broken(reg)["impostor_plugin"] == "it registers 'openai', which llmring provides already; uninstall one " \
                                             "of the two."
    assert reg.get("openai").package == "llmring" and "extra" not in reg.providers


def test_an_endpoint_is_served_by_its_type_and_a_bare_prefix_by_its_name():
    reg = loaded(plugin("goodplugin", register_providers=good))
    endpoint = Endpoint(type="good", base_url="http://127.0.0.1:9/v1")
    assert reg.serving("openai", {"openai": endpoint}) == (reg.providers["good"], endpoint)  # the table wins
    assert reg.serving("openai", {"other": endpoint}) == (reg.providers["openai"], None)
    assert reg.serving("nosuch", {}) == (None, None)
    unknown = Endpoint(type="nosuchtype")
    assert reg.serving("local", {"local": unknown}) == (None, unknown)
    assert reg.missing("local", unknown, "/x/llmring.lock") == (
        "type 'nosuchtype' of [providers.local] in /x/llmring.lock is not installed (installed: anthropic, good, "
        "google, mock, ollama, openai); pip install its plugin (e.g. llmring-nosuchtype)")


def test_an_endpoint_whose_type_failed_to_load_names_that_plugin():
    reg = loaded(plugin("emptyplugin"))
    assert reg.missing("local", Endpoint(type="emptyplugin")) == (
        "the plugin for type 'emptyplugin' of [providers.local] (emptyplugin) failed to load (it implements no "
        "llmring hook, so it adds no provider); fix or reinstall it (installed: anthropic, google, mock, ollama, "
        "openai)")


def test_validate_explain_providers_and_a_call_say_one_thing_of_a_type_not_installed(tmp_path, monkeypatch):
    path = one_alias(tmp_path, ["local:m", "mock:echo"],
                     tail='[providers.local]\ntype = "nosuchtype"\nbase_url = "http://127.0.0.1:9/v1"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(llmring.plugins, "registry", PluginRegistry())  # only what is installed
    said = ("type 'nosuchtype' of [providers.local] is not installed (installed: anthropic, google, mock, ollama, "
            "openai); pip install its plugin (e.g. llmring-nosuchtype)")
    assert f"{said} (used by a)" in [f.message for f in check(read(path)) if f.level == "error"]
    ring = Ring(lockfile_path=str(path))
    assert ring.explain("a").models[0].problem == said
    result = runner().invoke(cli, ["providers", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["prefix"]: r["problem"] for r in json.loads(result.stdout)["providers"]}["local"] == said
    answer = ring.chat("a", "still answered")
    assert answer.content == "still answered"
    assert answer.attempts[0].message == "T" + said[1:].replace("[providers.local]", f"[providers.local] in {path}") \
        + "."
