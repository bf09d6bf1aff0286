"""llmring.lock: every example of the user documentation parses, files survive a round trip
and an edit, and every kind of bad input is a LockfileError naming the file, line and key,
with the file on disk untouched by the failed edit."""

import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmring import Ring
from llmring import lockfile as lf_mod
from llmring.exceptions import ConfigurationError, LockfileError
from llmring.lockfile import Binding, Lockfile, Profile, dumps, parse
from llmring.prepare import REQUEST_FIELDS

# -- the seed document's lockfiles, as users copy them ------------------------------------

SEED_STRUCTURE = '''\
version = "1.0"
default_profile = "default"
[profiles.default]
name = "default"
[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini"]
[[profiles.default.bindings]]
alias = "analyzer"
models = [
"anthropic:claude-sonnet-4-5-20250929", # Primary
"openai:gpt-4o", # Fallback
"google:gemini-2.5-pro" # Second fallback
]
[[profiles.default.bindings]]
alias = "code-reviewer"
models = ["anthropic:claude-sonnet-4-5-20250929"]
[profiles.dev]
name = "dev"
[[profiles.dev.bindings]]
alias = "assistant"
models = ["openai:gpt-4o-mini"] # Cheaper for development
[profiles.prod]
name = "prod"
[[profiles.prod.bindings]]
alias = "assistant"
models = ["anthropic:claude-sonnet-4-5-20250929"] # Higher quality for production
'''

SEED_PROFILES = '''\
# llmring.lock
[profiles.dev]
name = "dev"
[[profiles.dev.bindings]]
alias = "assistant"
models = ["openai:gpt-4o-mini"] # Cheap
[profiles.staging]
name = "staging"
[[profiles.staging.bindings]]
alias = "assistant"
models = ["anthropic:claude-sonnet-4-5-20250929"] # Mid-tier
[profiles.prod]
name = "prod"
[[profiles.prod.bindings]]
alias = "assistant"
models = [
"anthropic:claude-opus-4", # Best quality
"anthropic:claude-sonnet-4-5-20250929" # Fallback
]
'''

SEED_FALLBACKS = '''\
[[profiles.default.bindings]]
alias = "balanced"
models = [
"anthropic:claude-sonnet-4-5-20250929", # Try first
"openai:gpt-4o", # If first fails
"google:gemini-2.5-pro" # If both fail
]
'''

SEED_MULTI_REGION = '''\
[profiles.us-west]
[[profiles.us-west.bindings]]
alias = "assistant"
models = ["openai:gpt-4o"]
[profiles.eu-central]
[[profiles.eu-central.bindings]]
alias = "assistant"
models = ["anthropic:claude-sonnet-4-5-20250929"] # Better EU availability
'''

SEED_NO_FALLBACK = '''\
# DON'T DO THIS - single point of failure
[[profiles.default.bindings]]
alias = "assistant"
models = ["anthropic:claude-sonnet-4-5-20250929"]
'''

SEED_WITH_FALLBACKS = '''\
# DO THIS - automatic failover
[[profiles.default.bindings]]
alias = "assistant"
models = [
"anthropic:claude-sonnet-4-5-20250929",
"openai:gpt-4o",
"google:gemini-2.5-pro"
]
'''

SEED_EXAMPLES = {
    "structure": SEED_STRUCTURE, "profiles": SEED_PROFILES, "fallbacks": SEED_FALLBACKS,
    "multi-region": SEED_MULTI_REGION, "no-fallback": SEED_NO_FALLBACK, "with-fallbacks": SEED_WITH_FALLBACKS,
    "bundled": lf_mod.BUNDLED.read_text(encoding="utf-8"),
}

