"""The OpenAI provider against a real local HTTP server speaking Chat Completions."""

import json

import pytest
from httpfake import Reply, closed_port, sse, wait_for

from llmring.exceptions import ProviderError
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message, ToolCall
from llmring_providers.openai import OpenAIProvider, register_providers

KEY = "sk-test-very-secret-0123456789"
TIMEOUT = (2, 5)
PATH = "/v1/chat/completions"


def make(server, **env):
    settings = ProviderSettings(name="openai",
                                env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url + "/v1", **env})
    return OpenAIProvider(settings)


def completion(content="Hello!", finish="stop", usage=(11, 7), **message):
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                         "finish_reason": finish}]}
    if usage:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return body


def chunk(delta=None, finish=None, **extra):
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


USAGE_CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}


def ask(text="Hi", **kw):
    return LLMRequest(messages=[Message(role="user", content=text)], **kw)


# -- chat -------------------------------------------------------------------------------

def test_chat_sends_only_what_was_given_and_parses_the_answer(server):
    server.add("POST", PATH, Reply(json=completion("Paris.", usage=(21, 3))))
    r = make(server).chat("gpt-4o", ask("Capital of France?"), TIMEOUT)

    sent = server.last()
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert "openai-organization" not in sent.headers
    assert sent.json() == {"model": "gpt-4o", "messages": [{"role": "user", "content": "Capital of France?"}]}
    assert (r.content, r.model, r.finish_reason, r.raw_finish_reason) == ("Paris.", "gpt-4o", "stop", "stop")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (21, 3, 24)
    assert r.tool_calls is None


def test_organization_and_project_headers(server):
    server.add("POST", PATH, Reply(json=completion()))
    make(server, OPENAI_ORGANIZATION="org-1", OPENAI_PROJECT="proj-2").chat("gpt-4o", ask(), TIMEOUT)
    assert server.last().headers["openai-organization"] == "org-1"
    assert server.last().headers["openai-project"] == "proj-2"


def test_default_base_url_includes_v1():
    p = OpenAIProvider(ProviderSettings(name="openai", env={"OPENAI_API_KEY": KEY}))
    assert p.base_url == "https://api.openai.com/v1"


def test_missing_key_is_not_configured():
    p = OpenAIProvider(ProviderSettings(name="openai", env={}))
    with pytest.raises(ProviderError) as e:
        p.chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "not_configured"
    assert "OPENAI_API_KEY" in str(e.value)


def test_parameters_for_a_classic_model(server):
    server.add("POST", PATH, Reply(json=completion()))
    make(server).chat("gpt-4o-mini", ask(temperature=0.2, max_tokens=50, stop=["END"]), TIMEOUT)
    body = server.last().json()
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.2, 50, ["END"])
    assert "max_completion_tokens" not in body


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-nano", "openai/o3-mini"])
def test_reasoning_models_get_max_completion_tokens_and_no_temperature(server, model):
    server.add("POST", PATH, Reply(json=completion()))
    make(server).chat(model, ask(temperature=0.2, max_tokens=500), TIMEOUT)
    body = server.last().json()
    assert body["max_completion_tokens"] == 500
    assert "max_tokens" not in body and "temperature" not in body


def test_messages_are_translated(server):
    server.add("POST", PATH, Reply(json=completion()))
    messages = [
        Message(role="system", content="Be terse."),
        Message(role="user", content=[{"type": "text", "text": "What is this?"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                      {"type": "image_url", "image_url": "https://x.test/cat.png"}]),
        Message(role="assistant", content="", tool_calls=[ToolCall(id="call_1", name="look", arguments={"q": "é"})]),
        Message(role="tool", tool_call_id="call_1", content="a cat"),
        Message(role="user", content="Thanks", name="bob"),
    ]
    make(server).chat("gpt-4o", LLMRequest(messages=messages), TIMEOUT)
    sent = server.last().json()["messages"]
    assert sent[0] == {"role": "system", "content": "Be terse."}
    assert sent[1]["content"] == [{"type": "text", "text": "What is this?"},
                                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                  {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]
    call = sent[2]["tool_calls"][0]
    assert (call["id"], call["type"], call["function"]["name"]) == ("call_1", "function", "look")
    assert json.loads(call["function"]["arguments"]) == {"q": "é"}  # a JSON string, not an object
    assert sent[3] == {"role": "tool", "content": "a cat", "tool_call_id": "call_1"}
    assert sent[4] == {"role": "user", "content": "Thanks", "name": "bob"}


def test_tools_both_shapes_and_strict(server):
    server.add("POST", PATH, Reply(json=completion()))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": schema,
                                               "strict": True}},
             {"name": "clock"}]
    make(server).chat("gpt-4o", ask(tools=tools), TIMEOUT)
    sent = server.last().json()["tools"]
    assert sent[0] == {"type": "function", "function": {"name": "weather", "description": "Weather",
                                                        "parameters": schema, "strict": True}}
    assert sent[1] == {"type": "function", "function": {"name": "clock", "description": "",
                                                        "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("given,wire", [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ({"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}),
    ({"name": "f"}, {"type": "function", "function": {"name": "f"}}),
])
def test_tool_choice(server, given, wire):
    server.add("POST", PATH, Reply(json=completion()))
    make(server).chat("gpt-4o", ask(tools=[{"name": "f"}], tool_choice=given), TIMEOUT)
    assert server.last().json()["tool_choice"] == wire


