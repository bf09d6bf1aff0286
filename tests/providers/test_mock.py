"""The offline mock provider: echo, simulated failures, flaky and slow models, scripts."""

import json
import threading
import time

import pytest

from llmring.exceptions import (
    KINDS,
    ProviderError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message, ToolCall
from llmring_providers import mock
from llmring_providers.mock import MockProvider, example_for_schema

T = (1.0, 5.0)


@pytest.fixture(autouse=True)
def no_scripts():
    mock.clear_scripts()
    yield
    mock.clear_scripts()


def provider(**env):
    return MockProvider(ProviderSettings(name="mock", env=env))


def ask(text="Hello there", **kw):
    return LLMRequest(messages=[Message(role="system", content="Be brief please"),
                                Message(role="user", content="first question"),
                                Message(role="assistant", content="an answer"),
                                Message(role="user", content=text)], **kw)


def collect(chunks):
    chunks = list(chunks)
    finals = [c for c in chunks if c.finish_reason]
    assert len(finals) == 1 and chunks[-1] is finals[0]
    return chunks, "".join(c.delta for c in chunks), finals[0]


# -- echo -----------------------------------------------------------------------------------

def test_echo_answers_with_the_last_user_message_and_counts_words():
    r = provider().chat("echo", ask("the quick brown fox"), T)
    assert r.content == "the quick brown fox"
    assert r.model == "echo"
    assert r.finish_reason == r.raw_finish_reason == "stop"
    assert r.tool_calls is None
    # input: 3 + 2 + 2 + 4 words over all messages; output: the 4 answer words
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 4, 15)


def test_echo_takes_only_the_text_parts_of_a_multipart_message():
    request = LLMRequest(messages=[Message(role="user", content=[
        {"type": "text", "text": "what is "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this?"}])])
    assert provider().chat("echo", request, T).content == "what is this?"


def test_echo_streams_word_by_word_then_one_final_chunk():
    chunks, text, final = collect(provider().stream("echo", ask("one two  three\nfour é"), T))
    assert text == "one two  three\nfour é"
    assert [c.delta for c in chunks[:-1]] == ["one ", "two  ", "three\n", "four ", "é"]
    assert final.delta == "" and final.finish_reason == "stop" and final.tool_calls is None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 5)


def test_echo_with_a_json_schema_returns_json_with_the_required_properties():
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 6},
            "count": {"type": "integer", "minimum": 3},
            "score": {"type": "number", "exclusiveMinimum": 0.5},
            "ok": {"type": "boolean"},
            "mood": {"enum": ["happy", "sad"]},
            "nothing": {"type": "null"},
            "maybe": {"type": ["string", "null"], "format": "date"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "owner": {"$ref": "#/$defs/Person"},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "optional": {"type": "string"},
        },
        "required": ["title", "count", "score", "ok", "mood", "nothing", "maybe", "tags", "owner", "either"],
        "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string", "const": "Ada"}},
                             "required": ["name"]}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    r = provider().chat("echo", ask(response_format=fmt), T)
    doc = json.loads(r.content)
    assert set(doc) == set(schema["required"])
    assert isinstance(doc["title"], str) and len(doc["title"]) >= 6
    assert isinstance(doc["count"], int) and not isinstance(doc["count"], bool) and doc["count"] >= 3
    assert isinstance(doc["score"], float) and doc["score"] > 0.5
    assert doc["ok"] is True and doc["nothing"] is None
    assert doc["mood"] in ("happy", "sad")
    assert doc["maybe"] == "2024-01-01"
    assert len(doc["tags"]) == 2 and all(isinstance(t, str) for t in doc["tags"])
    assert doc["owner"] == {"name": "Ada"}
    assert isinstance(doc["either"], int)
    assert r.usage.output_tokens == len(r.content.split())
    # the stream carries the same document
    _, text, _ = collect(provider().stream("echo", ask(response_format=fmt), T))
    assert json.loads(text) == doc


def test_echo_with_json_object_wraps_the_text():
    r = provider().chat("echo", ask("say \"hi\"", response_format={"type": "json_object"}), T)
    assert json.loads(r.content) == {"echo": 'say "hi"'}