# What each example binds: profile -> alias -> models.
SEED_EXPECTED = {
    "structure": {
        "default": {"summarizer": ["openai:gpt-4o-mini"],
                    "analyzer": ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4o", "google:gemini-2.5-pro"],
                    "code-reviewer": ["anthropic:claude-sonnet-4-5-20250929"]},
        "dev": {"assistant": ["openai:gpt-4o-mini"]},
        "prod": {"assistant": ["anthropic:claude-sonnet-4-5-20250929"]},
    },
    "profiles": {
        "dev": {"assistant": ["openai:gpt-4o-mini"]},
        "staging": {"assistant": ["anthropic:claude-sonnet-4-5-20250929"]},
        "prod": {"assistant": ["anthropic:claude-opus-4", "anthropic:claude-sonnet-4-5-20250929"]},
    },
    "fallbacks": {"default": {"balanced": ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4o",
                                           "google:gemini-2.5-pro"]}},
    "multi-region": {"us-west": {"assistant": ["openai:gpt-4o"]},
                     "eu-central": {"assistant": ["anthropic:claude-sonnet-4-5-20250929"]}},
    "no-fallback": {"default": {"assistant": ["anthropic:claude-sonnet-4-5-20250929"]}},
    "with-fallbacks": {"default": {"assistant": ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4o",
                                                 "google:gemini-2.5-pro"]}},
    "bundled": {"default": {"advisor": ["anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4.1",
                                        "google:gemini-2.5-pro"]}},
}


def bindings_of(lf: Lockfile) -> dict:
    return {name: {b.alias: b.models for b in p.bindings} for name, p in lf.profiles.items()}


@pytest.mark.parametrize("example", sorted(SEED_EXAMPLES))
def test_every_seed_lockfile_parses(example):
    lf = parse(SEED_EXAMPLES[example], "llmring.lock")
    assert bindings_of(lf) == SEED_EXPECTED[example]
    # Profile keys give the names when the file leaves `name` out (the multi-region example).
    assert all(p.name == key for key, p in lf.profiles.items())


@pytest.mark.parametrize("example", sorted(SEED_EXAMPLES))
def test_load_save_load_is_the_identity(example, tmp_path):
    first = parse(SEED_EXAMPLES[example], "a.lock")
    path = tmp_path / "llmring.lock"
    lf_mod.write(first, path)
    second = lf_mod.read(path)
    assert second == first
    # And writing again changes nothing: the format is a fixed point.
    assert dumps(second) == path.read_text(encoding="utf-8")


def test_the_multi_region_example_is_used_through_a_profile(tmp_path, monkeypatch):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_MULTI_REGION)
    ring = Ring(lockfile_path=path)
    assert ring.resolve_alias("assistant", profile="eu-central") == "anthropic:claude-sonnet-4-5-20250929"
    monkeypatch.setenv("LLMRING_PROFILE", "us-west")
    assert ring.resolve_alias("assistant") == "openai:gpt-4o"
    monkeypatch.delenv("LLMRING_PROFILE")
    # No profile chosen and no "default" profile: an error that lists the profiles, not "not bound".
    with pytest.raises(LockfileError, match="eu-central, us-west"):
        ring.resolve_alias("assistant")
    # Saving it again keeps it readable (no default_profile appears that names nothing).
    ring.bind_alias("assistant", "openai:gpt-4o-mini", profile="us-west")
    assert "default_profile" not in path.read_text()
    assert lf_mod.read(path).profiles["eu-central"].bindings[0].models == ["anthropic:claude-sonnet-4-5-20250929"]


def test_the_written_text_looks_like_the_seed():
    expected = '''\
version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini"]

[[profiles.default.bindings]]
alias = "analyzer"
models = [
    "anthropic:claude-sonnet-4-5-20250929",
    "openai:gpt-4o",
    "google:gemini-2.5-pro",
]

[[profiles.default.bindings]]
alias = "code-reviewer"
models = ["anthropic:claude-sonnet-4-5-20250929"]

[profiles.dev]
name = "dev"

[[profiles.dev.bindings]]
alias = "assistant"
models = ["openai:gpt-4o-mini"]

[profiles.prod]
name = "prod"

[[profiles.prod.bindings]]
alias = "assistant"
models = ["anthropic:claude-sonnet-4-5-20250929"]
'''
    assert dumps(parse(SEED_STRUCTURE)) == expected


RICH = '''\
version = "1.0"
default_profile = "prod"
created_at = "2025-01-02T03:04:05Z"
updated_at = "2025-01-02T03:04:05Z"

[metadata]
project = "acme"
owners = ["ops", "ml"]

[metadata.review]
by = "lead"

[providers.groq]
type = "openai"
base_url = "https://api.groq.com/openai/v1"
api_key_env = "GROQ_API_KEY"
organization = "acme"

[profiles.prod]
name = "prod"
registry_versions = { openai = 7, anthropic = 3 }

[[profiles.prod.bindings]]
alias = "extractor"
models = ["openai:gpt-4o", "groq:llama-3.3-70b-versatile"]
description = "Pulls fields out of invoices."
requires = ["tools", "json_schema"]
params = { temperature = 0.2, max_tokens = 800, seed = 7, reasoning = { effort = "low" } }

[[profiles.prod.bindings]]
alias = "local"
models = ["ollama:llama3:8b"]

[profiles.dev]
name = "dev"

[[profiles.dev.bindings]]
alias = "extractor"
models = ["mock:echo"]
'''


