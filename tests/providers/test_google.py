"""GoogleProvider against a real HTTP server speaking the Gemini API's wire format."""

import json

import pytest
from httpfake import Reply, closed_port, keeping_session, sse, wait_for

from llmring.exceptions import ProviderError
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message, ToolCall
from llmring_providers import google
from llmring_providers.google import GoogleProvider, gemini_schema

KEY = "AIza-k-secret-123"
MODEL = "gemini-2.5-flash"
GEN = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
TIMEOUT = (2, 5)


@pytest.fixture
def provider(server):
    return GoogleProvider(ProviderSettings(name="google", base_url=server.url, env={"GEMINI_API_KEY": KEY}))


def answer(*parts, finish="STOP", usage=None, **extra):
    """A GenerateContentResponse with one candidate."""
    candidate = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body = {"candidates": [candidate], "modelVersion": MODEL, **extra}
    if usage:
        body["usageMetadata"] = usage
    return body


def api_error(code, status, message, details=()):
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def ask(*messages, **kw):
    return LLMRequest(messages=list(messages) or ["Hi"], **kw)


def assert_key_hidden(server, *texts):
    for rec in server.requests:
        assert KEY not in rec.path and KEY not in rec.query
        assert rec.headers["x-goog-api-key"] == KEY
    for text in texts:
        assert KEY not in text


# -- chat -----------------------------------------------------------------------------

def test_chat_sends_key_in_header_and_reads_visible_text(server, provider):
    server.add("POST", GEN, Reply(json=answer(
        {"text": "thinking hard", "thought": True}, {"text": "Hello"}, {"text": ", world"},
        usage={"promptTokenCount": 7, "candidatesTokenCount": 3, "thoughtsTokenCount": 40, "totalTokenCount": 50})))

    r = provider.chat(MODEL, ask("Hi there"), TIMEOUT)

    rec = server.last()
    assert rec.path == GEN and rec.query == ""
    assert_key_hidden(server)
    assert rec.json() == {"contents": [{"role": "user", "parts": [{"text": "Hi there"}]}]}
    assert r.content == "Hello, world"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (7, 3)
    assert (r.finish_reason, r.raw_finish_reason, r.tool_calls, r.model) == ("stop", "STOP", None, MODEL)


def test_model_name_may_carry_models_prefix(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": "ok"})))
    assert provider.chat("models/" + MODEL, ask(), TIMEOUT).content == "ok"
    assert server.last().path == GEN


def test_google_api_key_and_base_url_from_environment(server):
    server.add("POST", GEN, Reply(json=answer({"text": "ok"})))
    p = GoogleProvider(ProviderSettings(name="google", env={"GOOGLE_API_KEY": KEY, "GEMINI_BASE_URL": server.url}))
    assert p.chat(MODEL, ask(), TIMEOUT).content == "ok"
    assert server.last().headers["x-goog-api-key"] == KEY


def test_missing_key_is_not_configured_and_sends_nothing(server):
    p = GoogleProvider(ProviderSettings(name="google", base_url=server.url, env={}))
    with pytest.raises(ProviderError) as e:
        p.chat(MODEL, ask(), TIMEOUT)
    assert e.value.kind == "not_configured"
    assert "GEMINI_API_KEY" in str(e.value)
    assert server.requests == []


def test_request_translation(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": "ok"})))
    request = ask(
        Message(role="system", content="Be brief."),
        Message(role="user", content=[
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]),
        Message(role="assistant", content="A cat."),
        Message(role="user", content="Sure?"),
        Message(role="user", content="Answer."),
        temperature=0, max_tokens=50, stop="END")

    provider.chat(MODEL, request, TIMEOUT)

    body = server.last().json()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
            {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}}]},
        {"role": "model", "parts": [{"text": "A cat."}]},
        {"role": "user", "parts": [{"text": "Sure?"}, {"text": "Answer."}]},  # same-role turns merged
    ]
    assert body["generationConfig"] == {"temperature": 0, "maxOutputTokens": 50, "stopSequences": ["END"]}


def test_unknown_part_type_is_unsupported_and_not_sent(server, provider):
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(Message(role="user", content=[{"type": "input_audio", "x": 1}])), TIMEOUT)
    assert e.value.kind == "unsupported"
    assert server.requests == []


