"""Whatever a server answers, a provider returns an LLMResponse or raises a ProviderError with
a kind: never a KeyError or TypeError from parsing an odd body."""

import json

import pytest
from httpfake import FakeServer, Reply
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from llmring.exceptions import KINDS, ProviderError
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, LLMResponse, Message, StreamChunk
from llmring_providers.anthropic import AnthropicProvider
from llmring_providers.google import GoogleProvider
from llmring_providers.ollama import OllamaProvider
from llmring_providers.openai import OpenAIProvider

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "message", "content", "delta", "tool_calls", "function", "arguments", "name",
                         "usage", "finish_reason", "index", "type", "text", "input", "id", "candidates", "parts",
                         "functionCall", "args", "usageMetadata", "done", "error", "role", "stop_reason",
                         "promptFeedback", "blockReason", "finishReason", "eval_count", "thought"]),
        inner, max_size=5),
    max_leaves=25)

# provider class, env, chat path, stream path (None: same as chat)
PROVIDERS = {
    "openai": (OpenAIProvider, {"OPENAI_API_KEY": "sk-robust"}, "/chat/completions", None, "OPENAI_BASE_URL"),
    "anthropic": (AnthropicProvider, {"ANTHROPIC_API_KEY": "sk-robust"}, "/v1/messages", None,
                  "ANTHROPIC_BASE_URL"),
    "google": (GoogleProvider, {"GEMINI_API_KEY": "g-robust"}, "/v1beta/models/m:generateContent",
               "/v1beta/models/m:streamGenerateContent", "GEMINI_BASE_URL"),
    "ollama": (OllamaProvider, {}, "/api/chat", None, "OLLAMA_HOST"),
}
REQUEST = LLMRequest(messages=[Message(role="user", content="Hi")],
                     tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])


@pytest.fixture(scope="module")
def shared_server():
    s = FakeServer()
    yield s
    s.close()


def provider_for(name, server):
    cls, env, _, _, url_env = PROVIDERS[name]
    return cls(ProviderSettings(name, env={**env, url_env: server.url}))


def serve(server, path, reply):
    with server._lock:
        server.routes[("POST", path)] = [reply]


def check_chat(provider, server, path, reply):
    serve(server, path, reply)
    try:
        result = provider.chat("m", REQUEST, (2, 2))
    except ProviderError as e:
        assert e.kind in KINDS
        return
    assert isinstance(result, LLMResponse) and isinstance(result.content, str)


def check_stream(provider, server, path, reply):
    serve(server, path, reply)
    try:
        chunks = list(provider.stream("m", REQUEST, (2, 2)))
    except ProviderError as e:
        assert e.kind in KINDS
        return
    assert all(isinstance(c, StreamChunk) and isinstance(c.delta, str) for c in chunks)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@SETTINGS
@given(body=json_values, status=st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500, 529]))
@example(body={"message": {"content": True}}, status=200)  # once read as an answer whose text is True
@example(body={"content": [{"type": "text", "text": 5}]}, status=200)
def test_any_json_answer_is_a_response_or_a_provider_error(shared_server, name, body, status):
    check_chat(provider_for(name, shared_server), shared_server, PROVIDERS[name][2],
               Reply(status=status, body=json.dumps(body), content_type="application/json"))


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@SETTINGS
@given(events=st.lists(json_values, max_size=6), raw=st.booleans())
@example(events=[{"message": {"content": True}}, {"message": {"content": ""}, "done": True}], raw=False)
@example(events=[{"type": "message_start", "message": {"usage": {"input_tokens": 1}}},
                 {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": True}},
                 {"type": "content_block_stop", "index": 0}, {"type": "message_stop"}], raw=False)
def test_any_stream_of_events_is_chunks_or_a_provider_error(shared_server, name, events, raw):
    _, _, chat_path, stream_path, _ = PROVIDERS[name]
    if name == "ollama":
        frames = [json.dumps(e) + "\n" for e in events]
    else:
        frames = [f"data: {json.dumps(e)}\n\n" for e in events]
    if raw:  # also bytes that are not JSON at all
        frames.append("data: {not json\n\n" if name != "ollama" else "{not json\n")
    check_stream(provider_for(name, shared_server), shared_server, stream_path or chat_path, Reply(chunks=frames))


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@SETTINGS
@given(body=st.binary(max_size=64), status=st.sampled_from([200, 500, 503]))
def test_any_bytes_are_a_response_or_a_provider_error(shared_server, name, body, status):
    check_chat(provider_for(name, shared_server), shared_server, PROVIDERS[name][2],
               Reply(status=status, body=body, content_type="application/json"))
