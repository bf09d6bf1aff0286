"""OllamaProvider against a real HTTP server speaking Ollama's native /api/chat."""

import json

import pytest
from httpfake import Reply, closed_port, keeping_session, ndjson, wait_for

from llmring.exceptions import ProviderError
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message, ToolCall
from llmring_providers import ollama
from llmring_providers.ollama import OllamaProvider, normalize_host

MODEL = "llama3.1:8b"
CHAT = "/api/chat"
TIMEOUT = (2, 5)


@pytest.fixture
def provider(server):
    return OllamaProvider(ProviderSettings(name="ollama", base_url=server.url, env={}))


def done(content="", done_reason="stop", prompt=12, output=7, **message):
    """The final (or only) /api/chat object."""
    return {"model": MODEL, "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content, **message},
            "done": True, "done_reason": done_reason, "total_duration": 1000,
            "prompt_eval_count": prompt, "eval_count": output}


def delta(content="", **message):
    return {"model": MODEL, "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content, **message}, "done": False}


def ask(*messages, **kw):
    return LLMRequest(messages=list(messages) or ["Hi"], **kw)


# -- chat -----------------------------------------------------------------------------

def test_chat_keeps_think_tags_and_ignores_thinking(server, provider):
    server.add("POST", CHAT, Reply(json=done("<think>\nhm\n</think>\n\nHello! 😊", thinking="secret reasoning",
                                             prompt=4, output=16)))

    r = provider.chat(MODEL, ask("Hi there"), TIMEOUT)

    rec = server.last()
    assert rec.path == CHAT
    assert rec.json() == {"model": MODEL, "stream": False,
                          "messages": [{"role": "user", "content": "Hi there"}]}
    assert r.content == "<think>\nhm\n</think>\n\nHello! 😊"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (4, 16)
    assert (r.finish_reason, r.raw_finish_reason, r.tool_calls, r.model) == ("stop", "stop", None, MODEL)


def test_length_finish(server, provider):
    server.add("POST", CHAT, Reply(json=done("cut", done_reason="length")))
    r = provider.chat(MODEL, ask(max_tokens=3), TIMEOUT)
    assert (r.finish_reason, r.raw_finish_reason) == ("length", "length")


def test_options_only_as_given_and_extra_params_merged(server, provider):
    server.add("POST", CHAT, Reply(json=done("ok")))
    provider.chat(MODEL, ask(temperature=0, max_tokens=64, stop="###",
                             extra_params={"keep_alive": "10m", "think": False, "options": {"num_ctx": 8192}}),
                  TIMEOUT)
    body = server.last().json()
    assert body["options"] == {"temperature": 0, "num_predict": 64, "stop": ["###"], "num_ctx": 8192}
    assert (body["keep_alive"], body["think"]) == ("10m", False)


def test_messages_images_and_tool_history(server, provider):
    server.add("POST", CHAT, Reply(json=done("It is sunny.")))
    call = ToolCall(id="call_0", name="weather", arguments={"city": "Berlin"})
    provider.chat(MODEL, ask(
        Message(role="system", content="Be brief."),
        Message(role="user", content=[{"type": "text", "text": "What is this?"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]),
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", tool_call_id="call_0", content='{"sky": "clear"}'),
    ), TIMEOUT)
    assert server.last().json()["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is this?", "images": ["iVBORw0K"]},
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Berlin"}}}]},
        {"role": "tool", "content": '{"sky": "clear"}', "tool_name": "weather"},
    ]


def test_http_image_is_unsupported_and_not_sent(server, provider):
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(Message(role="user", content=[
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}])), TIMEOUT)
    assert e.value.kind == "unsupported" and "data: URL" in str(e.value)
    assert server.requests == []