def test_response_format_is_native_and_extra_params_merge(server):
    server.add("POST", PATH, Reply(json=completion('{"a": 1}')))
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}
    r = make(server).chat("gpt-4o", ask(response_format=fmt, extra_params={"seed": 7, "model": "gpt-4o-2"}),
                          TIMEOUT)
    body = server.last().json()
    assert body["response_format"] == fmt
    assert (body["seed"], body["model"]) == (7, "gpt-4o-2")  # extra params win
    assert r.content == '{"a": 1}'


def test_tool_call_answer(server):
    calls = [{"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Zürich"}'}},
             {"id": "call_b", "type": "function", "function": {"name": "clock", "arguments": ""}},
             {"type": "function", "function": {"name": "bad", "arguments": '{"city": '}}]
    server.add("POST", PATH, Reply(json=completion(None, finish="tool_calls", tool_calls=calls)))
    r = make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert r.content == ""
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls[0] == ToolCall(id="call_a", name="weather", arguments={"city": "Zürich"})
    assert r.tool_calls[1] == ToolCall(id="call_b", name="clock", arguments={})
    assert r.tool_calls[2].raw_arguments == '{"city": ' and r.tool_calls[2].arguments == {}
    assert r.tool_calls[2].id  # a call without id still gets one to answer to


@pytest.mark.parametrize("content,refusal,raw,finish", [
    (None, "I can't help with that.", "stop", "content_filter"),
    ("Sure.", None, "stop", "stop"),
    ("Half", None, "length", "length"),
    ("", None, "content_filter", "content_filter"),
    ("Odd", None, "eos", "stop"),
])
def test_finish_reasons(server, content, refusal, raw, finish):
    server.add("POST", PATH, Reply(json=completion(content, finish=raw, refusal=refusal)))
    r = make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert (r.content, r.finish_reason, r.raw_finish_reason) == (content or "", finish, raw)


def test_a_200_answer_carrying_an_error_raises(server):
    server.add("POST", PATH, Reply(json={"error": {"message": "upstream failed", "type": "server_error"}}))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "server" and "upstream failed" in str(e.value)


def test_an_answer_without_choices_is_a_server_error(server):
    server.add("POST", PATH, Reply(json={"id": "x", "choices": []}))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "server"


@pytest.mark.parametrize("content", [True, 5, {"text": "hi"}, [{"type": "text", "text": 7}]])
def test_an_answer_whose_text_is_not_text_is_invalid_output(server, content):
    """The same rule as every provider's (provider.answer_text): not read as an empty answer."""
    server.add("POST", PATH, Reply(json=completion(content)))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "invalid_output"


def test_list_models(server):
    server.add("GET", "/v1/models", Reply(json={"object": "list", "data": [{"id": "gpt-4o", "object": "model"},
                                                                          {"id": "o3", "object": "model"}]}))
    assert make(server).list_models(TIMEOUT) == ["gpt-4o", "o3"]
    assert server.last().headers["authorization"] == f"Bearer {KEY}"


def test_registers_its_prefix():
    seen = {}
    register_providers(register=lambda name, factory: seen.setdefault(name, factory))
    assert seen == {"openai": OpenAIProvider}


# -- OpenAI-compatible endpoints ------------------------------------------------------------

