"""The Anthropic provider against a real local HTTP server speaking the Messages API."""

import json

import pytest
from httpfake import Reply, closed_port, sse, wait_for

from llmring.exceptions import ProviderError
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message, ToolCall
from llmring_providers.anthropic import AnthropicProvider, register_providers

KEY = "sk-ant-test-very-secret-0123456789"
TIMEOUT = (2, 5)
PATH = "/v1/messages"


def make(server, **env):
    return AnthropicProvider(ProviderSettings(name="anthropic",
                                              env={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.url, **env}))


def message(*blocks, stop="end_turn", usage=(16, 13), **extra):
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": list(blocks), "stop_reason": stop, "stop_sequence": None, **extra}
    if usage:
        body["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1],
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return body


def text(t):
    return {"type": "text", "text": t}


def tool_use(id_, name, input_):
    return {"type": "tool_use", "id": id_, "name": name, "input": input_}


def ask(content="Hi", **kw):
    return LLMRequest(messages=[Message(role="user", content=content)], **kw)


# -- chat -------------------------------------------------------------------------------

def test_chat_sends_required_fields_only_and_parses(server):
    server.add("POST", PATH, Reply(json=message(text("2 + 2 = 4"))))
    r = make(server).chat("claude-haiku-4-5", ask("What's 2 + 2?"), TIMEOUT)

    sent = server.last()
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json() == {"model": "claude-haiku-4-5", "max_tokens": 4096,
                           "messages": [{"role": "user", "content": [text("What's 2 + 2?")]}]}
    assert (r.content, r.model, r.finish_reason, r.raw_finish_reason) == ("2 + 2 = 4", "claude-haiku-4-5",
                                                                          "stop", "end_turn")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (16, 13)
    assert r.tool_calls is None


def test_default_base_url_has_no_v1():
    p = AnthropicProvider(ProviderSettings(name="anthropic", env={"ANTHROPIC_API_KEY": KEY}))
    assert p.base_url == "https://api.anthropic.com"


def test_missing_key_is_not_configured(server):
    p = AnthropicProvider(ProviderSettings(name="anthropic", env={"ANTHROPIC_BASE_URL": server.url}))
    with pytest.raises(ProviderError) as e:
        p.chat("claude", ask(), TIMEOUT)
    assert e.value.kind == "not_configured" and "ANTHROPIC_API_KEY" in str(e.value)
    assert server.requests == []


def test_parameters(server):
    server.add("POST", PATH, Reply(json=message(text("ok"))))
    make(server).chat("claude", ask(temperature=0.0, max_tokens=100, stop="END", extra_params={"top_k": 5}),
                      TIMEOUT)
    body = server.last().json()
    assert (body["temperature"], body["max_tokens"], body["stop_sequences"], body["top_k"]) == (0.0, 100, ["END"], 5)


def test_system_goes_top_level_and_same_role_turns_merge(server):
    server.add("POST", PATH, Reply(json=message(text("ok"))))
    messages = [Message(role="system", content="Be terse."), Message(role="user", content="One"),
                Message(role="user", content="Two"), Message(role="system", content="Use French."),
                Message(role="assistant", content="Un"), Message(role="assistant", content="Deux"),
                Message(role="user", content="Trois?")]
    make(server).chat("claude", LLMRequest(messages=messages), TIMEOUT)
    body = server.last().json()
    assert body["system"] == "Be terse.\n\nUse French."
    assert body["messages"] == [
        {"role": "user", "content": [text("One"), text("Two")]},
        {"role": "assistant", "content": [text("Un"), text("Deux")]},
        {"role": "user", "content": [text("Trois?")]},
    ]


def test_images(server):
    server.add("POST", PATH, Reply(json=message(text("a cat"))))
    parts = [{"type": "text", "text": "What is it?"},
             {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
             {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]
    make(server).chat("claude", ask(parts), TIMEOUT)
    assert server.last().json()["messages"][0]["content"] == [
        text("What is it?"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.png"}},
    ]


def test_tools_and_tool_turns(server):
    server.add("POST", PATH, Reply(json=message(text("Sunny, 15°C."))))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    messages = [
        Message(role="user", content="Weather in Berlin and the time?"),
        Message(role="assistant", content="Let me look.",
                tool_calls=[ToolCall(id="toolu_1", name="weather", arguments={"city": "Berlin"}),
                            ToolCall(id="toolu_2", name="clock", arguments={})]),
        Message(role="tool", tool_call_id="toolu_1", content="15°C, sunny"),
        Message(role="tool", tool_call_id="toolu_2", content="12:00"),
        Message(role="user", content="Thanks!"),
    ]
    tools = [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": schema}},
             {"name": "clock", "description": "Time"}]
    make(server).chat("claude", LLMRequest(messages=messages, tools=tools), TIMEOUT)
    body = server.last().json()
    assert body["tools"] == [{"name": "weather", "description": "Weather", "input_schema": schema},
                             {"name": "clock", "description": "Time",
                              "input_schema": {"type": "object", "properties": {}}}]
    assert "tool_choice" not in body
    assert body["messages"][1] == {"role": "assistant", "content": [
        text("Let me look."),
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Berlin"}},
        {"type": "tool_use", "id": "toolu_2", "name": "clock", "input": {}}]}
    # Both results in one user turn, the user's next words after them.
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [text("15°C, sunny")]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [text("12:00")]},
        text("Thanks!")]}
    assert len(body["messages"]) == 3


@pytest.mark.parametrize("given,wire", [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ("any", {"type": "any"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ({"name": "f"}, {"type": "tool", "name": "f"}),
])
def test_tool_choice(server, given, wire):
    server.add("POST", PATH, Reply(json=message(text("ok"))))
    make(server).chat("claude", ask(tools=[{"name": "f"}], tool_choice=given), TIMEOUT)
    assert server.last().json()["tool_choice"] == wire


def test_tool_use_answer(server):
    server.add("POST", PATH, Reply(json=message(
        text("Checking."), tool_use("toolu_a", "weather", {"lat": "52.52"}), tool_use("toolu_b", "lang", {}),
        stop="tool_use")))
    r = make(server).chat("claude", ask(tools=[{"name": "weather"}, {"name": "lang"}]), TIMEOUT)
    assert r.content == "Checking."
    assert (r.finish_reason, r.raw_finish_reason) == ("tool_calls", "tool_use")
    assert r.tool_calls == [ToolCall(id="toolu_a", name="weather", arguments={"lat": "52.52"}),
                            ToolCall(id="toolu_b", name="lang", arguments={})]


SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def test_json_schema_forces_a_tool_and_returns_its_input_as_content(server):
    server.add("POST", PATH, Reply(json=message(tool_use("toolu_j", "person", {"name": "Jöhn", "age": 30}),
                                                stop="tool_use")))
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}
    r = make(server).chat("claude", ask(response_format=fmt), TIMEOUT)
    body = server.last().json()
    assert [t["name"] for t in body["tools"]] == ["person"]
    assert body["tools"][0]["input_schema"] == SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": "person"}
    assert "response_format" not in body
    assert json.loads(r.content) == {"name": "Jöhn", "age": 30}
    assert r.tool_calls is None
    assert r.finish_reason == "stop"


def test_json_object_uses_a_generic_tool(server):
    server.add("POST", PATH, Reply(json=message(tool_use("t", "json_output", {"ok": True}), stop="tool_use")))
    r = make(server).chat("claude", ask(response_format={"type": "json_object"}), TIMEOUT)
    body = server.last().json()
    assert body["tools"][0]["name"] == "json_output"
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"] == {"type": "tool", "name": "json_output"}
    assert json.loads(r.content) == {"ok": True}


def test_json_schema_with_the_callers_tools_lets_the_model_call_them(server):
    server.add("POST", PATH, Reply(json=message(tool_use("t1", "search", {"q": "x"}), stop="tool_use")))
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}
    r = make(server).chat("claude", ask(response_format=fmt, tools=[{"name": "search"}]), TIMEOUT)
    body = server.last().json()
    assert [t["name"] for t in body["tools"]] == ["search", "person"]
    assert body["tool_choice"] == {"type": "any"}
    assert r.tool_calls == [ToolCall(id="t1", name="search", arguments={"q": "x"})]
    assert (r.content, r.finish_reason) == ("", "tool_calls")


def test_structured_answer_as_a_plain_text_block_is_accepted(server):
    # The newer API (output_config.format) answers with the JSON in a text block.
    server.add("POST", PATH, Reply(json=message(text('{"name":"John","age":30}'))))
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}
    r = make(server).chat("claude", ask(response_format=fmt), TIMEOUT)
    assert json.loads(r.content) == {"name": "John", "age": 30}
    assert (r.finish_reason, r.tool_calls) == ("stop", None)


