"""The bundled registry, cost, capability skips, and `registry update`."""

import csv
import json
import os
import threading
import time
import warnings
from pathlib import Path

import faults
import pytest
from faults import FaultServer
from httpfake import Reply

from llmring import Ring, curation, registry
from llmring.exceptions import ConfigurationError
from llmring.types import Usage

SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / "registry-facts.csv"


def write_lock(tmp_path, body):
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\nname = "default"\n' + body)
    return path


def test_bundled_snapshot_is_curated():
    reg = registry.load()
    assert reg.version == "2026-08" and reg.source == "bundled"
    names = [(m.provider, m.name) for m in reg.models]
    assert len(names) == len(set(names))
    assert not [n for p, n in names if n != n.lower() and (p, n.lower()) in set(names)]
    assert all(m.context_window is None or m.context_window > 0 for m in reg.models)
    assert all(not (m.max_output and m.context_window and m.max_output > m.context_window) for m in reg.models)
    assert not any(m.name.endswith("-deprecated") for m in reg.models)


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared registry CSV is not beside this checkout")
def test_bundled_snapshot_is_what_curate_makes_of_the_csv():
    with open(SHARED_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert curation.curate(rows, "2026-08") == json.loads(registry.BUNDLED.read_text())


def test_successors_and_mode_rules_are_curation_data_not_code():
    row = {"provider": "acme", "model_name": "acme-old", "is_active": "True"}
    rows = [row, {**row, "model_name": "acme-voice-1"}, {**row, "model_name": "acme-embed-2"}]
    editorial = {"successors": {"acme:acme-old": "acme:acme-new"},
                 "modes": [{"mode": "audio", "contains": "voice"}, {"mode": "embedding", "names": ["acme-embed-2"]}]}
    models = {m["name"]: m for m in curation.curate(rows, "v", editorial)["models"]}
    assert models["acme-old"]["successor"] == "acme:acme-new" and models["acme-old"]["mode"] == "chat"
    assert models["acme-voice-1"]["mode"] == "audio" and models["acme-embed-2"]["mode"] == "embedding"
    bundled = json.loads(curation.CURATION.read_text())
    assert bundled["successors"]["openai:o1-mini"] == "openai:o4-mini"
    assert curation.mode("text-embedding-3-small", bundled["modes"]) == "embedding"
    assert curation.mode("gpt-3.5-turbo-instruct", bundled["modes"]) == "completion"
    assert curation.mode("gpt-4o", bundled["modes"]) == "chat"


def test_lookup_by_floating_alias_and_lifecycle():
    reg = registry.load()
    haiku = reg.find("anthropic:claude-3-5-haiku-latest")
    assert haiku.name == "claude-3-5-haiku-20241022" and haiku.dated
    assert haiku.deprecated() and haiku.successor == "anthropic:claude-haiku-4-5-20251001"
    assert reg.find("openai:no-such-model") is None
    assert "openai:gpt-4o-mini" in reg.closest("openai:gpt4o-mini")
    listed = reg.for_provider("anthropic")
    assert listed[0].active and not listed[-1].active


def test_cost_is_tokens_times_price(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    server.add("POST", "/v1/chat/completions", Reply(json={
        "id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}))
    with Ring(write_lock(tmp_path, "")) as ring:
        r = ring.chat("openai:gpt-4o-mini", "hi")
    info = registry.load().find("openai:gpt-4o-mini")
    assert r.cost == pytest.approx((1000 * info.input_price + 500 * info.output_price) / 1e6)
    assert r.cost_note is None


def test_unpriced_models_have_no_cost_and_say_why(tmp_path):
    with Ring(write_lock(tmp_path, "")) as ring:
        r = ring.chat("mock:echo", "hi")
    assert r.cost is None and "no price" in r.cost_note


def test_lockfile_endpoint_prices(tmp_path, server):
    server.add("POST", "/v1/chat/completions", Reply(json={
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2_000_000, "completion_tokens": 1_000_000, "total_tokens": 3_000_000}}))
    path = write_lock(tmp_path, f'\n[providers.local]\ntype = "openai"\nbase_url = "{server.url}/v1"\n'
                                'prices = { "m" = { input = 0.5, output = 2.0 } }\n')
    with Ring(path) as ring:
        r = ring.chat("local:m", "hi")
    assert r.cost == pytest.approx(2 * 0.5 + 1 * 2.0)


def test_model_lacking_a_capability_is_skipped_before_any_call(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert not registry.load().find("openai:o3-deep-research").has("tools")
    path = write_lock(tmp_path, '\n[[profiles.default.bindings]]\nalias = "a"\n'
                                'models = ["openai:o3-deep-research", "mock:echo"]\n')
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with Ring(path) as ring:
        r = ring.chat("a", "hi", tools=[tool])
    assert server.requests == []
    assert r.attempts[0].skipped and r.attempts[0].kind == "unsupported" and "tools" in r.attempts[0].message
    assert r.model == "mock:echo"


def test_update_from_a_file_url_replaces_the_cache(tmp_path):
    doc = {"version": "2026-11", "models": [{"provider": "openai", "name": "gpt-9", "input_price": 1.0,
                                              "output_price": 2.0, "context_window": 1000}]}
    src = tmp_path / "reg.json"
    src.write_text(json.dumps(doc))
    reg = registry.update(src.as_uri())
    assert reg.version == "2026-11"
    assert registry.cache_path().exists()
    assert registry.load().find("openai:gpt-9").output_price == 2.0
    assert registry.load().source == str(registry.cache_path())


@pytest.mark.parametrize("content, fragment", [
    (b"not json", "not JSON"),
    (json.dumps({"version": "x", "models": []}).encode(), "no models"),
    (json.dumps({"version": "x", "models": [{"provider": "a", "name": "b", "input_price": -1}]}).encode(),
     "plausible"),
    (json.dumps({"models": []}).encode(), "version"),
    (json.dumps({"version": "x", "models": [{"provider": "a", "name": "b", "context_window": "lots"}]}).encode(),
     "expected int, not 'lots' @ a:b.context_window"),
    (json.dumps({"version": "x", "models": [{"provider": "a", "name": "b", "aliases": "b-latest"}]}).encode(),
     "expected list"),
    (json.dumps({"version": "x", "models": [{"provider": "a", "name": "b", "input_price": True}]}).encode(),
     "expected a number"),
])
def test_bad_registry_is_refused_and_the_cache_kept(tmp_path, content, fragment):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"version": "1", "models": [{"provider": "a", "name": "b"}]}))
    registry.update(good.as_uri())
    before = registry.cache_path().read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(ConfigurationError, match=fragment):
        registry.update(bad.as_uri())
    assert registry.cache_path().read_bytes() == before


def test_only_https_or_file_urls(tmp_path):
    with pytest.raises(ConfigurationError, match="https"):
        registry.update("http://example.invalid/registry.json")


def test_oversized_registry_is_refused(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (registry.MAX_BYTES + 10))
    with pytest.raises(ConfigurationError, match="larger"):
        registry.update(big.as_uri())


def test_corrupt_cache_falls_back_to_the_bundled_snapshot_with_one_log_line(caplog):
    path = registry.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{broken")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a UserWarning (with its source line) is what users saw before
        reg = registry.load(refresh=True)
    assert reg.source == "bundled"
    [record] = caplog.records
    assert record.name == "llmring.registry" and record.levelname == "WARNING"
    assert record.getMessage().startswith(f"The cached registry {path} is unusable (it is not JSON")
    assert record.getMessage().endswith("using the bundled snapshot. "
                                        "Run `llmring registry update` to fetch a fresh one.")


NESTED = b"[" * 200_000 + b"]" * 200_000


def test_deeply_nested_json_is_refused_not_a_recursion_error(tmp_path):
    with pytest.raises(ValueError, match="nested too deeply"):
        registry.parse(NESTED)
    src = tmp_path / "nested.json"
    src.write_bytes(NESTED)
    with pytest.raises(ConfigurationError, match="not usable: it is JSON nested too deeply"):
        registry.update(src.as_uri())
    assert not registry.cache_path().exists()


def test_a_deeply_nested_cache_falls_back_to_the_bundled_snapshot(caplog):
    path = registry.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(NESTED)
    assert registry.load(refresh=True).source == "bundled"
    assert "nested too deeply" in caplog.records[0].getMessage()


def test_an_oversized_cache_is_not_read_whole(caplog):
    path = registry.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b" " * (registry.MAX_BYTES + 10))
    assert registry.load(refresh=True).source == "bundled"
    assert "larger than 5 MiB" in caplog.records[0].getMessage()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_device_is_refused_not_read_forever(tmp_path, caplog):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigurationError, match="Cannot read the registry file .*: not a regular file."):
        registry.update(fifo.as_uri())
    with pytest.raises(ConfigurationError, match="not a regular file"):
        registry.update("file:///dev/zero")
    registry.cache_path().parent.mkdir(parents=True)
    os.mkfifo(registry.cache_path())
    done = threading.Thread(target=registry.load, kwargs={"refresh": True}, daemon=True)
    done.start()
    done.join(30)  # before: blocked forever opening the FIFO, so every llmring call hung
    assert not done.is_alive() and "(not a regular file)" in caplog.records[0].getMessage()


def test_a_file_url_must_name_a_local_path(tmp_path):
    src = tmp_path / "reg.json"
    src.write_text(json.dumps({"version": "7", "models": [{"provider": "a", "name": "b"}]}))
    with pytest.raises(ConfigurationError, match="names the host 'evil.example'; a file:// URL must be a local path"):
        registry.update(f"file://evil.example{src}")
    assert registry.update(f"file://localhost{src}").version == "7"


@pytest.mark.parametrize("location, target", [
    ("https://mirror.example/r.json", "https://mirror.example/r.json"),
    ("/v2/r.json", "https://registry.example/v2/r.json"),
    ("http://registry.example/r.json", None), ("file:///etc/passwd", None), ("//plain.example/r.json", "https://plain.example/r.json"),
])
def test_a_redirect_may_not_leave_https(location, target):
    if target:
        assert registry.redirect_target("https://registry.example/r.json", location) == target
    else:
        with pytest.raises(ConfigurationError, match="which is not https; refusing it"):
            registry.redirect_target("https://registry.example/r.json", location)


def test_redirects_are_checked_not_followed_blindly():
    # The fetch loop, run against a plain-http loopback server (an https one is hard to stand
    # up here): the redirect's target is checked by the policy above and never requested.
    doc = {"version": "9", "models": [{"provider": "a", "name": "b"}]}
    with FaultServer() as s:
        s.route("/r.json", faults.redirect(f"{s.url}/plain.json")).route("/plain.json", faults.answer(doc))
        with pytest.raises(ConfigurationError, match=f"redirects to {s.url}/plain.json, which is not https"):
            registry._get(f"{s.url}/r.json", 5.0, time.monotonic() + 30)
        assert s.hits.get("/plain.json", 0) == 0 and s.hits["/r.json"] == 1


def test_a_server_dripping_bytes_cannot_stretch_the_fetch_past_its_timeout():
    doc = {"version": "9", "models": [{"provider": "a", "name": "b"}]}
    with FaultServer() as s:
        s.route("/r.json", faults.slow_drip(doc, every=0.2))
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match="did not arrive within 1.5 s"):
            registry._download(f"{s.url}/r.json", 1.5)
        assert time.monotonic() - started < 10  # the drip alone takes 40 s