def test_extra_params_merge_into_generation_config(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": "ok"})))
    provider.chat(MODEL, ask(temperature=0.3, extra_params={
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}), TIMEOUT)
    body = server.last().json()
    assert body["generationConfig"] == {"temperature": 0.3, "thinkingConfig": {"thinkingBudget": 0}}
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE"


# -- tools ----------------------------------------------------------------------------

WEATHER = {"type": "function", "function": {
    "name": "weather", "description": "Current weather",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
                   "required": ["city"]}}}
NOW = {"name": "now", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("choice, config", [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "weather"}}, {"mode": "ANY", "allowedFunctionNames": ["weather"]}),
])
def test_tools_and_tool_choice(server, provider, choice, config):
    server.add("POST", GEN, Reply(json=answer({"text": "ok"})))
    provider.chat(MODEL, ask(tools=[WEATHER, NOW], tool_choice=choice), TIMEOUT)
    body = server.last().json()
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "weather", "description": "Current weather", "parameters": {
            "type": "OBJECT", "required": ["city"], "propertyOrdering": ["city", "unit"],
            "properties": {"city": {"type": "STRING"}, "unit": {"type": "STRING", "nullable": True}}}},
        {"name": "now"},  # no arguments: Gemini rejects an OBJECT without properties
    ]}]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_no_tool_config_without_tool_choice(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": "ok"})))
    provider.chat(MODEL, ask(tools=[WEATHER]), TIMEOUT)
    assert "toolConfig" not in server.last().json()


def test_function_calls_in_response(server, provider):
    server.add("POST", GEN, Reply(json=answer(
        {"functionCall": {"name": "weather", "args": {"city": "Berlin"}}, "thoughtSignature": "c2lnLTE="},
        {"functionCall": {"id": "fc-7", "name": "weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "now"}},
        usage={"promptTokenCount": 10, "candidatesTokenCount": 5})))

    r = provider.chat(MODEL, ask(tools=[WEATHER, NOW]), TIMEOUT)

    assert [(c.name, c.arguments) for c in r.tool_calls] == [
        ("weather", {"city": "Berlin"}), ("weather", {"city": "Paris"}), ("now", {})]
    ids = [c.id for c in r.tool_calls]
    assert ids[1] == "fc-7"  # Gemini's own id is kept; calls without one get a fresh, unique id
    assert ids[0].startswith("call_") and ids[2].startswith("call_") and len(set(ids)) == 3
    assert (r.finish_reason, r.raw_finish_reason, r.content) == ("tool_calls", "STOP", "")


def test_tool_results_round_trip(server, provider):
    """Calls go back as functionCall parts (with the model's thoughtSignature, or Google's
    documented skip value for calls we never saw); results as functionResponse parts in one
    user turn, named through the tool_call_id."""
    server.add("POST", GEN,
               Reply(json=answer({"functionCall": {"name": "weather", "args": {"city": "Berlin"}},
                                  "thoughtSignature": "c2lnLTE="})),
               Reply(json=answer({"text": "Sunny, and it is noon."})))
    first = provider.chat(MODEL, ask("Weather?", tools=[WEATHER]), TIMEOUT)
    injected = ToolCall(id="mine", name="now", arguments={})
    history = [
        Message(role="user", content="Weather?"),
        Message(role="assistant", content="", tool_calls=first.tool_calls + [injected]),
        Message(role="tool", tool_call_id=first.tool_calls[0].id, content='{"sky": "clear"}'),
        Message(role="tool", tool_call_id="mine", content="12:00"),
    ]

    r = provider.chat(MODEL, ask(*history, tools=[WEATHER, NOW]), TIMEOUT)

    assert r.content == "Sunny, and it is noon."
    assert server.last().json()["contents"] == [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "weather", "args": {"city": "Berlin"}}, "thoughtSignature": "c2lnLTE="},
            {"functionCall": {"name": "now", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "weather", "response": {"sky": "clear"}}},
            {"functionResponse": {"name": "now", "response": {"result": "12:00"}}}]},
    ]


def test_tool_result_for_unknown_call_is_bad_request(server, provider):
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(Message(role="user", content="x"),
                                 Message(role="tool", tool_call_id="nope", content="1")), TIMEOUT)
    assert e.value.kind == "bad_request" and "'nope'" in str(e.value)
    assert server.requests == []


# -- finish reasons and blocks --------------------------------------------------------

@pytest.mark.parametrize("raw, finish", [
    ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("STOP", "stop"), ("OTHER", "stop"),
])
def test_finish_reasons(server, provider, raw, finish):
    server.add("POST", GEN, Reply(json=answer({"text": "partial"}, finish=raw)))
    r = provider.chat(MODEL, ask(), TIMEOUT)
    assert (r.finish_reason, r.raw_finish_reason) == (finish, raw)