def test_thinking_blocks_are_not_content(server):
    server.add("POST", PATH, Reply(json=message(
        {"type": "thinking", "thinking": "Let me think...", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"}, text("Answer."))))
    assert make(server).chat("claude", ask(), TIMEOUT).content == "Answer."


@pytest.mark.parametrize("raw,finish", [("max_tokens", "length"), ("stop_sequence", "stop"),
                                        ("refusal", "content_filter"), ("end_turn", "stop"), (None, "stop")])
def test_stop_reasons(server, raw, finish):
    server.add("POST", PATH, Reply(json=message(text("x"), stop=raw)))
    r = make(server).chat("claude", ask(), TIMEOUT)
    assert (r.finish_reason, r.raw_finish_reason) == (finish, raw)


def test_cached_prompt_tokens_count_as_input(server):
    body = message(text("x"))
    body["usage"].update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
    server.add("POST", PATH, Reply(json=body))
    assert make(server).chat("claude", ask(), TIMEOUT).usage.input_tokens == 136


def test_list_models(server):
    server.add("GET", "/v1/models", Reply(json={"data": [{"id": "claude-sonnet-4-5", "type": "model"},
                                                         {"id": "claude-haiku-4-5", "type": "model"}],
                                                "has_more": False}))
    assert make(server).list_models(TIMEOUT) == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    assert server.last().headers["x-api-key"] == KEY


def test_compatible_endpoint_without_key(server):
    server.add("POST", "/proxy/v1/messages", Reply(json=message(text("hi"))))
    p = AnthropicProvider(ProviderSettings(name="proxy", base_url=server.url + "/proxy"))
    assert p.chat("claude", ask(), TIMEOUT).content == "hi"
    assert "x-api-key" not in server.last().headers


def test_registers_its_prefix():
    seen = {}
    register_providers(register=lambda name, factory: seen.setdefault(name, factory))
    assert seen == {"anthropic": AnthropicProvider}


# -- errors ---------------------------------------------------------------------------------

def err(type_, message):
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_1"}


@pytest.mark.parametrize("status,body,headers,kind,retry", [
    (400, err("invalid_request_error", "messages: Input should be a valid array"), {}, "bad_request", None),
    (400, err("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"), {},
     "context_length", None),
    (400, err("invalid_request_error", "Your credit balance is too low to access the Anthropic API."), {},
     "auth", None),
    (400, err("invalid_request_error", "This model does not support image input."), {}, "unsupported", None),
    (401, err("authentication_error", "invalid x-api-key"), {}, "auth", None),
    (403, err("permission_error", "This key does not support this model"), {}, "auth", None),
    (403, err("permission_error", "Your API key does not have permission"), {}, "auth", None),
    (404, err("not_found_error", "model: randomodel"), {}, "not_found", None),
    (429, err("rate_limit_error", "Rate limited"), {"retry-after": "20"}, "rate_limit", 20.0),
    (529, err("overloaded_error", "Overloaded"), {}, "overloaded", None),
    (500, err("api_error", "Internal server error"), {}, "server", None),
    (413, err("request_too_large", "Request exceeds the maximum size"), {}, "context_length", None),
    (504, err("timeout_error", "Request timed out"), {}, "timeout", None),
])
def test_http_errors(server, status, body, headers, kind, retry):
    server.add("POST", PATH, Reply(status=status, json=body, headers=headers))
    with pytest.raises(ProviderError) as e:
        make(server).chat("claude", ask(), TIMEOUT)
    assert (e.value.kind, e.value.status, e.value.retry_after) == (kind, status, retry)
    assert str(e.value) == f"anthropic: {body['error']['message']}"


def test_error_that_is_not_anthropic_shaped(server):
    server.add("POST", PATH, Reply(status=502, body="<html>Bad gateway</html>", content_type="text/html"))
    with pytest.raises(ProviderError) as e:
        make(server).chat("claude", ask(), TIMEOUT)
    assert (e.value.kind, e.value.status) == ("server", 502)
    assert "Bad gateway" in str(e.value)


def test_key_echoed_by_the_server_never_reaches_the_error(server):
    server.add("POST", PATH, Reply(status=401, json=err("authentication_error", f"invalid x-api-key {KEY}")))
    with pytest.raises(ProviderError) as e:
        make(server).chat("claude", ask(), TIMEOUT)
    assert KEY not in str(e.value) and KEY not in repr(e.value)


def test_read_timeout(server):
    server.add("POST", PATH, Reply(json=message(text("late")), delay=1.0))
    with pytest.raises(ProviderError) as e:
        make(server).chat("claude", ask(), (2, 0.2))
    assert e.value.kind == "timeout" and KEY not in str(e.value)


def test_connection_refused():
    p = AnthropicProvider(ProviderSettings(name="anthropic", env={
        "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}"}))
    with pytest.raises(ProviderError) as e:
        p.chat("claude", ask(), TIMEOUT)
    assert e.value.kind == "connection" and KEY not in str(e.value)


# -- streaming ------------------------------------------------------------------------------

def start(input_tokens=17):
    return ("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude",
        "stop_reason": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})


def block_start(index, block):
    return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def block_delta(index, delta):
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def text_delta(index, t):
    return block_delta(index, {"type": "text_delta", "text": t})


def json_delta(index, fragment):
    return block_delta(index, {"type": "input_json_delta", "partial_json": fragment})


def block_stop(index):
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def finish(stop="end_turn", output_tokens=10):
    return ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                              "usage": {"output_tokens": output_tokens}})


STOP = ("message_stop", {"type": "message_stop"})
PING = ("ping", {"type": "ping"})


def stream_of(server, *events, **reply):
    server.add("POST", PATH, Reply(chunks=sse(*events), **reply))


def run(provider, request=None):
    return list(provider.stream("claude", request or ask(), TIMEOUT))


def text_of(chunks):
    return "".join(c.delta for c in chunks)


def test_stream_text(server):
    stream_of(server, start(17), block_start(0, text("")), PING, text_delta(0, "- Captain"),
              text_delta(0, "\n- Scoop"), block_stop(0), finish("end_turn", 10), STOP)
    chunks = run(make(server))
    assert server.last().json()["stream"] is True
    assert [c.delta for c in chunks[:-1]] == ["- Captain", "\n- Scoop"]
    final = chunks[-1]
    assert [c.finish_reason for c in chunks].count(None) == len(chunks) - 1
    assert (final.finish_reason, final.raw_finish_reason, final.tool_calls) == ("stop", "end_turn", None)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (17, 10)


def test_stream_tool_use(server):
    stream_of(server, start(633), block_start(0, text("")), text_delta(0, "Looking."), block_stop(0),
              block_start(1, tool_use("toolu_1", "weather", {})), PING, json_delta(1, ""),
              json_delta(1, '{"latitude"'), json_delta(1, ': "52.52"'), json_delta(1, "}"), block_stop(1),
              block_start(2, tool_use("toolu_2", "lang", {})), json_delta(2, ""), block_stop(2),
              finish("tool_use", 75), STOP)
    chunks = run(make(server))
    assert text_of(chunks) == "Looking."
    deltas = [d for c in chunks for d in c.tool_call_deltas or []]
    assert (deltas[0].index, deltas[0].id, deltas[0].name) == (0, "toolu_1", "weather")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"latitude": "52.52"}'
    assert [d.name for d in deltas if d.index == 1] == ["lang"]
    final = chunks[-1]
    assert (final.finish_reason, final.raw_finish_reason) == ("tool_calls", "tool_use")
    assert final.tool_calls == [ToolCall(id="toolu_1", name="weather", arguments={"latitude": "52.52"}),
                                ToolCall(id="toolu_2", name="lang", arguments={})]  # empty input means {}
    assert (final.usage.input_tokens, final.usage.output_tokens) == (633, 75)


