"""`llmring lock pin` / Ring.pin / pins.pin: what is recorded, where it is written, what calls use."""

import hashlib
import json

import pytest
from clitools import runner
from httpfake import openai_answer
from lockfiles import one_alias

from llmring import Ring, lockfile, pins, registry
from llmring.cli import cli
from llmring.exceptions import LockfileError
from llmring.lockmodel import Binding
from llmring.registry import ModelInfo, Registry

STAMP = "2026-12-02T12:00:00Z"


def run(*args):
    return runner().invoke(cli, list(args), catch_exceptions=False)


def made_up_registry(*names, aliases=None):
    """A registry of `acme:` models; `aliases` maps a model name to the floating names it lists."""
    aliases = aliases or {}
    return Registry("test-1", [ModelInfo("acme", n, aliases=aliases.get(n, []), input_price=1.0, output_price=2.0,
                                         context_window=1000) for n in names])


def unstamped(text):
    """The file without its updated_at line (every edit sets it)."""
    return "\n".join(line for line in text.split("\n") if not line.startswith("updated_at = "))


# -- which snapshot a floating id stands for ----------------------------------------------

def test_the_registry_alias_mapping_names_the_snapshot():
    reg = registry.load()
    assert pins.snapshot_of("openai:gpt-4o", reg) == "openai:gpt-4o-2024-08-06"
    assert pins.snapshot_of("openai:gpt-4o-mini", reg) == "openai:gpt-4o-mini-2024-07-18"
    assert pins.snapshot_of("anthropic:claude-3-5-haiku-latest", reg) == "anthropic:claude-3-5-haiku-20241022"


def test_a_dated_name_is_its_own_snapshot_even_when_another_row_lists_it():
    reg = registry.load()  # gpt-4o-2024-08-06 lists gpt-4o-2024-05-13 among its aliases
    assert pins.snapshot_of("openai:gpt-4o-2024-05-13", reg) == "openai:gpt-4o-2024-05-13"
    assert pins.snapshot_of("anthropic:claude-3-5-haiku-20241022", reg) == "anthropic:claude-3-5-haiku-20241022"


def test_without_a_mapping_the_newest_name_date_snapshot_wins():
    reg = made_up_registry("widget", "widget-2025-01-01", "widget-20250601", "widget-pro-2025-09-01")
    assert pins.snapshot_of("acme:widget", reg) == "acme:widget-20250601"
    assert pins.snapshot_of("acme:widget-pro", reg) == "acme:widget-pro-2025-09-01"


def test_the_registry_mapping_beats_the_name_rule_and_the_newest_listing_wins():
    reg = made_up_registry("widget-2025-01-01", "widget-2025-06-01", "gizmo-2024-03-01", "gizmo-2024-09-01",
                           aliases={"gizmo-2024-03-01": ["widget"], "gizmo-2024-09-01": ["widget"]})
    assert pins.snapshot_of("acme:widget", reg) == "acme:gizmo-2024-09-01"


def test_no_snapshot_when_the_registry_knows_none():
    reg = made_up_registry("widget", "widget-pro-2025-09-01")
    assert pins.snapshot_of("acme:widget", reg) is None
    assert pins.snapshot_of("other:widget", reg) is None
    assert pins.snapshot_of("acme:preview-09-2025", reg) is None  # month-year is not a date


# -- the hash -----------------------------------------------------------------------------

def test_the_hash_is_the_documented_canonical_json():
    b = Binding("a", ["openai:gpt-4o", "mock:echo"], "prose", {"temperature": 0.2}, ["tools"])
    text = '{"alias":"a","models":["openai:gpt-4o","mock:echo"],"params":{"temperature":0.2},"requires":["tools"]}'
    assert pins.binding_hash(b) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_hash_follows_what_is_called_and_not_the_description():
    base = Binding("a", ["openai:gpt-4o", "mock:echo"], params={"temperature": 0.2, "max_tokens": 9})
    same = Binding("a", ["openai:gpt-4o", "mock:echo"], "now described", {"max_tokens": 9, "temperature": 0.2})
    assert pins.binding_hash(base) == pins.binding_hash(same)
    for other in (Binding("a", ["mock:echo", "openai:gpt-4o"], params=base.params),
                  Binding("a", base.models, params={"temperature": 0.3, "max_tokens": 9}),
                  Binding("a", base.models, params=base.params, requires=["tools"]),
                  Binding("b", base.models, params=base.params)):
        assert pins.binding_hash(other) != pins.binding_hash(base), other