def test_blocked_prompt_raises_content_filter(server, provider):
    server.add("POST", GEN, Reply(json={"promptFeedback": {"blockReason": "SAFETY"},
                                        "usageMetadata": {"promptTokenCount": 4}}))
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), TIMEOUT)
    assert e.value.kind == "content_filter" and "SAFETY" in str(e.value)


def test_no_candidates_without_reason_is_a_server_error(server, provider):
    server.add("POST", GEN, Reply(json={"usageMetadata": {"promptTokenCount": 4}}))
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), TIMEOUT)
    assert e.value.kind == "server"


# -- structured output ----------------------------------------------------------------

def test_json_schema_becomes_response_schema(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": '{"name": "Ada", "age": null}'})))
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "additionalProperties": False,
              "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
              "required": ["name", "age"]}
    r = provider.chat(MODEL, ask(response_format={"type": "json_schema", "json_schema": {
        "name": "person", "schema": schema, "strict": True}}), TIMEOUT)
    assert r.content == '{"name": "Ada", "age": null}'
    assert server.last().json()["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "required": ["name", "age"], "propertyOrdering": ["name", "age"],
                           "properties": {"name": {"type": "STRING"},
                                          "age": {"type": "INTEGER", "nullable": True}}}}


def test_json_object_sets_only_the_mime_type(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": "{}"})))
    provider.chat(MODEL, ask(response_format={"type": "json_object"}), TIMEOUT)
    assert server.last().json()["generationConfig"] == {"responseMimeType": "application/json"}


def test_schema_refs_unions_and_enums():
    schema = {
        "type": "object", "title": "Order",
        "$defs": {"Item": {"type": "object", "additionalProperties": False,
                           "properties": {"sku": {"type": "string", "format": "uuid"}, "qty": {"type": "integer"}}}},
        "properties": {
            "item": {"$ref": "#/$defs/Item"},
            "backup": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}], "description": "spare"},
            "status": {"enum": ["new", "paid", None]},
            "kind": {"const": "order"},
            "priority": {"type": "integer", "enum": [1, 2]},
            "when": {"type": "string", "format": "date-time"},
            "code": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "either": {"type": ["integer", "boolean", "null"], "description": "id or flag"},
            "merged": {"allOf": [{"$ref": "#/$defs/Item"}, {"properties": {"note": {"type": "string"}}}]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        }}
    item = {"type": "OBJECT", "propertyOrdering": ["sku", "qty"],
            "properties": {"sku": {"type": "STRING"}, "qty": {"type": "INTEGER"}}}  # uuid format dropped
    props = gemini_schema(schema)["properties"]
    assert gemini_schema(schema)["title"] == "Order" and "$defs" not in gemini_schema(schema)
    assert props["item"] == item
    assert props["backup"] == {**item, "description": "spare", "nullable": True}
    assert props["status"] == {"type": "STRING", "enum": ["new", "paid"], "nullable": True}
    assert props["kind"] == {"type": "STRING", "enum": ["order"]}
    assert props["priority"] == {"type": "INTEGER", "enum": ["1", "2"], "format": "enum"}
    assert props["when"] == {"type": "STRING", "format": "date-time"}
    assert props["code"] == {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}
    assert props["either"] == {"description": "id or flag", "nullable": True,
                               "anyOf": [{"type": "INTEGER"}, {"type": "BOOLEAN"}]}
    assert props["merged"]["properties"] == {**item["properties"], "note": {"type": "STRING"}}
    assert props["merged"]["propertyOrdering"] == ["sku", "qty", "note"]
    assert props["tags"] == {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1}


def test_recursive_schema_is_unsupported_and_not_sent(server, provider):
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(response_format={"type": "json_schema", "json_schema": {"schema": tree}}), TIMEOUT)
    assert e.value.kind == "unsupported" and "recursive" in str(e.value)
    assert server.requests == []


# -- errors ---------------------------------------------------------------------------

KEY_INVALID = api_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])
QUOTA = api_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "35s"}])