def test_stream_thinking_is_left_out(server):
    stream_of(server, start(), block_start(0, {"type": "thinking", "thinking": ""}),
              block_delta(0, {"type": "thinking_delta", "thinking": "Hmm, let me see."}),
              block_delta(0, {"type": "signature_delta", "signature": "EqQB"}), block_stop(0),
              block_start(1, {"type": "redacted_thinking", "data": "xx"}), block_stop(1),
              block_start(2, text("")), text_delta(2, "42"), block_stop(2), finish(), STOP)
    chunks = run(make(server))
    assert text_of(chunks) == "42"


def test_stream_structured_output_arrives_as_text(server):
    stream_of(server, start(), block_start(0, tool_use("toolu_j", "person", {})), json_delta(0, '{"name": "J'),
              json_delta(0, 'ö", "age": 30}'), block_stop(0), finish("tool_use", 12), STOP)
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}
    chunks = run(make(server), ask(response_format=fmt))
    assert json.loads(text_of(chunks)) == {"name": "Jö", "age": 30}
    assert all(c.tool_call_deltas is None for c in chunks)
    assert (chunks[-1].tool_calls, chunks[-1].finish_reason) == (None, "stop")


def test_stream_structured_output_with_empty_input(server):
    stream_of(server, start(), block_start(0, tool_use("t", "json_output", {})), json_delta(0, ""),
              block_stop(0), finish("tool_use"), STOP)
    chunks = run(make(server), ask(response_format={"type": "json_object"}))
    assert text_of(chunks) == "{}"


