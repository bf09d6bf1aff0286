"""The caller's own bad values raise BadRequestError before any network call and never count
against a model; bookkeeping after an answer never loses it; seed details of resolution."""

import pickle

import pytest
from httpfake import openai_answer
from lockfiles import one_alias

from llmring import BadRequestError, ConfigurationError, LockfileError, ModelNotFoundError, Ring
from llmring.exceptions import AllModelsFailedError, MissingAliasesError, ProviderResponseError
from llmring.failover import CircuitBreaker

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def openai_ok(text="from openai"):
    return openai_answer(text)


def write_lock(tmp_path, models, extra=""):
    return one_alias(tmp_path, models, tail=extra)


@pytest.fixture
def openai(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.add("POST", "/v1/chat/completions", openai_ok())
    return server


BAD = [
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"),
    ({"temperature": "0.2"}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": "100"}, "max_tokens"),
    ({"timeout": "5"}, "timeout"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"stop": 5}, "stop"),
    ({"stop": ["ok", 3]}, "stop"),
    ({"tool_choice": "bogus", "tools": [TOOL]}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "other"}}, "tools": [TOOL]}, "'other'"),
    ({"tool_choice": {"name": "lookup"}}, "'lookup'"),
    ({"tool_choice": "required"}, "needs tools"),
    ({"tools": {"name": "lookup"}}, "tools must be a list"),
    ({"extra_params": ["seed", 1]}, "extra_params"),
]


@pytest.mark.parametrize("params, fragment", BAD, ids=[repr(p) for p, _ in BAD])
def test_a_bad_value_raises_before_any_network_call(tmp_path, openai, params, fragment):
    ring = Ring(write_lock(tmp_path, ["openai:gpt-4o-mini", "mock:echo"]))
    with ring, pytest.raises(BadRequestError, match=fragment) as info:
        ring.chat("a", "hi", **params)
    assert info.value.kind == "bad_request"
    assert isinstance(info.value, ValueError) and isinstance(info.value, ProviderResponseError)
    assert openai.requests == []


@pytest.mark.parametrize("messages, fragment", [
    ([{"role": "robot", "content": "hi"}], "role"),
    ([{"role": "user", "content": 5}], "content"),
    ([{"role": "user", "content": [{"text": "no type"}]}], "part"),
    ([{"role": "user", "content": "hi", "colour": "red"}], "Unknown message field"),
    ([42], "must be a Message or a dict"),
])
def test_a_malformed_message_raises_before_any_network_call(tmp_path, openai, messages, fragment):
    with Ring(write_lock(tmp_path, ["openai:gpt-4o-mini"])) as ring, pytest.raises(BadRequestError, match=fragment):
        ring.chat("a", messages)
    assert openai.requests == []


@pytest.mark.parametrize("params", [
    {"tool_choice": "auto", "tools": [TOOL]}, {"tool_choice": "none"}, {"tool_choice": "required", "tools": [TOOL]},
    {"tool_choice": {"type": "function", "function": {"name": "lookup"}}, "tools": [TOOL]},
    {"tool_choice": {"name": "lookup"}, "tools": [TOOL]}, {"stop": ["a", "b"]}, {"stop": "x"},
    {"temperature": 0}, {"temperature": 1.5}, {"max_tokens": 1}, {"timeout": 30}, {"timeout": 0.5},
])
def test_good_values_pass(tmp_path, params):
    with Ring(write_lock(tmp_path, ["mock:echo"])) as ring:
        assert ring.chat("a", "hi", **params).content


def test_a_nan_temperature_never_trips_the_breaker_for_the_next_valid_call(tmp_path, openai):
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    with Ring(write_lock(tmp_path, ["openai:gpt-4o-mini", "mock:echo"]), breaker=breaker) as ring:
        for _ in range(3):
            with pytest.raises(BadRequestError):
                ring.chat("a", "hi", temperature=float("nan"))
        r = ring.chat("a", "hi", temperature=0.2)
    assert r.model == "openai:gpt-4o-mini" and [a.kind for a in r.attempts] == [None]
    assert len(openai.requests) == 1


def test_a_providers_bad_request_raises_at_once_and_is_not_counted(tmp_path):
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    with Ring(write_lock(tmp_path, ["mock:fail-bad_request", "mock:echo"]), breaker=breaker) as ring:
        with pytest.raises(ProviderResponseError) as info:
            ring.chat("a", "hi")
        assert [a.model for a in info.value.attempts] == ["mock:fail-bad_request"]
        assert not breaker.is_open("mock:fail-bad_request")


def test_the_cli_refuses_a_nan_temperature_in_one_line(tmp_path, openai):
    from click.testing import CliRunner

    from llmring.cli import cli

    write_lock(tmp_path, ["openai:gpt-4o-mini"])
    result = CliRunner().invoke(cli, ["chat", "-m", "a", "hi", "-t", "nan"])
    assert result.exit_code != 0 and "temperature" in result.output
    assert "Traceback" not in result.output and openai.requests == []