WEATHER = {"type": "function", "function": {
    "name": "weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
NOW = {"name": "now", "description": "The time", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("choice, names", [
    (None, ["weather", "now"]), ("auto", ["weather", "now"]), ("required", ["weather", "now"]),
    ({"type": "function", "function": {"name": "now"}}, ["now"]),  # no tool_choice in Ollama: narrow the list
    ("none", None),
])
def test_tools_in_openai_shape(server, provider, choice, names):
    server.add("POST", CHAT, Reply(json=done("ok")))
    provider.chat(MODEL, ask(tools=[WEATHER, NOW], tool_choice=choice), TIMEOUT)
    tools = server.last().json().get("tools")
    if names is None:
        assert tools is None
        return
    assert [t["function"]["name"] for t in tools] == names
    assert all(t["type"] == "function" for t in tools)
    if "weather" in names:
        assert tools[0]["function"] == WEATHER["function"]


def test_tool_calls_in_response(server, provider):
    server.add("POST", CHAT, Reply(json=done("", tool_calls=[
        {"function": {"name": "weather", "arguments": {"city": "Berlin"}}},
        {"id": "call_abc", "function": {"index": 1, "name": "weather", "arguments": '{"city": "Paris"}'}},
        {"function": {"name": "now", "arguments": "{not json"}},
    ])))
    r = provider.chat(MODEL, ask(tools=[WEATHER, NOW]), TIMEOUT)
    assert [(c.name, c.arguments, c.raw_arguments) for c in r.tool_calls] == [
        ("weather", {"city": "Berlin"}, None),
        ("weather", {"city": "Paris"}, None),
        ("now", {}, "{not json"),
    ]
    ids = [c.id for c in r.tool_calls]
    assert ids[1] == "call_abc"  # the server's id is kept; calls without one get a fresh, unique id
    assert ids[0].startswith("call_") and ids[2].startswith("call_") and len(set(ids)) == 3
    assert (r.finish_reason, r.raw_finish_reason) == ("tool_calls", "stop")


@pytest.mark.parametrize("fmt, sent", [
    ({"type": "json_object"}, "json"),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": {
        "type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}}},
     {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}),
    ({"type": "text"}, None),
])
def test_response_format(server, provider, fmt, sent):
    server.add("POST", CHAT, Reply(json=done('{"age": 22}')))
    r = provider.chat(MODEL, ask(response_format=fmt), TIMEOUT)
    assert server.last().json().get("format") == sent
    assert r.content == '{"age": 22}'


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("status, body, kind", [
    (404, {"error": "model 'nonexistent-model' not found, try pulling it first"}, "not_found"),
    (400, {"error": "the input length exceeds the context length"}, "context_length"),
    (400, {"error": "registry.ollama.ai/library/gemma:2b does not support tools"}, "unsupported"),
    (400, {"error": "invalid options: foo"}, "bad_request"),
    (500, {"error": "llama runner process has terminated: signal: killed"}, "server"),
    (502, "Bad Gateway", "server"),
])
def test_error_mapping(server, provider, status, body, kind):
    server.add("POST", CHAT, Reply(status=status, body=body) if isinstance(body, str)
               else Reply(status=status, json=body))
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), TIMEOUT)
    assert (e.value.kind, e.value.status) == (kind, status)
    text = body if isinstance(body, str) else body["error"]
    assert str(e.value) == f"ollama: {text}"


def test_connection_refused_asks_whether_ollama_runs():
    port = closed_port()
    p = OllamaProvider(ProviderSettings(name="ollama", env={"OLLAMA_HOST": f"0.0.0.0:{port}"}))
    with pytest.raises(ProviderError) as e:
        p.chat(MODEL, ask(), TIMEOUT)
    assert e.value.kind == "connection"
    assert f"is Ollama running at http://127.0.0.1:{port}?" in str(e.value)


def test_read_timeout(server, provider):
    server.add("POST", CHAT, Reply(json=done("late"), delay=1.0))
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), (2, 0.2))
    assert e.value.kind == "timeout"


# -- host -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, url", [
    ("localhost:11434", "http://localhost:11434"),
    ("0.0.0.0:11434", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("example.com", "http://example.com:11434"),
    (":5678", "http://127.0.0.1:5678"),
    ("http://gpu-box:8080/", "http://gpu-box:8080"),
    ("https://ollama.example.com/proxy/", "https://ollama.example.com:443/proxy"),
    ("[::1]:11434", "http://[::1]:11434"),
])
def test_normalize_host(value, url):
    assert normalize_host(value) == url


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "0.0.0.0:{port}", "http://127.0.0.1:{port}/"])
def test_ollama_host_from_environment(server, host):
    server.add("POST", CHAT, Reply(json=done("ok")))
    p = OllamaProvider(ProviderSettings(name="ollama", env={"OLLAMA_HOST": host.format(port=server.port)}))
    assert p.chat(MODEL, ask(), TIMEOUT).content == "ok"


def test_default_host_is_localhost():
    assert OllamaProvider(ProviderSettings(name="ollama", env={})).base_url == "http://localhost:11434"


def test_bad_host_is_not_configured():
    p = OllamaProvider(ProviderSettings(name="ollama", env={"OLLAMA_HOST": "localhost:notaport"}))
    with pytest.raises(ProviderError) as e:
        p.chat(MODEL, ask(), TIMEOUT)
    assert e.value.kind == "not_configured" and "OLLAMA_HOST" in str(e.value)


# -- streaming ------------------------------------------------------------------------