def test_declared_endpoint_uses_its_own_url_key_and_name(server):
    server.add("POST", "/openai/v1/chat/completions", Reply(json=completion("hi from groq")))
    p = OpenAIProvider(ProviderSettings(name="groq", base_url=server.url + "/openai/v1/", api_key_env="GROQ_KEY",
                                        env={"GROQ_KEY": "gsk-groq-secret", "OPENAI_API_KEY": KEY,
                                             "OPENAI_ORGANIZATION": "org-1"}))
    r = p.chat("llama-3.3-70b", ask(), TIMEOUT)
    assert r.content == "hi from groq"
    headers = server.last().headers
    assert headers["authorization"] == "Bearer gsk-groq-secret"
    assert "openai-organization" not in headers  # OpenAI's account id stays with OpenAI


def test_declared_endpoint_without_its_key_names_its_variable(server):
    p = OpenAIProvider(ProviderSettings(name="groq", base_url=server.url, api_key_env="GROQ_KEY",
                                        env={"OPENAI_API_KEY": KEY}))
    with pytest.raises(ProviderError) as e:
        p.chat("m", ask(), TIMEOUT)
    assert e.value.kind == "not_configured"
    assert str(e.value).startswith("groq ") and "GROQ_KEY" in str(e.value)
    assert e.value.provider == "groq"
    assert server.requests == []


def test_local_endpoint_without_key_sends_no_authorization(server):
    # A local vLLM / llama.cpp: no usage, no finish_reason, a reasoning_content field.
    body = {"id": "x", "object": "chat.completion", "model": "qwen",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "42",
                                                 "reasoning_content": "let me think..."}}]}
    server.add("POST", "/v1/chat/completions", Reply(json=body))
    p = OpenAIProvider(ProviderSettings(name="local", base_url=server.url + "/v1", env={"OPENAI_API_KEY": KEY}))
    r = p.chat("qwen", ask(), TIMEOUT)
    assert "authorization" not in server.last().headers
    assert (r.content, r.finish_reason, r.raw_finish_reason, r.usage) == ("42", "stop", None, None)


def test_ollama_v1_tool_call(server):
    # Ollama's /v1: a non-standard `reasoning` field, and content "" beside the tool call.
    body = completion("", finish="tool_calls", usage=(195, 144), reasoning="The user wants weather...",
                      tool_calls=[{"id": "call_0npg", "index": 0, "type": "function",
                                   "function": {"name": "weather", "arguments": '{"lat":"52.52"}'}}])
    server.add("POST", "/v1/chat/completions", Reply(json=body))
    p = OpenAIProvider(ProviderSettings(name="ollama-v1", base_url=server.url + "/v1"))
    r = p.chat("qwen3", ask(), TIMEOUT)
    assert r.content == ""
    assert r.tool_calls == [ToolCall(id="call_0npg", name="weather", arguments={"lat": "52.52"})]
    assert (r.usage.input_tokens, r.usage.output_tokens) == (195, 144)


def test_stop_with_tool_calls_is_normalised_to_tool_calls(server):
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    server.add("POST", PATH, Reply(json=completion(None, finish="stop", tool_calls=calls)))
    r = make(server).chat("m", ask(), TIMEOUT)
    assert (r.finish_reason, r.raw_finish_reason) == ("tool_calls", "stop")


def test_declared_endpoint_errors_name_it(server):
    server.add("POST", "/v1/chat/completions", Reply(status=404, json={"error": {
        "message": 'model "nope" not found, try pulling it first', "type": "api_error"}}))
    p = OpenAIProvider(ProviderSettings(name="local", base_url=server.url + "/v1"))
    with pytest.raises(ProviderError) as e:
        p.chat("nope", ask(), TIMEOUT)
    assert e.value.kind == "not_found" and e.value.provider == "local"
    assert str(e.value).startswith("local: ") and "pulling" in str(e.value)


# -- errors ---------------------------------------------------------------------------------