@pytest.mark.parametrize("status, body, kind", [
    (400, KEY_INVALID, "auth"),
    (403, api_error(403, "PERMISSION_DENIED", "Permission denied on resource project."), "auth"),
    (400, api_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."), "auth"),
    (404, api_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta."), "not_found"),
    (429, QUOTA, "rate_limit"),
    (500, api_error(500, "INTERNAL", "An internal error has occurred."), "server"),
    (503, api_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), "overloaded"),
    (504, api_error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), "timeout"),
    (400, api_error(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of "
                                             "tokens allowed (1048576)."), "context_length"),
    (400, api_error(400, "INVALID_ARGUMENT", "Function calling is not enabled for models/gemma-3-4b-it"),
     "unsupported"),
    (400, api_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\"."),
     "bad_request"),
    (400, [api_error(400, "INVALID_ARGUMENT", "API key not valid.")], "auth"),  # list-wrapped
    (502, "<html>Bad Gateway</html>", "server"),
])
def test_error_mapping(server, provider, status, body, kind):
    reply = Reply(status=status, body=body) if isinstance(body, str) else Reply(status=status, json=body)
    server.add("POST", GEN, reply)
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), TIMEOUT)
    assert (e.value.kind, e.value.status) == (kind, status)
    assert str(e.value).startswith("google: ")
    assert_key_hidden(server, str(e.value), repr(e.value))


def test_rate_limit_retry_after_from_retry_info_or_header(server, provider):
    server.add("POST", GEN, Reply(status=429, json=QUOTA),
               Reply(status=429, json=api_error(429, "RESOURCE_EXHAUSTED", "slow down"), headers={"retry-after": "7"}))
    delays = []
    for _ in range(2):
        with pytest.raises(ProviderError) as e:
            provider.chat(MODEL, ask(), TIMEOUT)
        delays.append(e.value.retry_after)
    assert delays == [35.0, 7.0]


def test_key_echoed_by_the_server_is_scrubbed(server, provider):
    server.add("POST", GEN, Reply(status=400, json=api_error(400, "INVALID_ARGUMENT", f"Bad key {KEY} here")))
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), TIMEOUT)
    assert KEY not in str(e.value) and "[redacted]" in str(e.value)


def test_read_timeout(server, provider):
    server.add("POST", GEN, Reply(json=answer({"text": "late"}), delay=1.0))
    with pytest.raises(ProviderError) as e:
        provider.chat(MODEL, ask(), (2, 0.2))
    assert e.value.kind == "timeout"
    assert KEY not in str(e.value)


def test_connection_refused():
    p = GoogleProvider(ProviderSettings(name="google", base_url=f"http://127.0.0.1:{closed_port()}",
                                        env={"GEMINI_API_KEY": KEY}))
    with pytest.raises(ProviderError) as e:
        p.chat(MODEL, ask(), TIMEOUT)
    assert e.value.kind == "connection"
    assert KEY not in str(e.value)


# -- streaming ------------------------------------------------------------------------

def split_inside(text, *chars):
    """`text` as byte chunks cut in the middle of each char's UTF-8 encoding."""
    data = text.encode()
    cuts = [data.index(c.encode()) + 1 for c in chars]
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def test_stream_text_with_unicode_split_across_chunks(server, provider):
    events = [answer({"text": "Let me think", "thought": True}, finish=None),
              answer({"text": "Grüße "}, finish=None),
              answer({"text": "🌍!"}, finish="STOP",
                     usage={"promptTokenCount": 5, "candidatesTokenCount": 4, "thoughtsTokenCount": 9})]
    # Raw UTF-8 in the JSON, events framed with CRLF, as Gemini sends them.
    frames = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in events)
    chunks = split_inside(frames, "ü", "🌍")
    server.add("POST", STREAM, Reply(chunks=chunks, chunk_delay=0.01))

    out = list(provider.stream(MODEL, ask("Hi"), TIMEOUT))

    rec = server.last()
    assert rec.path == STREAM and rec.query == "alt=sse"
    assert_key_hidden(server)
    assert "".join(c.delta for c in out) == "Grüße 🌍!"
    final = out[-1]
    assert (final.finish_reason, final.raw_finish_reason, final.tool_calls) == ("stop", "STOP", None)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 4)
    assert all(c.finish_reason is None for c in out[:-1])


def test_stream_skips_keep_alive_comments(server, provider):
    server.add("POST", STREAM, Reply(chunks=[": keep-alive\n\n", *sse(answer({"text": "ok"}))]))
    assert "".join(c.delta for c in provider.stream(MODEL, ask(), TIMEOUT)) == "ok"


