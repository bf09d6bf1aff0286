"""`llmring list`, `registry`, the registry-driven `lock init`, and `lock validate` checks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import runner
from httpfake import Reply

from llmring import Ring, registry
from llmring.cli import cli


def run(*args, env=None):
    result = runner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result


def write_lock(tmp_path, body, head='version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\n'
                                    'name = "default"\n'):
    path = tmp_path / "llmring.lock"
    path.write_text(head + body)
    return path


def binding(alias, models, extra=""):
    refs = ", ".join(f'"{m}"' for m in models)
    return f'\n[[profiles.default.bindings]]\nalias = "{alias}"\nmodels = [{refs}]\n{extra}'


def test_list_shows_prices_active_first():
    result = run("list", "--provider", "anthropic")
    assert result.exit_code == 0
    lines = [ln for ln in result.stdout.splitlines()[1:] if ln.strip()]
    assert lines[0].startswith("anthropic:") and "active" in lines[0]
    haiku = next(ln for ln in lines if ln.startswith("anthropic:claude-3-5-haiku-20241022"))
    assert "$0.8" in haiku and "$4" in haiku and "deprecated 2026-02-19" in haiku
    statuses = ["active" if ln.rstrip().endswith("active") and "inactive" not in ln else "other" for ln in lines]
    assert statuses == sorted(statuses)  # every active model before any other


def test_list_json_is_machine_readable_and_filters_non_chat():
    result = run("list", "--provider", "openai", "--json")
    data = json.loads(result.stdout)
    refs = {m["ref"]: m for m in data["models"]}
    assert refs["openai:gpt-4o-mini"]["input_price"] == 0.15
    assert "openai:text-embedding-3-small" not in refs
    everything = json.loads(run("list", "--provider", "openai", "--json", "--all").stdout)
    assert any(m["ref"] == "openai:text-embedding-3-small" for m in everything["models"])


def test_list_unknown_provider_is_a_usage_error():
    result = run("list", "--provider", "nosuch")
    assert result.exit_code == 2 and "nosuch" in result.stderr


def test_list_live_asks_the_provider(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-test-key")
    server.add("GET", "/v1/models", Reply(json={"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model"}, {"id": "ft:custom-thing", "object": "model"}]}))
    result = run("list", "--provider", "openai", "--live")
    assert result.exit_code == 0
    assert "openai:gpt-4o-mini\n" in result.stdout
    assert "openai:ft:custom-thing  (not in the registry" in result.stdout
    assert server.last().headers["authorization"] == "Bearer sk-live-test-key"


def test_list_live_on_a_provider_without_a_models_endpoint_is_one_line(monkeypatch):
    import types

    import llmring.plugins
    from llmring.plugins import PluginRegistry, hookimpl
    from llmring.provider import Provider

    @hookimpl
    def register_providers(register):
        register("plain", Provider)

    plugin = types.ModuleType("plain_plugin")
    plugin.register_providers = register_providers
    plugins = PluginRegistry()
    plugins.register(plugin)
    monkeypatch.setattr(llmring.plugins, "registry", plugins)
    result = run("list", "--provider", "plain", "--live")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == ("Error: plain cannot list its models; `llmring list --provider plain` shows what the "
                             "registry knows.\n")


def test_init_with_only_anthropic_binds_anthropic_models(tmp_path):
    result = run("lock", "init", env={"ANTHROPIC_API_KEY": "sk-ant-x"})
    assert result.exit_code == 0, result.output
    ring = Ring(tmp_path / "llmring.lock")
    aliases = ring.lockfile.profiles["default"].bindings
    assert {b.alias for b in aliases} >= {"summarizer", "assistant"}
    assert not {"fast", "balanced", "deep"} & {b.alias for b in aliases}
    reg = registry.load()
    for b in aliases:
        assert all(m.startswith("anthropic:") for m in b.models)
        assert all(reg.find(m).active and not reg.find(m).deprecated() for m in b.models)
        assert len(b.models) >= 2  # a fallback within the one provider
    assert ring.lockfile.profiles["default"].registry_versions == {"anthropic": reg.version}


def test_init_with_two_providers_falls_back_across_them(tmp_path):
    run("lock", "init", env={"OPENAI_API_KEY": "sk-x", "GEMINI_API_KEY": "g-x"})
    ring = Ring(tmp_path / "llmring.lock")
    for b in ring.lockfile.profiles["default"].bindings:
        assert {m.partition(":")[0] for m in b.models} == {"openai", "google"}


def test_init_without_keys_works_offline(tmp_path):
    run("lock", "init")
    with Ring(tmp_path / "llmring.lock") as ring:
        assert ring.resolve_alias("assistant") == "mock:echo"
        assert ring.chat("assistant", "offline").content == "offline"


def test_validate_warns_but_passes_and_strict_fails(tmp_path):
    write_lock(tmp_path, binding("summarizer", ["openai:gpt4o-mini"]))
    result = run("lock", "validate", env={"OPENAI_API_KEY": "sk-x"})
    assert result.exit_code == 0
    assert "openai:gpt-4o-mini" in result.stderr  # the suggestion
    assert "no fallback" in result.stderr
    assert run("lock", "validate", "--strict", env={"OPENAI_API_KEY": "sk-x"}).exit_code == 1


def test_validate_reports_deprecation_with_successor_and_missing_keys(tmp_path):
    write_lock(tmp_path, binding("summarizer", ["anthropic:claude-3-5-haiku-20241022", "openai:gpt-4o-mini"]))
    result = run("lock", "validate", "--json")
    findings = json.loads(result.stdout)["findings"]
    messages = " | ".join(f["message"] for f in findings)
    assert "deprecated on 2026-02-19; move to anthropic:claude-haiku-4-5-20251001" in messages
    assert "set ANTHROPIC_API_KEY" in messages and "set OPENAI_API_KEY" in messages
    assert result.exit_code == 0


def test_validate_errors_for_uninstalled_provider_and_missing_capability(tmp_path):
    write_lock(tmp_path, binding("a", ["nosuch:model", "mock:echo"])
               + binding("b", ["openai:o3-deep-research", "openai:gpt-4o-mini"], 'requires = ["tools"]\n'))
    result = run("lock", "validate", env={"OPENAI_API_KEY": "sk-x"})
    assert result.exit_code == 1
    assert "provider 'nosuch' is not installed" in result.stderr
    assert "openai:o3-deep-research lacks tools" in result.stderr
    assert "gpt-4o-mini lacks" not in result.stderr


def test_an_unknown_capability_is_a_lockfile_error_with_its_line(tmp_path):
    write_lock(tmp_path, binding("c", ["mock:echo", "mock:echo2"], 'requires = ["telepathy"]\n'))
    result = run("lock", "validate")
    assert result.exit_code == 1
    assert "llmring.lock:" in result.stderr and "'telepathy', which is not a capability" in result.stderr


def test_bind_warns_about_deprecated_and_unknown_models_but_binds(tmp_path):
    write_lock(tmp_path, "")
    result = run("bind", "summarizer", "anthropic:claude-3-5-haiku-20241022,openai:gpt4o-mini")
    assert result.exit_code == 0
    assert "deprecated" in result.stderr and "did you mean openai:gpt-4o-mini" in result.stderr
    assert Ring(tmp_path / "llmring.lock").resolve("summarizer").models[1] == "openai:gpt4o-mini"


def test_registry_update_and_info(tmp_path):
    doc = tmp_path / "reg.json"
    doc.write_text(json.dumps({"version": "2026-12", "models": [{"provider": "openai", "name": "gpt-9"}]}))
    result = run("registry", "update", "--url", doc.as_uri())
    assert result.exit_code == 0 and "2026-12" in result.stdout
    info = json.loads(run("registry", "info", "--json").stdout)
    assert info["version"] == "2026-12" and info["models"] == 1


def test_registry_update_into_an_unusable_cache_folder_is_one_sentence(tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = run("registry", "update", "--url", registry.BUNDLED.as_uri(), env={"LLMRING_CACHE_DIR": "a-file"})
    assert result.exit_code == 1
    assert result.stderr == ("Error: Cannot save the registry to a-file/registry.json (File exists); set "
                             "LLMRING_CACHE_DIR to a folder you can write to.\n")


@pytest.mark.parametrize("url, fragment", [("http://example.invalid/r.json", "https"),
                                           ("file:///nonexistent/registry.json", "Cannot read"),
                                           ("file://evil.example/registry.json", "must be a local path")])
def test_registry_update_failures_are_one_line(url, fragment):
    result = run("registry", "update", "--url", url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and fragment in result.stderr and "Traceback" not in result.output


def test_an_unusable_cache_is_one_sentence_for_list_bind_and_chat(tmp_path):
    """Before: a RecursionError traceback, and `bind` wrote the binding then exited 1."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "registry.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    write_lock(tmp_path, "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMRING_")}
    env["LLMRING_CACHE_DIR"] = str(cache)
    llmring = Path(sys.executable).parent / "llmring"
    for args, out in ((["list", "--provider", "openai"], "openai:gpt-4o-mini"), (["bind", "x", "mock:echo"], ""),
                      (["chat", "hello", "--model", "x"], "hello")):
        done = subprocess.run([str(llmring), *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=60)
        lines = done.stderr.splitlines()
        assert done.returncode == 0, done.stderr
        assert out in done.stdout
        assert [line for line in lines if "registry" in line][:1] == [
            f"The cached registry {cache / 'registry.json'} is unusable (it is JSON nested too deeply to be a "
            "registry); using the bundled snapshot. Run `llmring registry update` to fetch a fresh one."], args
        assert sum("cached registry" in line for line in lines) == 1
        assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    assert Ring(tmp_path / "llmring.lock").resolve_alias("x") == "mock:echo"