def test_schema_examples_end_for_recursive_schemas_and_respect_bounds():
    tree = {"$ref": "#/definitions/Node", "definitions": {"Node": {
        "type": "object", "required": ["children"],
        "properties": {"children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}}}}}
    value = example_for_schema(tree)
    depth = 0
    while value["children"]:
        value, depth = value["children"][0], depth + 1
    assert 1 <= depth <= 5
    assert example_for_schema({"type": "string", "maxLength": 2}) == "mo"
    assert example_for_schema({"type": "array", "items": {"type": "integer"}, "maxItems": 0}) == []
    assert example_for_schema({"type": "integer", "maximum": -4}) == -4
    assert example_for_schema({"prefixItems": [{"type": "boolean"}, {"type": "number"}]}) == [True, 0.0]


# -- simulated failures -----------------------------------------------------------------------

EXPECTED_STATUS = {"rate_limit": 429, "overloaded": 529, "server": 503, "auth": 401, "not_found": 404,
                   "bad_request": 400}


@pytest.mark.parametrize("kind", list(KINDS))
def test_fail_models_raise_their_kind(kind):
    with pytest.raises(ProviderError) as e:
        provider().chat(f"fail-{kind}", ask(), T)
    err = e.value
    assert err.kind == kind and type(err).kind == kind
    assert err.provider == "mock" and err.model == f"fail-{kind}"
    assert kind in str(err)
    if kind in EXPECTED_STATUS:
        assert err.status == EXPECTED_STATUS[kind]
    with pytest.raises(ProviderError) as e:
        next(iter(provider().stream(f"fail-{kind}", ask(), T)))
    assert e.value.kind == kind


def test_rate_limit_failure_asks_to_retry_after_a_second():
    with pytest.raises(ProviderRateLimitError) as e:
        provider().chat("fail-rate_limit", ask(), T)
    assert e.value.retry_after == 1.0


@pytest.mark.parametrize("model", ["fail-bogus", "nonsense", "flaky-server-x", "flaky-bogus-1", "slow-abc"])
def test_unknown_models_are_not_found_and_list_what_exists(model):
    mock.script("greeter", ["hi"])
    with pytest.raises(ProviderError) as e:
        provider().chat(model, ask(), T)
    message = str(e.value)
    assert e.value.kind == "not_found" and e.value.status == 404
    for expected in ("echo", "fail-<kind>", "flaky-<kind>-<n>", "slow-<ms>", "rate_limit", "overloaded",
                     "greeter", repr(model)):
        assert expected in message


def test_flaky_fails_n_times_per_model_and_instance_then_echoes():
    p = provider()
    for _ in range(2):
        with pytest.raises(ProviderError) as e:
            p.chat("flaky-overloaded-2", ask(), T)
        assert e.value.kind == "overloaded" and e.value.status == 529
    assert p.chat("flaky-overloaded-2", ask("back"), T).content == "back"
    assert p.chat("flaky-overloaded-2", ask("still"), T).content == "still"
    # a different model and a new instance count on their own
    with pytest.raises(ProviderError):
        p.chat("flaky-server-1", ask(), T)
    _, text, _ = collect(p.stream("flaky-server-1", ask("streamed"), T))
    assert text == "streamed"
    with pytest.raises(ProviderError):
        provider().chat("flaky-overloaded-2", ask(), T)
    assert provider().chat("flaky-server-0", ask("none"), T).content == "none"


def test_slow_waits_then_echoes():
    start = time.monotonic()
    r = provider().chat("slow-150", ask("late"), (1.0, 2.0))
    assert time.monotonic() - start >= 0.15
    assert r.content == "late"


def test_slow_beyond_the_read_timeout_times_out_after_the_timeout():
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as e:
        provider().chat("slow-5000", ask(), (1.0, 0.2))
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 1.0
    assert e.value.kind == "timeout" and "0.2" in str(e.value)
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        next(iter(provider().stream("slow-5000", ask(), (1.0, 0.1))))
    assert time.monotonic() - start < 1.0


# -- scripts from Python ------------------------------------------------------------------------

def test_a_script_plays_its_replies_in_order_then_says_it_ran_out():
    mock.script("planner", [
        "first answer",
        {"content": {"plan": [1, 2]}},
        {"content": "cut", "finish_reason": "length"},
        {"error": "overloaded"},
    ])
    p = provider()
    assert p.chat("planner", ask(), T).content == "first answer"
    assert json.loads(p.chat("planner", ask(), T).content) == {"plan": [1, 2]}
    r = p.chat("planner", ask(), T)
    assert (r.content, r.finish_reason, r.usage.output_tokens) == ("cut", "length", 1)
    with pytest.raises(ProviderError) as e:
        p.chat("planner", ask(), T)
    assert e.value.kind == "overloaded" and e.value.status == 529
    with pytest.raises(ProviderResponseError) as e:
        p.chat("planner", ask(), T)
    assert e.value.kind == "bad_request"
    assert "script for mock:planner has no more replies" in str(e.value)


def test_scripted_tool_calls_come_back_as_tool_calls():
    mock.script("agent", [{"content": "", "tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"},
        {"name": "get_time", "arguments": '{"zone": "CET"}'},
        {"name": "broken", "arguments": '{"zone": '},
    ]}, "It is sunny."])
    p = provider()
    r = p.chat("agent", ask(), T)
    assert r.finish_reason == "tool_calls" and r.content == ""
    assert all(isinstance(c, ToolCall) for c in r.tool_calls)
    weather, clock, broken = r.tool_calls
    assert (weather.id, weather.name, weather.arguments) == ("call_1", "get_weather", {"city": "Paris"})
    assert clock.name == "get_time" and clock.arguments == {"zone": "CET"} and clock.id
    assert clock.id != weather.id and clock.id != broken.id
    assert broken.arguments == {} and broken.raw_arguments == '{"zone": '
    assert p.chat("agent", ask(), T).content == "It is sunny."


def test_streaming_a_scripted_reply_streams_text_and_tool_call_fragments():
    mock.script("agent", [{"content": "Let me check that.", "tool_calls": [
        {"name": "lookup", "arguments": {"query": "llmring", "limit": 3}},
        {"name": "second", "arguments": {}}]}])
    chunks, text, final = collect(provider().stream("agent", ask(), T))
    assert text == "Let me check that."
    assert len([c for c in chunks if c.delta]) == 4
    assembled: dict = {}
    for chunk in chunks:
        for d in chunk.tool_call_deltas or []:
            entry = assembled.setdefault(d.index, {"id": None, "name": None, "args": ""})
            entry["id"] = d.id or entry["id"]
            entry["name"] = d.name or entry["name"]
            entry["args"] += d.arguments
    assert [(e["name"], json.loads(e["args"])) for e in assembled.values()] == [
        ("lookup", {"query": "llmring", "limit": 3}), ("second", {})]
    assert final.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [
        (e["id"], e["name"], json.loads(e["args"])) for e in assembled.values()]


def test_a_scripted_error_in_a_stream_raises_before_any_chunk():
    mock.script("s", [{"error": "rate_limit"}])
    with pytest.raises(ProviderRateLimitError):
        next(iter(provider().stream("s", ask(), T)))


def test_scripts_are_module_wide_replaceable_and_clearable():
    mock.script("shared", ["a", "b"])
    assert provider().chat("shared", ask(), T).content == "a"
    assert provider().chat("shared", ask(), T).content == "b"  # another instance, same script
    mock.script("shared", ["c"])
    assert provider().chat("shared", ask(), T).content == "c"
    assert provider().list_models(T) == ["echo", "shared"]
    mock.clear_scripts()
    with pytest.raises(ProviderError) as e:
        provider().chat("shared", ask(), T)
    assert e.value.kind == "not_found" and "scripted: none" in str(e.value)


@pytest.mark.parametrize("name, replies, message", [
    ("echo", ["x"], "built-in"),
    ("fail-mine", ["x"], "built-in"),
    ("", ["x"], "non-empty name"),
    ("s", "just text", "list of replies"),
    ("s", [42], "reply 1 of the script for mock:s must be a string or a dict"),
    ("s", ["ok", {"text": "x"}], "reply 2 of the script for mock:s has unknown key(s) text"),
    ("s", [{"error": "meltdown"}], "error 'meltdown'"),
    ("s", [{"finish_reason": "done"}], "finish_reason 'done'"),
    ("s", [{"tool_calls": [{"arguments": {}}]}], "must be a dict with a name"),
    ("s", [{"tool_calls": [{"name": "f", "arguments": [1]}]}], "must be a dict or JSON text"),
])
def test_bad_scripts_are_refused_with_a_clear_message(name, replies, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mock.script(name, replies)


# -- scripts from a file ---------------------------------------------------------------------------

def write_script(tmp_path, data, name="script.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_scripts_from_the_file_named_by_the_environment(tmp_path):
    path = write_script(tmp_path, {"support": ["Hello!", {"tool_calls": [{"name": "refund", "arguments":
                                                                          {"order": 7}}]}],
                                   "other": ["x"]})
    p = provider(LLMRING_MOCK_SCRIPT=path)
    assert p.list_models(T) == ["echo", "other", "support"]
    assert p.chat("support", ask(), T).content == "Hello!"
    r = p.chat("support", ask(), T)
    assert r.tool_calls[0].name == "refund" and r.tool_calls[0].arguments == {"order": 7}
    with pytest.raises(ProviderError, match="no more replies"):
        p.chat("support", ask(), T)
    # loaded once per instance: editing the file does not change this instance
    write_script(tmp_path, {"support": ["changed"]})
    with pytest.raises(ProviderError, match="no more replies"):
        p.chat("support", ask(), T)
    assert provider(LLMRING_MOCK_SCRIPT=path).chat("support", ask(), T).content == "changed"
    assert p.configuration_problem() is None


def test_python_scripts_win_over_the_file(tmp_path):
    path = write_script(tmp_path, {"bot": ["from file"]})
    mock.script("bot", ["from python"])
    p = provider(LLMRING_MOCK_SCRIPT=path)
    assert p.chat("bot", ask(), T).content == "from python"
    with pytest.raises(ProviderError, match="no more replies"):
        p.chat("bot", ask(), T)


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"bot": "hello"}', "list of replies"),
    ('{"bot": [{"error": "nope"}]}', "error 'nope'"),
    ('{"echo": ["x"]}', "built-in"),
])
def test_a_malformed_script_file_is_a_clear_error_naming_the_file(tmp_path, content, reason):
    path = write_script(tmp_path, content, name="my-mock.json")
    p = provider(LLMRING_MOCK_SCRIPT=path)
    with pytest.raises(ProviderResponseError) as e:
        p.chat("bot", ask(), T)
    assert path in str(e.value) and "LLMRING_MOCK_SCRIPT" in str(e.value) and reason in str(e.value)
    with pytest.raises(ProviderResponseError):
        p.list_models(T)
    assert path in p.configuration_problem()
    # echo and the failure models need no script
    assert p.chat("echo", ask("still works"), T).content == "still works"


def test_a_missing_script_file_is_a_clear_error(tmp_path):
    path = str(tmp_path / "absent.json")
    with pytest.raises(ProviderResponseError, match="absent.json.*cannot read it"):
        provider(LLMRING_MOCK_SCRIPT=path).chat("bot", ask(), T)


# -- thread safety ------------------------------------------------------------------------------------

def run_threads(count, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)


def drain(p, model, seen, ran_out, lock):
    while True:
        try:
            content = p.chat(model, ask(), T).content
        except ProviderResponseError:
            with lock:
                ran_out.append(model)
            return
        with lock:
            seen.append(content)


def test_each_python_scripted_reply_is_served_exactly_once_under_concurrency():
    replies = [f"reply {i}" for i in range(400)]
    mock.script("busy", replies)
    providers = [provider(), provider()]
    seen, ran_out, lock = [], [], threading.Lock()
    run_threads(8, lambda i: drain(providers[i % 2], "busy", seen, ran_out, lock))
    assert sorted(seen) == sorted(replies)
    assert len(ran_out) == 8


def test_each_file_scripted_reply_is_served_exactly_once_under_concurrency(tmp_path):
    replies = [f"reply {i}" for i in range(400)]
    p = provider(LLMRING_MOCK_SCRIPT=write_script(tmp_path, {"busy": replies}))
    seen, ran_out, lock = [], [], threading.Lock()
    run_threads(8, lambda i: drain(p, "busy", seen, ran_out, lock))
    assert sorted(seen) == sorted(replies)
    assert len(ran_out) == 8


def test_flaky_counts_every_concurrent_call():
    p = provider()
    failures, lock = [], threading.Lock()

    def call(i):
        for _ in range(10):
            try:
                p.chat("flaky-server-30", ask(), T)
            except ProviderError:
                with lock:
                    failures.append(i)

    run_threads(8, call)
    assert len(failures) == 30


# -- plugin surface -----------------------------------------------------------------------------------

def test_needs_no_key_and_registers_the_mock_prefix():
    p = provider()
    assert MockProvider.key_envs == ()
    assert p.api_key() is None and p.configuration_problem() is None
    registered = {}
    mock.register_providers(register=lambda name, factory: registered.setdefault(name, factory))
    assert registered == {"mock": MockProvider}