def test_stream_unicode_split_across_network_chunks(server):
    events = [start(), block_start(0, text("")), text_delta(0, "Grüße 🦅"), text_delta(0, " 日本"), block_stop(0),
              finish(), STOP]
    frames = "".join(f"event: {n}\ndata: {json.dumps(d, ensure_ascii=False)}\n\n" for n, d in events).encode()
    cut = frames.index("🦅".encode()) + 1
    cut2 = frames.index("本".encode()) + 2
    server.add("POST", PATH, Reply(chunks=[frames[:cut], frames[cut:cut2], frames[cut2:]], chunk_delay=0.05))
    assert text_of(run(make(server))) == "Grüße 🦅 日本"


def test_stream_keepalive_comments_and_padded_data(server):
    # Anthropic pads some data lines with trailing spaces after the JSON.
    body = (": keep-alive\n\n"
            + "".join(f"event: {n}\ndata: {json.dumps(d)}   \n\n" for n, d in
                      [start(), block_start(0, text("")), text_delta(0, "ok")])
            + ":\n\n"
            + "".join(f"event: {n}\r\ndata: {json.dumps(d)}\r\n\r\n" for n, d in [block_stop(0), finish(), STOP]))
    server.add("POST", PATH, Reply(chunks=[body]))
    chunks = run(make(server))
    assert text_of(chunks) == "ok" and chunks[-1].finish_reason == "stop"