def test_stream_with_unicode_split_across_chunks(server, provider):
    lines = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in (
        delta("Grüße "), delta("aus "), delta("Köln 🌍"), done("", prompt=16, output=22)))
    data = lines.encode()
    cuts = [data.index("ü".encode()) + 1, data.index("🌍".encode()) + 2]
    chunks = [data[:cuts[0]], data[cuts[0]:cuts[1]], data[cuts[1]:]]
    server.add("POST", CHAT, Reply(chunks=chunks, chunk_delay=0.01, content_type="application/x-ndjson"))

    out = list(provider.stream(MODEL, ask(), TIMEOUT))

    assert server.last().json()["stream"] is True
    assert "".join(c.delta for c in out) == "Grüße aus Köln 🌍"
    final = out[-1]
    assert (final.finish_reason, final.raw_finish_reason, final.tool_calls) == ("stop", "stop", None)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (16, 22)
    assert all(c.finish_reason is None for c in out[:-1])


def test_stream_tool_call(server, provider):
    server.add("POST", CHAT, Reply(chunks=ndjson(
        delta("", tool_calls=[{"function": {"name": "weather", "arguments": {"city": "Berlin"}}}]),
        done(""))))
    out = list(provider.stream(MODEL, ask(tools=[WEATHER]), TIMEOUT))
    deltas = [d for c in out for d in c.tool_call_deltas or []]
    assert [(d.index, d.id, d.name, json.loads(d.arguments)) for d in deltas] == [
        (0, out[-1].tool_calls[0].id, "weather", {"city": "Berlin"})]
    assert out[-1].tool_calls[0].id.startswith("call_")
    assert out[-1].finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in out[-1].tool_calls] == [("weather", {"city": "Berlin"})]


def test_error_line_mid_stream(server, provider):
    server.add("POST", CHAT, Reply(chunks=ndjson(delta("Part"), {"error": "an error was encountered while "
                                                                          "running the model: unexpected EOF"})))
    got = []
    with pytest.raises(ProviderError) as e:
        for c in provider.stream(MODEL, ask(), TIMEOUT):
            got.append(c.delta)
    assert got == ["Part"]
    assert e.value.kind == "server" and "unexpected EOF" in str(e.value)


@pytest.mark.parametrize("chunks, kind", [
    (ndjson(delta("Hel"), delta("lo")), "connection"),  # EOF without done: true
    ([], "connection"),
    (ndjson(delta("Hel")) + ['{"model": "x", "message": {"con'], "server"),  # cut mid-line: not JSON
])
def test_truncated_stream_raises(server, provider, chunks, kind):
    server.add("POST", CHAT, Reply(chunks=chunks))
    with pytest.raises(ProviderError) as e:
        list(provider.stream(MODEL, ask(), TIMEOUT))
    assert e.value.kind == kind


def test_stream_http_error_raises_before_any_chunk(server, provider):
    server.add("POST", CHAT, Reply(status=404, json={"error": "model 'x' not found"}))
    with pytest.raises(ProviderError) as e:
        next(iter(provider.stream(MODEL, ask(), TIMEOUT)))
    assert e.value.kind == "not_found"


def test_breaking_out_of_a_stream_closes_the_connection(server, provider):
    provider.session = keeping_session()
    lines = ndjson(*[delta(f"w{i} ") for i in range(200)], done("."))
    server.add("POST", CHAT, Reply(chunks=lines, chunk_delay=0.02))
    for chunk in provider.stream(MODEL, ask(), TIMEOUT):
        assert chunk.delta == "w0 "
        break
    assert wait_for(lambda: server.disconnects == 1)


def test_stream_read_timeout(server, provider):
    server.add("POST", CHAT, Reply(chunks=ndjson(delta("a"), done("b")), chunk_delay=1.0))
    with pytest.raises(ProviderError) as e:
        list(provider.stream(MODEL, ask(), (2, 0.3)))
    assert e.value.kind == "timeout"


# -- models ---------------------------------------------------------------------------

def test_list_models(server, provider):
    server.add("GET", "/api/tags", Reply(json={"models": [
        {"name": "llama3.1:8b", "model": "llama3.1:8b", "size": 4661224676},
        {"name": "gemma3:1b", "model": "gemma3:1b", "size": 815319791}]}))
    assert provider.list_models(TIMEOUT) == ["llama3.1:8b", "gemma3:1b"]


def test_registers_the_ollama_prefix():
    registered = {}
    ollama.register_providers(register=lambda prefix, factory: registered.update({prefix: factory}))
    assert registered == {"ollama": OllamaProvider}