# -- what the lockfile holds ----------------------------------------------------------------

COMMENTED = '''version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

# summaries for the weekly report
[[profiles.default.bindings]]
alias = "summarizer"
models = [
    "openai:gpt-4o",  # primary
    "anthropic:claude-3-5-haiku-latest",
    "mock:echo",
]
params = { temperature = 0.2 }

[profiles.prod]
name = "prod"

[[profiles.prod.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini"]
'''


def test_pin_writes_each_pin_inside_its_binding_keeping_comments(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(COMMENTED)
    lf = lockfile.read(path)
    changed = pins.pin(lf, registry.load(), now=STAMP)
    assert changed == [("default", "summarizer"), ("prod", "summarizer")]
    lockfile.edit(path, lambda f: pins.pin(f, registry.load(), now=STAMP), create=False)
    text = unstamped(path.read_text())
    assert text.startswith(COMMENTED.split("[profiles.prod]")[0].rstrip("\n") + "\npin = { hash = ")
    assert '# summaries for the weekly report\n[[profiles.default.bindings]]' in text
    assert '"openai:gpt-4o",  # primary' in text
    assert ('    { model = "openai:gpt-4o", snapshot = "openai:gpt-4o-2024-08-06", input = 2.5, output = 10.0, '
            'context_window = 111616 },\n') in text
    assert '    { model = "mock:echo" },\n] }\n' in text  # not in the registry: nothing but its name
    assert lockfile.read(path).profiles == lf.profiles
    pin = lf.profiles["default"].get("summarizer").pin
    assert (pin.registry, pin.pinned_at) == (registry.load().version, STAMP)
    assert pin.hash == pins.binding_hash(lf.profiles["default"].get("summarizer"))


def test_pinning_again_changes_nothing_not_even_the_time(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(COMMENTED)
    lockfile.edit(path, lambda f: pins.pin(f, registry.load(), now=STAMP), create=False)
    before = unstamped(path.read_text())
    assert lockfile.edit(path, lambda f: pins.pin(f, registry.load(), now="2027-01-01T00:00:00Z"),
                         create=False) == []
    assert unstamped(path.read_text()) == before and "2027" not in before


def test_pin_of_one_profile_leaves_the_others(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(COMMENTED)
    assert Ring(path).pin("prod") == [("prod", "summarizer")]
    lf = lockfile.read(path)
    assert lf.profiles["default"].get("summarizer").pin is None
    assert lf.profiles["prod"].get("summarizer").pin.models[0].snapshot == "openai:gpt-4o-mini-2024-07-18"


def test_pin_of_a_profile_not_in_the_file_names_the_profiles(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(COMMENTED)
    with pytest.raises(LockfileError, match="profile 'staging' is not in the lockfile; its profiles are default, prod"):
        Ring(path).pin("staging")
    assert path.read_text() == COMMENTED


# -- edits keep pins next to their bindings ---------------------------------------------------

def test_rebinding_keeps_the_stale_pin_and_unbinding_takes_it_along(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(COMMENTED)
    ring = Ring(path)
    ring.pin()
    old = lockfile.read(path).profiles["default"].get("summarizer").pin
    ring.bind_alias("summarizer", "openai:gpt-4.1-mini")
    ring.bind_alias("other", "mock:echo")
    lf = lockfile.read(path)
    assert lf.profiles["default"].get("summarizer").pin == old  # for --frozen to catch
    assert lf.profiles["default"].get("other").pin is None
    text = path.read_text()
    binding = text.split("alias = \"summarizer\"")[1].split("[[")[0]
    assert 'models = ["openai:gpt-4.1-mini"]\nparams = { temperature = 0.2 }\npin = { hash = ' in binding
    ring.unbind_alias("summarizer")
    assert text.count("pin = {") == 2 and path.read_text().count("pin = {") == 1


# -- calls use the pinned snapshot ----------------------------------------------------------

def test_a_pinned_binding_calls_the_snapshot_and_says_so(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.add("POST", "/v1/chat/completions", openai_answer("one"), openai_answer("two"))
    path = one_alias(tmp_path, ["openai:gpt-4o"])
    ring = Ring(path)
    assert ring.chat("a", "hi").model == "openai:gpt-4o"
    ring.pin()
    response = ring.chat("a", "hi")
    assert response.model == "openai:gpt-4o-2024-08-06"
    assert [json.loads(r.body)["model"] for r in server.requests] == ["gpt-4o", "gpt-4o-2024-08-06"]
    assert response.cost is not None  # priced at the snapshot's row


def test_a_limit_written_for_the_floating_id_holds_its_pinned_snapshot(tmp_path, server, monkeypatch):
    # [limits."openai:gpt-4o"] was reviewed against the id the binding names; pinning must
    # not let the calls to its snapshot escape it.
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.add("POST", "/v1/chat/completions", openai_answer("one"), openai_answer("two"))
    path = one_alias(tmp_path, ["openai:gpt-4o", "mock:echo"], head='[limits."openai:gpt-4o"]\nrpm = 1\n')
    ring = Ring(path)
    ring.pin()
    assert ring.chat("a", "hi", timeout=5).model == "openai:gpt-4o-2024-08-06"
    second = ring.chat("a", "hi", timeout=5)
    assert second.model == "mock:echo"
    assert (second.attempts[0].model, second.attempts[0].kind, second.attempts[0].skipped) == (
        "openai:gpt-4o-2024-08-06", "rate_limit", True)
    assert '[limits."openai:gpt-4o"]' in second.attempts[0].message
    assert len(server.requests) == 1


def test_a_model_the_pin_knows_no_snapshot_for_is_called_as_written(tmp_path):
    path = one_alias(tmp_path, ["mock:echo"])
    ring = Ring(path)
    ring.pin()
    assert ring.resolve("a").models == ["mock:echo"]
    assert ring.chat("a", "hi").model == "mock:echo"


# -- the CLI ----------------------------------------------------------------------------------

def test_cli_pin_prints_what_it_recorded_then_nothing_the_second_time(tmp_path):
    one_alias(tmp_path, ["openai:gpt-4o", "mock:echo"], alias="summarizer")
    result = run("lock", "pin")
    assert result.exit_code == 0, result.stderr
    version = registry.load().version
    assert result.stdout == (
        f"Pinned 1 binding in {tmp_path / 'llmring.lock'} to registry {version}:\n"
        f"  default/summarizer  {lockfile.read('llmring.lock').profiles['default'].get('summarizer').pin.hash}\n"
        "    openai:gpt-4o → openai:gpt-4o-2024-08-06  $2.50 / $10.00 per 1M in/out, 111,616 tokens\n"
        "    mock:echo  (not in the registry: called as written)\n")
    assert result.stderr == ""
    again = run("lock", "pin")
    assert again.exit_code == 0
    assert again.stdout == f"All 1 binding already pinned to registry {version}; nothing changed.\n"


def test_cli_pin_json(tmp_path):
    one_alias(tmp_path, ["openai:gpt-4o-mini"])
    result = run("lock", "pin", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["registry"] == registry.load().version and data["warnings"] == []
    (entry,) = data["pinned"]
    assert (entry["profile"], entry["alias"]) == ("default", "a")
    assert entry["models"] == [{"model": "openai:gpt-4o-mini", "snapshot": "openai:gpt-4o-mini-2024-07-18",
                                "input": 0.15, "output": 0.6, "context_window": 111616}]


def test_cli_pin_warns_about_a_model_already_deprecated(tmp_path):
    one_alias(tmp_path, ["anthropic:claude-3-5-haiku-latest"])
    result = run("lock", "pin")
    assert result.exit_code == 0
    assert result.stderr == ("warning: default/a: anthropic:claude-3-5-haiku-20241022 was deprecated on 2026-02-19; "
                             "move to anthropic:claude-haiku-4-5-20251001; `lock validate --frozen` fails until "
                             "that is resolved\n")


def test_cli_pin_without_a_lockfile_or_with_an_unknown_profile_is_one_line(tmp_path):
    result = run("lock", "pin")
    assert result.exit_code == 1
    assert "no lockfile found here; create one with `llmring lock init` or pass --file" in result.stderr
    one_alias(tmp_path, ["mock:echo"])
    result = run("lock", "pin", "--profile", "prod")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "profile 'prod' is not in the lockfile; its profiles are default" in result.stderr


# -- reading pins: bad values are refused where they are --------------------------------------

PINNED = '''version = "1.0"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "a"
models = ["openai:gpt-4o"]
pin = {PIN}
'''
GOOD_MODEL = '{ model = "openai:gpt-4o", snapshot = "openai:gpt-4o-2024-08-06", input = 2.5, output = 10.0, ' \
             'context_window = 128000 }'


def pinned_text(pin):
    return PINNED.replace("{PIN}", pin)


def test_a_well_formed_pin_reads_back():
    lf = lockfile.Lockfile.from_toml(pinned_text(
        f'{{ hash = "sha256:00", registry = "r1", pinned_at = 2026-12-02T12:00:00Z, models = [{GOOD_MODEL}] }}'))
    pin = lf.profiles["default"].get("a").pin
    assert (pin.hash, pin.registry, pin.pinned_at) == ("sha256:00", "r1", "2026-12-02T12:00:00+00:00")
    assert pin.models[0].snapshot == "openai:gpt-4o-2024-08-06" and pin.models[0].context_window == 128000


def test_a_pin_written_as_a_sub_table_reads_the_same():
    text = PINNED.replace("pin = {PIN}", '\n[profiles.default.bindings.pin]\nhash = "sha256:00"\nregistry = "r1"\n'
                                         f'pinned_at = "t"\nmodels = [{GOOD_MODEL}]')
    assert lockfile.Lockfile.from_toml(text).profiles["default"].get("a").pin.models[0].input == 2.5


@pytest.mark.parametrize("pin, fragment", [
    ('"sha256:00"', "pin must be a table, not 'sha256:00' for alias 'a' in profile 'default'; run `llmring lock pin`"),
    ('{ registry = "r1", pinned_at = "t" }',
     "the pin for alias 'a' in profile 'default' has no hash; run `llmring lock pin`"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", when = 1 }', "unknown key 'when' in the pin for alias 'a'"),
    ('{ hash = "", registry = "r1", pinned_at = "t" }', "pin.hash must be a non-empty string, not an empty string"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = "openai:gpt-4o" }', "pin.models must be a list"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ snapshot = "openai:x" }] }',
     "an entry of pin.models for alias 'a' in profile 'default' has no model"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "gpt-4o" }] }',
     "pin.models: model reference 'gpt-4o' has no provider"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "openai:gpt-4o", snapshot = 3 }] }',
     "pin.models: a model reference must be a string"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "openai:gpt-4o", input = -1 }] }',
     "pin.models input must be a price in USD per million tokens, not int -1"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "openai:gpt-4o", output = nan }] }',
     "pin.models output must be a price in USD per million tokens, not float nan"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "openai:gpt-4o", context_window = 1.5 }] }',
     "pin.models context_window must be a whole number of tokens, not float 1.5"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "openai:gpt-4o", price = 1 }] }',
     "unknown key 'price' in an entry of pin.models"),
    ('{ hash = "h", registry = "r1", pinned_at = 5 }', "pin.pinned_at must be a non-empty string, not int 5"),
    ('{ hash = "h", registry = "r1", pinned_at = "t", models = [{ model = "openai:gpt-4o", snapshot = "evil:x" }] }',
     "pin.models: the snapshot evil:x of openai:gpt-4o is another provider's for alias 'a' in profile 'default'"),
])
def test_a_malformed_pin_names_the_file_line_and_problem(tmp_path, pin, fragment):
    path = tmp_path / "llmring.lock"
    path.write_text(pinned_text(pin))
    with pytest.raises(LockfileError) as err:
        lockfile.read(path)
    assert str(err.value).startswith(f"{path}:9: "), str(err.value)
    assert fragment in str(err.value)


def test_a_pinned_lockfile_round_trips_through_to_dict(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(COMMENTED)
    lf = lockfile.read(path)
    pins.pin(lf, registry.load(), now=STAMP)
    data = lf.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["profiles"]["default"]["bindings"][0]["pin"]["models"][2] == {
        "model": "mock:echo", "snapshot": None, "input": None, "output": None, "context_window": None}
    assert lockfile.Lockfile.from_dict(data) == lf


def test_async_ring_pins_and_reports_drift_like_ring(tmp_path):
    from llmring import AsyncRing

    path = one_alias(tmp_path, ["openai:gpt-4o", "mock:echo"])
    with AsyncRing(path) as ring:
        assert [str(d) for d in ring.drift()] and ring.pin() == [("default", "a")]
        assert ring.drift() == []
        assert ring.resolve("a").models == ["openai:gpt-4o-2024-08-06", "mock:echo"]