def test_a_bad_binding_default_is_a_configuration_error_naming_the_binding(tmp_path, openai):
    path = write_lock(tmp_path, ["openai:gpt-4o-mini"])
    with Ring(path) as ring:
        ring.lockfile.find("a", "default")[0].params["timeout"] = "30"  # as if read without validation
        with pytest.raises(ConfigurationError, match="params of alias 'a'") as info:
            ring.chat("a", "hi")
    assert not isinstance(info.value, BadRequestError) and openai.requests == []


def test_an_answer_survives_prices_that_cannot_be_read(tmp_path, openai):
    path = write_lock(tmp_path, ["openai:gpt-4o-mini"])
    with Ring(path) as ring:
        r = ring.chat("a", "hi")
        assert r.cost is not None  # the registry's price
        endpoint = ring.lockfile.providers
        from llmring.lockfile import Endpoint

        endpoint["openai"] = Endpoint("openai", options={"prices": 5})
        ring.providers.drop()
        r = ring.chat("a", "hi")
    assert r.content == "from openai" and r.cost is None and "prices must be a table" in r.cost_note


def test_an_answer_survives_a_price_that_is_not_a_number(tmp_path):
    with Ring(write_lock(tmp_path, ["mock:echo"])) as ring:
        from llmring.lockfile import Endpoint

        ring.lockfile.providers["mock"] = Endpoint("mock", options={"prices": {"echo": {"input": "free"}}})
        r = ring.chat("a", "hi")
        chunks = list(ring.stream("a", "hi"))
    assert r.content == "hi" and r.cost is None and "input price of mock:echo" in r.cost_note
    assert "".join(c.delta for c in chunks) == "hi" and chunks[-1].cost is None


def test_no_configured_model_is_also_model_not_found(tmp_path):
    with Ring(write_lock(tmp_path, ["nosuch:one", "other:two"])) as ring, pytest.raises(ModelNotFoundError) as info:
        ring.chat("a", "hi")
    assert isinstance(info.value, AllModelsFailedError) and info.value.kind == "not_configured"
    assert isinstance(pickle.loads(pickle.dumps(info.value)), ModelNotFoundError)


def test_a_model_that_failed_otherwise_is_not_model_not_found(tmp_path):
    with Ring(write_lock(tmp_path, ["mock:fail-auth", "nosuch:two"])) as ring, \
            pytest.raises(AllModelsFailedError) as info:
        ring.chat("a", "hi")
    assert not isinstance(info.value, ModelNotFoundError)


def test_require_aliases_on_a_broken_lockfile_says_it_is_broken(tmp_path):
    path = write_lock(tmp_path, ["mock:echo"])
    ring = Ring(path)
    path.write_text("version = \n")
    with pytest.raises(LockfileError) as info:
        ring.require_aliases(["a"], context="my-library")
    assert "missing required aliases" not in str(info.value)


@pytest.mark.parametrize("profile, fragment", [
    (None, "has no default profile"),  # the file has only [profiles.us-west]
    ("us-wset", "profile 'us-wset' is not in the lockfile; its profiles are us-west"),
])
def test_require_aliases_names_a_missing_profile_not_the_aliases(tmp_path, profile, fragment):
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\n\n[profiles.us-west]\n\n[[profiles.us-west.bindings]]\nalias = "a"\n'
                    'models = ["mock:echo"]\n')
    ring = Ring(path)
    with pytest.raises(LockfileError, match=fragment) as info:
        ring.require_aliases(["a"], profile=profile)
    assert not isinstance(info.value, MissingAliasesError)
    ring.require_aliases(["a"], profile="us-west")  # bound there: nothing to say
    with pytest.raises(MissingAliasesError, match="missing required aliases: b"):
        ring.require_aliases(["a", "b"], profile="us-west")


@pytest.mark.parametrize("options", [{"timeout": "5"}, {"timeout": 0}, {"timeout": float("nan")},
                                     {"connect_timeout": -1}, {"connect_timeout": None}])
def test_a_ring_refuses_timeouts_that_are_not_seconds(tmp_path, options):
    with pytest.raises(ConfigurationError, match="must be a number of seconds above 0"):
        Ring(write_lock(tmp_path, ["mock:echo"]), **options)


def test_binding_extra_params_merge_with_the_callers_at_any_depth(tmp_path, openai):
    """The binding's extra_params are defaults under the caller's, merged table by table as
    the providers merge extra_params into a body: a nested key of each side arrives, the
    caller's value wins where both set one, and the caller's None still removes a body key."""
    path = write_lock(tmp_path, ["openai:gpt-4o-mini"], 'params = { extra_params = { seed = 3, metadata = { '
                      'team = "search", tier = "gold" } }, user = "lockfile" }\n')
    with Ring(path) as ring:
        ring.chat("a", "hi", temperature=0.5, extra_params={"metadata": {"tier": "silver", "run": "7"},
                                                             "temperature": None})
    body = openai.last().json()
    assert body["metadata"] == {"team": "search", "tier": "silver", "run": "7"}
    assert body["seed"] == 3 and body["user"] == "lockfile" and "temperature" not in body