def test_the_rich_file_keeps_its_order_and_every_field():
    lf = parse(RICH)
    text = dumps(lf)
    order = ["version =", "default_profile =", "created_at =", "updated_at =", "[metadata]", "[providers.groq]",
             "[profiles.prod]", "registry_versions =", 'alias = "extractor"', "description =", "requires =",
             "params =", 'alias = "local"', "[profiles.dev]"]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions), text
    assert parse(text) == lf
    extractor = lf.profiles["prod"].get("extractor")
    assert extractor.params == {"temperature": 0.2, "max_tokens": 800, "seed": 7, "reasoning": {"effort": "low"}}
    assert lf.providers["groq"].options == {"organization": "acme"}


def test_bind_then_reread_keeps_everything_else(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(RICH)
    before = lf_mod.read(path)
    Ring(lockfile_path=path).bind_alias("summarizer", "anthropic:claude-3-5-haiku-20241022,openai:gpt-4o-mini")
    after = lf_mod.read(path)
    # The new binding went into the default profile ("prod"), after the existing ones.
    assert [b.alias for b in after.profiles["prod"].bindings] == ["extractor", "local", "summarizer"]
    assert after.profiles["prod"].get("summarizer").models == ["anthropic:claude-3-5-haiku-20241022",
                                                               "openai:gpt-4o-mini"]
    after.profiles["prod"].unbind("summarizer")
    assert after.updated_at != before.updated_at
    assert after.created_at == before.created_at == "2025-01-02T03:04:05Z"
    after.updated_at = before.updated_at
    assert after == before


def test_rebinding_keeps_description_params_and_requires(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(RICH)
    Ring(lockfile_path=path).bind_alias("extractor", "anthropic:claude-sonnet-4-5-20250929", profile="prod")
    b = lf_mod.read(path).profiles["prod"].get("extractor")
    assert b.models == ["anthropic:claude-sonnet-4-5-20250929"]
    assert b.description == "Pulls fields out of invoices."
    assert b.requires == ["tools", "json_schema"]
    assert b.params["reasoning"] == {"effort": "low"}


def test_binding_into_a_new_profile_creates_it(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    Ring(lockfile_path=path).bind_alias("assistant", "openai:gpt-4o-mini", profile="staging")
    lf = lf_mod.read(path)
    assert list(lf.profiles) == ["default", "dev", "prod", "staging"]
    assert lf.profiles["staging"].name == "staging"
    assert bindings_of(lf)["staging"] == {"assistant": ["openai:gpt-4o-mini"]}
    assert '[profiles.staging]\nname = "staging"' in path.read_text()


def test_profile_names_that_need_quotes_survive_an_edit(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text('[profiles."eu.west 1"]\n\n[[profiles."eu.west 1".bindings]]\n'
                    'alias = "a"\nmodels = ["mock:echo"]\n')
    ring = Ring(lockfile_path=path)
    ring.bind_alias("b", "openai:gpt-4o", profile="eu.west 1")
    assert '[[profiles."eu.west 1".bindings]]' in path.read_text()
    assert bindings_of(lf_mod.read(path)) == {"eu.west 1": {"a": ["mock:echo"], "b": ["openai:gpt-4o"]}}


def test_a_model_reference_splits_at_the_first_colon():
    from llmring.refs import ModelRef

    ref = ModelRef.parse("ollama:llama3:8b")
    assert (ref.provider, ref.model) == ("ollama", "llama3:8b")
    assert str(ref) == "ollama:llama3:8b"
    assert parse(RICH).profiles["prod"].get("local").models == ["ollama:llama3:8b"]


# -- bad input ----------------------------------------------------------------------------

def line_with(text: str, fragment: str) -> int:
    """The 1-based number of the one line of `text` containing `fragment`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(hits) == 1, (fragment, hits)
    return hits[0]


def assert_rejected(tmp_path, text, line, *fragments, key=None):
    """`text` as a lockfile: reading it fails naming the file, line and fragments; an edit
    through the API fails the same way and leaves the file byte for byte as it was."""
    path = tmp_path / "llmring.lock"
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(data)
    with pytest.raises(LockfileError) as err:
        lf_mod.read(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: "), message
    assert err.value.path == str(path) and err.value.line == line
    for fragment in fragments:
        assert fragment in message, message
    if key is not None:
        assert err.value.key == key
    assert "\n" not in message
    with pytest.raises(LockfileError) as edit_err:
        Ring(lockfile_path=path).bind_alias("newcomer", "openai:gpt-4o-mini")
    assert str(edit_err.value) == message
    assert path.read_bytes() == data
    return err.value


def test_toml_syntax_error(tmp_path):
    text = BINDING.replace('alias = "summarizer"', "alias = summarizer")
    assert_rejected(tmp_path, text, line_with(text, "alias = summarizer"), "is not valid TOML", "Invalid value")


def test_toml_syntax_error_at_the_end_of_the_file(tmp_path):
    text = '[profiles.default]\n\n[[profiles.default.bindings]]\nalias = "a"\nmodels = [\n  "openai:gpt-4o",\n'
    assert_rejected(tmp_path, text, 6, "is not valid TOML")


BINDING = '[profiles.default]\nname = "default"\n\n[[profiles.default.bindings]]\nalias = "summarizer"\n'


def test_models_as_a_string(tmp_path):
    text = BINDING + 'models = "openai:gpt-4o-mini"\n'
    assert_rejected(tmp_path, text, line_with(text, "models ="), "models must be a list", "'summarizer'",
                    'models = ["openai:gpt-4o-mini"]')


def test_models_as_a_string_in_a_later_binding(tmp_path):
    text = BINDING + 'models = ["openai:gpt-4o"]\n\n[[profiles.default.bindings]]\nalias = "b"\nmodels = "mock:echo"\n'
    assert_rejected(tmp_path, text, line_with(text, 'models = "mock:echo"'), "models must be a list", "'b'")


def test_bindings_as_a_table(tmp_path):
    text = '[profiles.default]\nname = "default"\n\n[profiles.default.bindings]\nalias = "a"\nmodels = ["x:y"]\n'
    assert_rejected(tmp_path, text, line_with(text, "[profiles.default.bindings]"),
                    "profiles.default.bindings must be a list", key="profiles.default.bindings")


def test_params_as_a_list(tmp_path):
    text = BINDING + 'models = ["openai:gpt-4o"]\nparams = [0.2]\n'
    assert_rejected(tmp_path, text, line_with(text, "params ="), "params must be a table", "'summarizer'")


def test_requires_as_a_string(tmp_path):
    text = BINDING + 'models = ["openai:gpt-4o"]\ndescription = "x"\nrequires = "tools"\n'
    assert_rejected(tmp_path, text, line_with(text, "requires ="), "requires must be a list")


def test_alias_as_a_number(tmp_path):
    text = '[profiles.default]\nname = "default"\n\n[[profiles.default.bindings]]\nalias = 42\nmodels = ["openai:x"]\n'
    assert_rejected(tmp_path, text, line_with(text, "alias = 42"), "alias must be a non-empty string", "42",
                    key="profiles.default.bindings[0].alias")


@pytest.mark.parametrize("text, bad, suggestion", [
    ('versoin = "1.0"\n\n[profiles.default]\nname = "default"\n', "versoin", "version"),
    ('version = "1.0"\ndefault_profiles = "default"\n', "default_profiles", "default_profile"),
    ('[profiles.default]\nname = "default"\nbinding = []\n', "binding", "bindings"),
    (BINDING + 'model = ["openai:gpt-4o"]\n', "model", "models"),
    (BINDING + 'models = ["openai:gpt-4o"]\nparam = { temperature = 0.1 }\n', "param", "params"),
], ids=["top", "top-default_profile", "profile", "binding-model", "binding-param"])
def test_unknown_keys_suggest_the_close_match(tmp_path, text, bad, suggestion):
    assert_rejected(tmp_path, text, line_with(text, f"{bad} ="), f"unknown key {bad!r}",
                    f"did you mean {suggestion!r}?", key=bad)


def test_an_unknown_key_unlike_any_lists_the_allowed_keys(tmp_path):
    text = BINDING + 'models = ["openai:gpt-4o"]\nzzz = 1\n'
    assert_rejected(tmp_path, text, line_with(text, "zzz"), "unknown key 'zzz'", "alias, models, description")


def test_a_reference_without_a_provider(tmp_path):
    text = BINDING + 'models = [\n  "anthropic:claude-3-5-haiku-20241022",\n  "gpt-4o-mini",\n]\n'
    assert_rejected(tmp_path, text, line_with(text, '"gpt-4o-mini"'), "provider:model", "openai:gpt-4o-mini",
                    "'summarizer'")


def test_a_reference_with_a_bad_provider(tmp_path):
    text = BINDING + 'models = ["OpenAI:gpt-4o"]\n'
    assert_rejected(tmp_path, text, line_with(text, "OpenAI"), "invalid provider 'OpenAI'", "lower-case")


def test_empty_models(tmp_path):
    text = BINDING + "models = []\n"
    assert_rejected(tmp_path, text, line_with(text, "models ="), "models is empty", "at least one provider:model")


@pytest.mark.parametrize("models", ['"openai:gpt-4o", "openai:gpt-4o"', '"openai:gpt-4o", " openai:gpt-4o "'])
def test_a_model_listed_twice(tmp_path, models):
    text = BINDING + f"models = [{models}]\n"
    assert_rejected(tmp_path, text, line_with(text, "models ="), "models lists openai:gpt-4o twice")


def test_binding_a_model_twice_through_the_api(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    with pytest.raises(ConfigurationError, match="Give each model once: openai:gpt-4o appears more than once"):
        Ring(lockfile_path=path).bind_alias("summarizer", "openai:gpt-4o, anthropic:claude-opus-4, openai:gpt-4o")
    assert path.read_text() == SEED_STRUCTURE


def test_a_binding_without_models(tmp_path):
    text = BINDING + 'description = "x"\n'
    assert_rejected(tmp_path, text, line_with(text, "alias ="), "has no models", 'models = ["provider:model"]')


def test_duplicate_alias_in_a_profile(tmp_path):
    text = (BINDING + 'models = ["openai:gpt-4o"]\n\n[[profiles.default.bindings]]\nalias = "other"\n'
            'models = ["openai:gpt-4o"]\n\n[[profiles.default.bindings]]\nalias = "summarizer" # again\n'
            'models = ["anthropic:claude-3-5-haiku-20241022"]\n')
    assert_rejected(tmp_path, text, line_with(text, "# again"), "'summarizer' is bound twice", "profile 'default'")


def test_the_same_alias_in_two_profiles_is_fine():
    lf = parse(SEED_STRUCTURE)
    assert lf.profiles["dev"].get("assistant").models != lf.profiles["prod"].get("assistant").models


def test_default_profile_naming_a_missing_profile(tmp_path):
    text = 'version = "1.0"\ndefault_profile = "prdo"\n\n[profiles.prod]\nname = "prod"\n\n[profiles.dev]\n'
    assert_rejected(tmp_path, text, 2, "default_profile 'prdo' names no profile", "dev, prod",
                    key="default_profile")


@pytest.mark.parametrize("alias, fragment", [
    ("openai:gpt-4o", "contains a colon"),
    ("code reviewer", "not a valid name"),
    (" padded", "not a valid name"),
    ("summarizer\\n", "not a valid name"),  # a TOML escape: the alias ends in a newline
    ("", "non-empty string"),
])
def test_a_bad_alias_name(tmp_path, alias, fragment):
    text = f'[profiles.default]\n\n[[profiles.default.bindings]]\nalias = "{alias}"\nmodels = ["openai:x"]\n'
    assert_rejected(tmp_path, text, 4, fragment)


@pytest.mark.parametrize("alias", ["openai:gpt-4o", "code reviewer", ""])
def test_binding_a_bad_alias_name_through_the_api(tmp_path, alias):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    with pytest.raises(ConfigurationError, match="(?i)alias"):
        Ring(lockfile_path=path).bind_alias(alias, "openai:gpt-4o")
    assert path.read_text() == SEED_STRUCTURE


@pytest.mark.parametrize("models, fragment", [
    ("gpt-4o-mini", "openai:gpt-4o-mini"), ("openai:gpt-4o,gpt-4o-mini", "provider:model"), ("", "at least one"),
    ([], "at least one"), ("openai:", "needs a model name"), ("openai\n:gpt-4o", "invalid provider"),
])
def test_binding_bad_models_through_the_api(tmp_path, models, fragment):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    with pytest.raises(ConfigurationError, match=fragment):
        Ring(lockfile_path=path).bind_alias("summarizer", models)
    assert path.read_text() == SEED_STRUCTURE


def test_a_profile_whose_name_key_disagrees(tmp_path):
    text = '[profiles.dev]\nname = "dev"\n\n[profiles.staging]\nname = "prod"\n'
    assert_rejected(tmp_path, text, line_with(text, '"prod"'), "[profiles.staging] has name = 'prod'",
                    key="profiles.staging.name")


def test_a_provider_table_without_type(tmp_path):
    text = '[providers.groq]\nbase_url = "https://api.groq.com/openai/v1"\n\n[profiles.default]\n'
    assert_rejected(tmp_path, text, 1, '[providers.groq] needs type = "openai"', key="providers.groq.type")


@pytest.mark.parametrize("url", ["api.groq.com/openai/v1", "ftp://x", "https://", "http:// spaced"])
def test_a_provider_table_with_a_bad_base_url(tmp_path, url):
    text = f'[profiles.default]\n\n[providers.groq]\ntype = "openai"\nbase_url = "{url}"\n'
    assert_rejected(tmp_path, text, line_with(text, "base_url"), "providers.groq.base_url must be an http(s) URL",
                    key="providers.groq.base_url")


def test_an_unsupported_version(tmp_path):
    text = 'version = "2.0"\n'
    assert_rejected(tmp_path, text, 1, "version '2.0' is not supported")


def test_a_lockfile_path_pointing_nowhere(tmp_path):
    missing = tmp_path / "nowhere" / "llmring.lock"
    with pytest.raises(LockfileError) as err:
        Ring(lockfile_path=missing)
    assert str(err.value).startswith(f"{missing}: does not exist")
    assert f"llmring lock init --file {missing}" in str(err.value)
    assert not missing.parent.exists() and not (tmp_path / "llmring.lock").exists()


def test_llmring_lockfile_path_pointing_nowhere(tmp_path, monkeypatch):
    missing = tmp_path / "gone.lock"
    (tmp_path / "llmring.lock").write_text(SEED_STRUCTURE)  # must not be used instead
    monkeypatch.setenv("LLMRING_LOCKFILE_PATH", str(missing))
    with pytest.raises(LockfileError, match="named by LLMRING_LOCKFILE_PATH does not exist") as err:
        Ring()
    assert str(err.value).startswith(f"{missing}: ")
    assert not missing.exists()
    assert (tmp_path / "llmring.lock").read_text() == SEED_STRUCTURE


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_an_unreadable_file(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    path.chmod(0)
    try:
        with pytest.raises(LockfileError, match="cannot be read .*permissions"):
            lf_mod.read(path)
        with pytest.raises(LockfileError):
            Ring(lockfile_path=path).bind_alias("x", "openai:gpt-4o")
    finally:
        path.chmod(0o644)
    assert path.read_text() == SEED_STRUCTURE


def test_a_file_that_is_not_utf8(tmp_path):
    data = SEED_STRUCTURE.encode() + b'\n# caf\xe9 \xff\n'
    assert_rejected(tmp_path, data, None, "is not UTF-8 text")


def test_a_directory_instead_of_a_file(tmp_path, monkeypatch):
    folder = tmp_path / "locks"
    folder.mkdir()
    with pytest.raises(LockfileError, match="is a directory, not a lockfile"):
        lf_mod.read(folder)
    with pytest.raises(LockfileError, match="is a directory, not a lockfile"):
        Ring(lockfile_path=folder)
    monkeypatch.setenv("LLMRING_LOCKFILE_PATH", str(folder))
    with pytest.raises(LockfileError, match="LLMRING_LOCKFILE_PATH is a directory"):
        Ring()
    assert list(folder.iterdir()) == []


def test_an_edit_of_a_file_broken_after_the_ring_read_it_loses_nothing(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    ring = Ring(lockfile_path=path)
    assert ring.resolve_alias("summarizer") == "openai:gpt-4o-mini"
    broken = SEED_STRUCTURE.replace('alias = "analyzer"', 'alias = "analyzer"\nalias = "again"')
    path.write_text(broken)
    with pytest.raises(LockfileError, match="is not valid TOML"):
        ring.bind_alias("summarizer", "openai:gpt-4o")
    with pytest.raises(LockfileError):
        ring.unbind_alias("summarizer")
    assert path.read_text() == broken


# -- any input at all ---------------------------------------------------------------------

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_is_a_lockfile_or_a_lockfile_error(text):
    try:
        result = parse(text, "fuzz.lock")
    except LockfileError as e:
        assert str(e).startswith("fuzz.lock")
    else:
        assert isinstance(result, Lockfile)


TOMLISH_TEXT = st.text(alphabet=string.ascii_letters + string.digits + ":-_. \x7f\n\"'é", max_size=12)
KEYS = st.one_of(st.sampled_from([
    "version", "default_profile", "profiles", "providers", "metadata", "created_at", "updated_at", "default",
    "dev", "name", "bindings", "alias", "models", "description", "params", "requires", "registry_versions",
    "type", "base_url", "api_key_env"]), TOMLISH_TEXT.filter(bool))
SCALARS = st.one_of(TOMLISH_TEXT, st.integers(), st.booleans(), st.floats(allow_nan=False), st.dates(),
                    st.datetimes(), st.sampled_from(["1.0", "default", "openai:gpt-4o", "gpt-4o", "http://x"]))
TREES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(KEYS, inner, max_size=4)), max_leaves=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, TREES, max_size=6))
def test_any_toml_document_is_a_lockfile_or_a_lockfile_error(document):
    text = tomli_w.dumps(document)
    try:
        lf = parse(text, "fuzz.lock")
    except LockfileError:
        return
    assert parse(dumps(lf), "fuzz.lock") == lf  # whatever is accepted can be written back


NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
REFS = st.builds(lambda p, m: f"{p}:{m}", NAMES, st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.:/_-]{0,12}", fullmatch=True))
def _trees(scalars):
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3)),
        max_leaves=8)


JSON_SCALARS = st.one_of(st.text(max_size=10), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.booleans())
PARAM_VALUES = _trees(st.one_of(JSON_SCALARS, st.dates(), st.times()))  # any TOML value (metadata)
SENDABLE = _trees(JSON_SCALARS)  # what params may hold: extra parameters are sent as JSON
EXTRA_KEYS = st.text(min_size=1, max_size=8).filter(lambda k: k not in REQUEST_FIELDS | {"model", "messages"})


@st.composite
def lockfiles(draw):
    def binding(alias):
        return Binding(alias, draw(st.lists(REFS, min_size=1, max_size=4, unique=True)),
                       draw(st.one_of(st.none(), st.text(min_size=1, max_size=20).filter(str.strip))),
                       draw(st.dictionaries(EXTRA_KEYS, SENDABLE, max_size=3)),
                       draw(st.lists(st.sampled_from(["tools", "vision", "json_schema"]), unique=True)))

    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    profiles = {n: Profile(n, [binding(a) for a in draw(st.lists(NAMES, max_size=3, unique=True))],
                           draw(st.dictionaries(NAMES, st.integers(0, 99), max_size=2))) for n in names}
    return Lockfile(default_profile=draw(st.sampled_from(names)), profiles=profiles,
                    metadata=draw(st.dictionaries(NAMES, PARAM_VALUES, max_size=3)),
                    created_at=draw(st.one_of(st.none(), st.just("2025-05-01T00:00:00Z"))))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lockfiles())
def test_any_valid_lockfile_survives_a_round_trip(lf):
    text = dumps(lf)
    again = parse(text)
    assert again == lf
    assert dumps(again) == text


def test_writing_rejects_values_toml_cannot_hold(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(SEED_STRUCTURE)
    with pytest.raises(LockfileError, match="was not changed: a lockfile cannot hold NoneType"):
        Ring(lockfile_path=path).bind_alias("x", "openai:gpt-4o", params={"temperature": None})
    assert path.read_text() == SEED_STRUCTURE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llmring.lock"]


def test_a_new_lockfile_is_valid_and_stamped(tmp_path):
    from llmring.init import create

    path = tmp_path / "deep" / "er" / "llmring.lock"
    create(path)
    lf = lf_mod.read(path)
    assert lf.created_at and lf.created_at == lf.updated_at
    assert lf.default_profile == "default" and "default" in lf.profiles
    with pytest.raises(LockfileError, match="already exists; pass --force"):
        create(path)
    assert Path(path).read_text() == dumps(lf)


def test_to_dict_is_plain_data_and_from_dict_round_trips():
    import json

    lf = parse(SEED_STRUCTURE)
    lf.profiles["default"].registry_versions = {"openai": "2026-08"}
    data = lf.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain JSON types only
    assert "path" not in data and "_positions" not in json.dumps(data)
    assert data["profiles"]["default"]["registry_versions"] == {"openai": "2026-08"}
    assert Lockfile.from_dict(data) == lf
    with pytest.raises(LockfileError, match="has no provider"):
        Lockfile.from_dict({**data, "profiles": {"default": {"bindings": [{"alias": "a", "models": ["gpt-4o"]}]}}})


# Plain bindings are checked together (one match over all their aliases, one over all their
# models); a bad one among them must still be found, and named by its own line.
def three_bindings(alias: str, models: str, at: int) -> str:
    tables = [(f"plain-{i}", '"openai:gpt-4o", "mock:echo"') for i in range(3)]
    tables[at] = (alias, models)
    return "[profiles.default]\n" + "".join(
        f'\n[[profiles.default.bindings]]\nalias = "{a}"\nmodels = [{m}]\n' for a, m in tables)


@pytest.mark.parametrize("at", [0, 1, 2])
@pytest.mark.parametrize("alias, models, bad_line, fragment", [
    ("two\\nlines", '"openai:gpt-4o"', 'alias = "two', "not a valid name"),
    ("ok", '"openai:gpt-4o\\nanthropic:claude"', 'models = ["openai:gpt-4o\\n', "without spaces"),
    ("ok", '"openai:gpt-4o", "OpenAI:gpt-4o"', "OpenAI", "invalid provider 'OpenAI'"),
    ("ok", '"openai:gpt-4o", 7', "7]", "must be a string"),
    ("ok", '"openai:gpt-4o", { x = 1 }', "{ x = 1 }", "must be a string"),
    ("bad alias", '"openai:gpt-4o"', "bad alias", "not a valid name"),
])
def test_a_bad_name_among_plain_bindings_is_found_by_its_line(tmp_path, at, alias, models, bad_line, fragment):
    text = three_bindings(alias, models, at)
    assert_rejected(tmp_path, text, line_with(text, bad_line), fragment)


@pytest.mark.parametrize("at", [0, 1, 2])
def test_a_padded_model_among_plain_bindings_is_read_stripped(at):
    lf = parse(three_bindings("padded", '" mock:echo ", "openai:gpt-4o"', at))
    assert lf.profiles["default"].get("padded").models == ["mock:echo", "openai:gpt-4o"]
    assert all(m == m.strip() for b in lf.profiles["default"].bindings for m in b.models)


def test_plain_bindings_are_read_as_written():
    lf = parse(three_bindings("middle", '"anthropic:claude-3-5-haiku-latest"', 1)
               + '\n[[profiles.default.bindings]]\nalias = "described"\nmodels = ["mock:echo"]\n'
                 'description = "kept"\nparams = {}\nrequires = []\n')
    got = [(b.alias, b.models, b.description, b.params, b.requires) for b in lf.profiles["default"].bindings]
    assert got == [("plain-0", ["openai:gpt-4o", "mock:echo"], None, {}, []),
                   ("middle", ["anthropic:claude-3-5-haiku-latest"], None, {}, []),
                   ("plain-2", ["openai:gpt-4o", "mock:echo"], None, {}, []),
                   ("described", ["mock:echo"], "kept", {}, [])]


def test_a_lockfile_reads_with_the_standard_library_when_tomli_is_missing(tmp_path):
    """tomli is a dependency, but a packager may leave it out: tomllib reads the same file,
    and a syntax error still names its line."""
    good = tmp_path / "good.lock"
    good.write_text(three_bindings("middle", '"mock:echo"', 1))
    bad = tmp_path / "bad.lock"
    bad.write_text(BINDING + "models = [\n")
    script = (
        "import sys; sys.modules['tomli'] = None\n"
        "from llmring import lockfile\n"
        f"print(sorted(b.alias for b in lockfile.read({str(good)!r}).profiles['default'].bindings))\n"
        "try:\n"
        f"    lockfile.read({str(bad)!r})\n"
        "except lockfile.LockfileError as e:\n"
        "    print(e.line, 'tomli' in sys.modules and sys.modules['tomli'] is None)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["['middle', 'plain-0', 'plain-2']", "6 True"]  # models = [