def test_a_giant_download_is_refused_once_over_the_cap():
    with FaultServer() as s:
        s.route("/r.json", faults.giant_body(registry.MAX_BYTES * 20, prefix=b"["))
        with pytest.raises(ConfigurationError, match="larger than 5 MiB; refusing it"):
            registry._download(f"{s.url}/r.json", 60)


def test_cost_helper_edges():
    info = registry.ModelInfo("x", "y", input_price=1.0, output_price=3.0)
    assert registry.cost(info, Usage(1_000_000, 1_000_000)) == (4.0, None)
    assert registry.cost(info, None)[0] is None
    assert registry.cost(registry.ModelInfo("x", "y"), Usage(1, 1))[1] == "x:y has no price in the registry"


def test_a_binding_requires_list_skips_pool_models_lacking_it(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    path = write_lock(tmp_path, '\n[[profiles.default.bindings]]\nalias = "a"\n'
                                'models = ["openai:o3-deep-research", "mock:echo"]\nrequires = ["tools"]\n')
    with Ring(path) as ring:
        r = ring.chat("a", "plain text, no tools asked")
    assert server.requests == []
    assert r.attempts[0].skipped and "tools" in r.attempts[0].message and r.model == "mock:echo"


def test_the_bundled_snapshot_passes_the_strict_parser_it_skips_at_run_time():
    strict = registry.parse(registry.BUNDLED.read_bytes(), source="bundled")
    assert strict == registry._bundled()