def err(message, type_="invalid_request_error", code=None, param=None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize("status,body,headers,kind,retry", [
    (400, err("Invalid type for 'messages[0]'", code="invalid_type"), {}, "bad_request", None),
    (401, err("Incorrect API key provided: sk-abc***xyz.", code="invalid_api_key"), {}, "auth", None),
    (403, err("Project does not have access", type_="permission_error"), {}, "auth", None),
    (404, err("The model `gpt-9` does not exist", code="model_not_found"), {}, "not_found", None),
    (429, err("Rate limit reached for requests", type_="requests", code="rate_limit_exceeded"),
     {"retry-after": "12"}, "rate_limit", 12.0),
    (429, err("Rate limit reached", type_="tokens", code="rate_limit_exceeded"),
     {"retry-after-ms": "250"}, "rate_limit", 0.25),
    (429, err("Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 50000.",
              type_="tokens", code="rate_limit_exceeded"), {}, "rate_limit", None),
    (429, err("You exceeded your current quota, please check your plan and billing details.",
              type_="insufficient_quota", code="insufficient_quota"), {}, "auth", None),
    (429, err("You exceeded your current quota.", type_="insufficient_quota", code="project_spend_limit_exceeded"),
     {}, "auth", None),
    (400, err("This model's maximum context length is 128000 tokens.", code="context_length_exceeded",
              param="messages"), {}, "context_length", None),
    (400, err("Your request was rejected by our safety system.", code="content_policy_violation"), {},
     "content_filter", None),
    (400, err("The response was filtered due to the prompt triggering content management policy.",
              type_=None, code="content_filter"), {}, "content_filter", None),
    (400, err("Unsupported parameter: 'temperature' is not supported with this model.",
              code="unsupported_parameter", param="temperature"), {}, "unsupported", None),
    (400, {"error": {"message": "registry.ollama.ai/library/gemma:2b does not support tools",
                     "type": "api_error"}}, {}, "unsupported", None),
    (500, err("The server had an error while processing your request.", type_="server_error"), {}, "server", None),
    (503, err("The engine is currently overloaded, please try again later.", type_="server_error"), {},
     "server", None),
    (529, err("Overloaded", type_="server_error"), {}, "overloaded", None),
    (413, err("Request Entity Too Large", type_=None), {}, "context_length", None),
])
def test_http_errors(server, status, body, headers, kind, retry):
    server.add("POST", PATH, Reply(status=status, json=body, headers=headers))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert (e.value.kind, e.value.status, e.value.retry_after) == (kind, status, retry)
    assert str(e.value).startswith("openai: ")
    assert body["error"]["message"] in str(e.value)


@pytest.mark.parametrize("status,body,content_type,kind", [
    (502, "<html><body>Bad gateway</body></html>", "text/html", "server"),
    (404, json.dumps({"error": "model 'x' not found"}), "application/json", "not_found"),
    (400, json.dumps({"message": "bad things"}), "application/json", "bad_request"),
])
def test_errors_that_are_not_openai_shaped(server, status, body, content_type, kind):
    server.add("POST", PATH, Reply(status=status, body=body, content_type=content_type))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert (e.value.kind, e.value.status) == (kind, status)
    assert str(e.value) != "openai: "


def test_key_echoed_by_the_server_never_reaches_the_error(server):
    server.add("POST", PATH, Reply(status=401, json=err(f"Incorrect API key provided: {KEY}.",
                                                        code="invalid_api_key")))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "auth"
    assert KEY not in str(e.value) and KEY not in repr(e.value) and KEY not in e.value.message
    assert "[redacted]" in str(e.value)


def test_read_timeout(server):
    server.add("POST", PATH, Reply(json=completion(), delay=1.0))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), (2, 0.2))
    assert e.value.kind == "timeout"
    assert KEY not in str(e.value)


def test_connection_refused():
    settings = ProviderSettings(name="openai", env={"OPENAI_API_KEY": KEY,
                                                    "OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1"})
    with pytest.raises(ProviderError) as e:
        OpenAIProvider(settings).chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "connection"
    assert KEY not in str(e.value)


def test_dropped_connection(server):
    server.add("POST", PATH, Reply(drop=True))
    with pytest.raises(ProviderError) as e:
        make(server).chat("gpt-4o", ask(), TIMEOUT)
    assert e.value.kind == "connection"


# -- streaming ------------------------------------------------------------------------------

def stream_of(server, *events, **reply):
    server.add("POST", PATH, Reply(chunks=sse(*events), **reply))


def run(provider, request=None, model="gpt-4o"):
    return list(provider.stream(model, request or ask(), TIMEOUT))


def text_of(chunks):
    return "".join(c.delta for c in chunks)


def test_stream_text_with_usage(server):
    stream_of(server, chunk({"role": "assistant", "content": ""}), chunk({"content": "1\n"}),
              chunk({"content": "2"}), chunk({}, finish="stop"), USAGE_CHUNK, "[DONE]")
    chunks = run(make(server))
    body = server.last().json()
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    assert [c.delta for c in chunks[:-1]] == ["1\n", "2"]  # the empty role chunk yields nothing
    final = chunks[-1]
    assert [c.finish_reason for c in chunks].count(None) == len(chunks) - 1  # exactly one final chunk
    assert (final.finish_reason, final.raw_finish_reason, final.tool_calls) == ("stop", "stop", None)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 4)