def test_stream_truncated_before_message_stop(server):
    stream_of(server, start(), block_start(0, text("")), text_delta(0, "Once upon"))
    got = []
    with pytest.raises(ProviderError) as e:
        for c in make(server).stream("claude", ask(), TIMEOUT):
            got.append(c.delta)
    assert e.value.kind == "connection" and "ended" in str(e.value)
    assert got == ["Once upon"]


@pytest.mark.parametrize("error,kind", [
    ({"type": "overloaded_error", "message": "Overloaded"}, "overloaded"),
    ({"type": "api_error", "message": "Internal server error"}, "server"),
    ({"type": "rate_limit_error", "message": "Rate limited"}, "rate_limit"),
])
def test_stream_error_event_midstream(server, error, kind):
    stream_of(server, start(), block_start(0, text("")), text_delta(0, "Hel"),
              ("error", {"type": "error", "error": error}))
    got = []
    with pytest.raises(ProviderError) as e:
        for c in make(server).stream("claude", ask(), TIMEOUT):
            got.append(c.delta)
    assert (e.value.kind, e.value.status) == (kind, None)
    assert got == ["Hel"] and error["message"] in str(e.value)


def test_stream_http_error(server):
    server.add("POST", PATH, Reply(status=529, json=err("overloaded_error", "Overloaded")))
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert (e.value.kind, e.value.status) == ("overloaded", 529)


def test_stream_event_that_is_not_json(server):
    server.add("POST", PATH, Reply(chunks=["event: message_start\ndata: {oops\n\n"]))
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert e.value.kind == "server"


def test_breaking_out_of_a_stream_closes_the_connection(server):
    events = [start(), block_start(0, text(""))] + [text_delta(0, f"w{i} ") for i in range(200)]
    stream_of(server, *events, block_stop(0), finish(), STOP, chunk_delay=0.01)
    provider = make(server)
    responses = []
    provider.session.hooks["response"].append(lambda r, *a, **kw: responses.append(r))
    for c in provider.stream("claude", ask(), TIMEOUT):
        assert c.delta == "w0 "
        break
    assert responses[0].raw.closed
    assert wait_for(lambda: server.disconnects == 1)


def test_stream_read_timeout_midstream(server):
    first = "".join(sse(start(), block_start(0, text("")), text_delta(0, "a")))
    server.add("POST", PATH, Reply(chunks=[first, *sse(STOP)], chunk_delay=0.6))  # then a stall
    got = []
    with pytest.raises(ProviderError) as e:
        for c in make(server).stream("claude", ask(), (2, 0.3)):
            got.append(c.delta)
    assert e.value.kind == "timeout"
    assert got == ["a"]


def test_stream_connection_refused():
    p = AnthropicProvider(ProviderSettings(name="anthropic", env={
        "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}"}))
    with pytest.raises(ProviderError) as e:
        list(p.stream("claude", ask(), TIMEOUT))
    assert e.value.kind == "connection" and KEY not in str(e.value)