def test_stream_function_call(server, provider):
    server.add("POST", STREAM, Reply(chunks=sse(
        answer({"text": "Checking. "}, finish=None),
        answer({"functionCall": {"name": "weather", "args": {"city": "Berlin"}}, "thoughtSignature": "c2ln"},
               {"functionCall": {"name": "now", "args": {}}},
               finish="STOP", usage={"promptTokenCount": 9, "candidatesTokenCount": 6}))))

    out = list(provider.stream(MODEL, ask(tools=[WEATHER, NOW]), TIMEOUT))

    deltas = [d for c in out for d in c.tool_call_deltas or []]
    final = out[-1]
    ids = [c.id for c in final.tool_calls]
    assert [(d.index, d.id, d.name, json.loads(d.arguments)) for d in deltas] == [
        (0, ids[0], "weather", {"city": "Berlin"}), (1, ids[1], "now", {})]
    assert final.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in final.tool_calls] == [("weather", {"city": "Berlin"}), ("now", {})]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)


HELLO = sse(answer({"text": "Hello"}, finish=None))


@pytest.mark.parametrize("chunks, kind, text", [
    (HELLO, "connection", "Hello"),  # clean EOF, but no chunk carried a finishReason
    ([], "connection", ""),  # nothing at all
    # cut in the middle of an event: what arrived is not JSON
    (HELLO + ['data: {"candidates": [{"content": {"par'], "server", "Hello"),
])
def test_truncated_stream_raises(server, provider, chunks, kind, text):
    server.add("POST", STREAM, Reply(chunks=chunks))
    got = []
    with pytest.raises(ProviderError) as e:
        for c in provider.stream(MODEL, ask(), TIMEOUT):
            got.append(c.delta)
    assert e.value.kind == kind
    assert "".join(got) == text


def test_error_event_mid_stream(server, provider):
    server.add("POST", STREAM, Reply(chunks=sse(
        answer({"text": "Part"}, finish=None),
        api_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))))
    got = []
    with pytest.raises(ProviderError) as e:
        for c in provider.stream(MODEL, ask(), TIMEOUT):
            got.append(c.delta)
    assert got == ["Part"]
    assert (e.value.kind, e.value.status) == ("overloaded", 503)


def test_blocked_prompt_in_stream(server, provider):
    server.add("POST", STREAM, Reply(chunks=sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})))
    with pytest.raises(ProviderError) as e:
        list(provider.stream(MODEL, ask(), TIMEOUT))
    assert e.value.kind == "content_filter"


def test_stream_http_error_raises_before_any_chunk(server, provider):
    server.add("POST", STREAM, Reply(status=429, json=QUOTA))
    with pytest.raises(ProviderError) as e:
        next(iter(provider.stream(MODEL, ask(), TIMEOUT)))
    assert (e.value.kind, e.value.retry_after) == ("rate_limit", 35.0)


def test_breaking_out_of_a_stream_closes_the_connection(server, provider):
    provider.session = keeping_session()
    frames = sse(*[answer({"text": f"w{i} "}, finish=None) for i in range(200)], answer({"text": "."}))
    server.add("POST", STREAM, Reply(chunks=frames, chunk_delay=0.02))
    for chunk in provider.stream(MODEL, ask(), TIMEOUT):
        assert chunk.delta == "w0 "
        break
    assert wait_for(lambda: server.disconnects == 1)


def test_stream_read_timeout(server, provider):
    server.add("POST", STREAM, Reply(chunks=sse(answer({"text": "a"}, finish=None),
                                                answer({"text": "b"})), chunk_delay=1.0))
    with pytest.raises(ProviderError) as e:
        list(provider.stream(MODEL, ask(), (2, 0.3)))
    assert e.value.kind == "timeout"


# -- models ---------------------------------------------------------------------------

def test_list_models_follows_pages(server, provider):
    server.add("GET", "/v1beta/models",
               Reply(json={"models": [
                   {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent"]},
                   {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}],
                   "nextPageToken": "page-2"}),
               Reply(json={"models": [{"name": "models/gemini-2.5-pro",
                                       "supportedGenerationMethods": ["generateContent", "countTokens"]}]}))
    assert provider.list_models(TIMEOUT) == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert "pageToken" not in server.requests[0].query
    assert "pageToken=page-2" in server.requests[1].query
    assert_key_hidden(server)


def test_registers_the_google_prefix():
    registered = {}
    google.register_providers(register=lambda prefix, factory: registered.update({prefix: factory}))
    assert registered == {"google": GoogleProvider}