def test_stream_unicode_split_across_network_chunks(server):
    # Raw UTF-8 in the data lines, as OpenAI sends it (not \u escapes).
    events = [chunk({"content": "Grüße 🦅 "}), chunk({"content": "日本"}), chunk({}, finish="stop")]
    frames = ("".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n").encode()
    cut = frames.index("🦅".encode()) + 2  # in the middle of the emoji's four bytes
    cut2 = frames.index("日".encode()) + 1
    server.add("POST", PATH, Reply(chunks=[frames[:cut], frames[cut:cut2], frames[cut2:]], chunk_delay=0.05))
    assert text_of(run(make(server))) == "Grüße 🦅 日本"


def test_stream_keepalive_comments_and_crlf(server):
    body = (": keep-alive\r\n\r\n" + "data: " + json.dumps(chunk({"content": "ok"})) + "\r\n\r\n"
            + ": ping\n\n" + "data: " + json.dumps(chunk({}, finish="stop")) + "\r\n\r\n" + "data: [DONE]\r\n\r\n")
    server.add("POST", PATH, Reply(chunks=[body]))
    chunks = run(make(server))
    assert text_of(chunks) == "ok" and chunks[-1].finish_reason == "stop"


def test_stream_tool_calls_are_assembled_per_index(server):
    first = {"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                             "function": {"name": "weather", "arguments": ""}}]}
    second = {"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                              "function": {"name": "clock", "arguments": ""}}]}
    stream_of(server, chunk({"role": "assistant", "content": None, **first}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
              chunk(second),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Köln"}'}}]}),
              chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
              chunk({}, finish="tool_calls"), USAGE_CHUNK, "[DONE]")
    chunks = run(make(server))
    deltas = [d for c in chunks for d in c.tool_call_deltas or []]
    assert (deltas[0].index, deltas[0].id, deltas[0].name) == (0, "call_a", "weather")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"city": "Köln"}'
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.tool_calls == [ToolCall(id="call_a", name="weather", arguments={"city": "Köln"}),
                                ToolCall(id="call_b", name="clock", arguments={})]


def test_stream_tool_calls_without_index(server):
    # Older Ollama /v1 streams: each call whole, in its own chunk, with no index.
    def call(id_, name, args):
        return chunk({"tool_calls": [{"id": id_, "type": "function", "function": {"name": name, "arguments": args}}]})
    stream_of(server, call("c1", "a", '{"x": 1}'), call("c2", "b", '{"y": 2}'), chunk({}, finish="stop"), "[DONE]")
    final = run(make(server))[-1]
    assert final.tool_calls == [ToolCall(id="c1", name="a", arguments={"x": 1}),
                                ToolCall(id="c2", name="b", arguments={"y": 2})]
    assert (final.finish_reason, final.raw_finish_reason) == ("tool_calls", "stop")


def test_stream_reasoning_fields_stay_out_of_the_text(server):
    stream_of(server, chunk({"reasoning_content": "hmm"}), chunk({"reasoning": "more"}),
              chunk({"content": "Answer"}), chunk({}, finish="stop"), "[DONE]")
    assert text_of(run(make(server))) == "Answer"


def test_stream_refusal_is_content_filter(server):
    stream_of(server, chunk({"refusal": "I can't "}), chunk({"refusal": "help."}), chunk({}, finish="stop"),
              "[DONE]")
    final = run(make(server))[-1]
    assert (final.finish_reason, final.raw_finish_reason) == ("content_filter", "stop")


def test_stream_without_usage_from_a_compatible_server(server):
    stream_of(server, chunk({"content": "hi"}), chunk({}, finish="length"), "[DONE]")
    final = run(make(server))[-1]
    assert (final.finish_reason, final.usage) == ("length", None)


def test_stream_truncated_before_done(server):
    stream_of(server, chunk({"content": "Once upon"}), chunk({"content": " a time"}))
    got = []
    with pytest.raises(ProviderError) as e:
        for c in make(server).stream("gpt-4o", ask(), TIMEOUT):
            got.append(c.delta)
    assert e.value.kind == "connection" and "ended" in str(e.value)
    assert got == ["Once upon", " a time"]


@pytest.mark.parametrize("event,kind", [
    ({"error": {"message": "The server had an error", "type": "server_error", "code": None}}, "server"),
    ({"error": {"message": "Rate limit", "type": "tokens", "code": "rate_limit_exceeded"}}, "rate_limit"),
    ({"error": {"message": "maximum context length is 8192 tokens", "type": "invalid_request_error",
                "code": "context_length_exceeded"}}, "context_length"),
    ({"error": "model crashed"}, "server"),
])
def test_stream_error_object_midstream(server, event, kind):
    stream_of(server, chunk({"content": "par"}), event, "[DONE]")
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert e.value.kind == kind and e.value.status is None


def test_stream_error_event_with_event_name(server):
    server.add("POST", PATH, Reply(chunks=sse(("error", {"message": "overloaded, try later"}))))
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert e.value.kind == "server" and "overloaded, try later" in str(e.value)


def test_stream_event_that_is_not_json(server):
    stream_of(server, "{not json", "[DONE]")
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert e.value.kind == "server"


def test_stream_retries_once_without_stream_options(server):
    rejected = Reply(status=400, json=err("Unrecognized request argument supplied: stream_options"))
    server.add("POST", PATH, rejected, Reply(chunks=sse(chunk({"content": "ok"}), chunk({}, finish="stop"),
                                                        "[DONE]")))
    chunks = run(make(server))
    assert text_of(chunks) == "ok"
    assert [("stream_options" in r.json()) for r in server.requests] == [True, False]


def test_stream_other_400_is_not_retried(server):
    server.add("POST", PATH, Reply(status=400, json=err("Invalid 'messages'")))
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert e.value.kind == "bad_request" and len(server.requests) == 1


def test_stream_http_error_before_first_chunk(server):
    server.add("POST", PATH, Reply(status=429, json=err("slow down", type_="requests", code="rate_limit_exceeded"),
                                   headers={"retry-after": "3"}))
    with pytest.raises(ProviderError) as e:
        run(make(server))
    assert (e.value.kind, e.value.retry_after) == ("rate_limit", 3.0)


def test_breaking_out_of_a_stream_closes_the_connection(server):
    events = [chunk({"content": f"w{i} "}) for i in range(200)] + ["[DONE]"]
    stream_of(server, *events, chunk_delay=0.01)
    provider = make(server)
    responses = []  # holding the response keeps garbage collection from closing it for us
    provider.session.hooks["response"].append(lambda r, *a, **kw: responses.append(r))
    for c in provider.stream("gpt-4o", ask(), TIMEOUT):
        assert c.delta == "w0 "
        break
    assert responses[0].raw.closed
    assert wait_for(lambda: server.disconnects == 1)


def test_stream_read_timeout_midstream(server):
    stream_of(server, chunk({"content": "a"}), chunk({"content": "b"}), "[DONE]", chunk_delay=1.0)
    got = []
    with pytest.raises(ProviderError) as e:
        for c in make(server).stream("gpt-4o", ask(), (2, 0.3)):
            got.append(c.delta)
    assert e.value.kind == "timeout"
    assert got == ["a"]


def test_stream_connection_refused():
    settings = ProviderSettings(name="openai", env={"OPENAI_API_KEY": KEY,
                                                    "OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1"})
    with pytest.raises(ProviderError) as e:
        list(OpenAIProvider(settings).stream("gpt-4o", ask(), TIMEOUT))
    assert e.value.kind == "connection" and KEY not in str(e.value)


def test_ring_reaches_a_lockfile_declared_endpoint(server, tmp_path, monkeypatch):
    from llmring import Ring

    lock = tmp_path / "llmring.lock"
    lock.write_text(f'''version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "fast"
models = ["groq:llama-3.3-70b"]

[providers.groq]
type = "openai"
base_url = "{server.url}/openai/v1"
api_key_env = "GROQ_TEST_KEY"
''')
    monkeypatch.setenv("GROQ_TEST_KEY", "gsk-ring-secret")
    server.add("POST", "/openai/v1/chat/completions", Reply(json=completion("from groq")),
               Reply(chunks=sse(chunk({"content": "streamed"}), chunk({}, finish="stop"), "[DONE]")))
    with Ring(lockfile_path=str(lock)) as ring:
        r = ring.chat("fast", "Hi")
        streamed = "".join(c.delta for c in ring.stream("fast", "Hi"))
    assert (r.content, r.model) == ("from groq", "groq:llama-3.3-70b")
    assert streamed == "streamed"
    assert [q.headers["authorization"] for q in server.requests] == ["Bearer gsk-ring-secret"] * 2
