"""What every provider shares through the Provider base class: the caller's errors raised
before any network call, one `extra_params` merge, bounded model listings. Each built-in
provider runs against a real loopback server speaking its wire format."""

import pytest
from faults import FaultServer, repeated_page
from httpfake import Reply

from llmring import Ring
from llmring.exceptions import ProviderError
from llmring.provider import Provider, ProviderSettings, merge_extra_params
from llmring.types import LLMRequest
from llmring_providers.anthropic import AnthropicProvider
from llmring_providers.google import GoogleProvider
from llmring_providers.mock import MockProvider
from llmring_providers.ollama import OllamaProvider
from llmring_providers.openai import OpenAIProvider

KEY = "sk-skeleton-secret-123"
TIMEOUT = (2, 5)
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]


def make(prefix, url):
    """(provider, model, chat path) for `prefix`, pointed at `url` through its environment."""
    env = {"openai": {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url + "/v1"},
           "anthropic": {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": url},
           "google": {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": url},
           "ollama": {"OLLAMA_HOST": url}, "mock": {}}[prefix]
    cls, model, path = {
        "openai": (OpenAIProvider, "gpt-4o", "/v1/chat/completions"),
        "anthropic": (AnthropicProvider, "claude", "/v1/messages"),
        "google": (GoogleProvider, "gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        "ollama": (OllamaProvider, "llama3", "/api/chat"),
        "mock": (MockProvider, "echo", None)}[prefix]
    return cls(ProviderSettings(prefix, env=env)), model, path


ANSWERS = {
    "openai": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]},
    "anthropic": {"type": "message", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"},
    "google": {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]},
    "ollama": {"message": {"role": "assistant", "content": "ok"}, "done": True, "done_reason": "stop"},
}
PREFIXES = ["openai", "anthropic", "google", "ollama", "mock"]

CALLER_ERRORS = {
    "a tool_choice that is no mode": dict(tools=TOOLS, tool_choice="bogus"),
    "a tool_choice of a wrong type": dict(tools=TOOLS, tool_choice=["auto"]),
    "a tool_choice naming a missing tool": dict(tools=TOOLS, tool_choice={"name": "nope"}),
    "a tool without a name": dict(tools=[{"parameters": {}}]),
    "a response_format of no known type": dict(response_format={"type": "xml"}),
    "a json_schema that is no dict": dict(response_format={"type": "json_schema", "json_schema": "person"}),
    "a stop that is not text": dict(stop=5),
    "a stop list with a non-string": dict(stop=["END", None]),
    "content of a wrong type": dict(messages=[{"role": "user", "content": 42}]),
    "a part of a wrong type": dict(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, 7]}]),
}


@pytest.mark.parametrize("case", list(CALLER_ERRORS))
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_a_callers_bad_value_is_bad_request_before_any_network_call(server, prefix, case, streaming):
    provider, model, _ = make(prefix, server.url)
    request = LLMRequest(**{"messages": ["Hi"], **CALLER_ERRORS[case]})
    with pytest.raises(ProviderError) as info:
        if streaming:
            list(provider.stream(model, request, TIMEOUT))
        else:
            provider.chat(model, request, TIMEOUT)
    assert info.value.kind == "bad_request", str(info.value)
    assert info.value.provider == prefix and str(info.value).startswith(f"{prefix}: ")
    assert server.requests == []


@pytest.mark.parametrize("prefix", PREFIXES)
def test_valid_tool_choices_pass_every_provider(server, prefix):
    provider, model, path = make(prefix, server.url)
    if path:
        server.add("POST", path, Reply(json=ANSWERS[prefix]))
    for choice in ("auto", "none", "required", {"type": "function", "function": {"name": "weather"}},
                   {"name": "weather"}):
        provider.chat(model, LLMRequest(messages=["Hi"], tools=TOOLS, tool_choice=choice, stop="END"), TIMEOUT)


def test_a_bogus_tool_choice_raises_at_once_through_the_ring_and_rests_no_model(server, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", server.url)
    server.add("POST", "/v1beta/models/gemini-2.5-flash:generateContent", Reply(json=ANSWERS["google"]))
    lock = tmp_path / "llmring.lock"
    lock.write_text('[profiles.default]\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["google:gemini-2.5-flash", "mock:echo"]\n')
    with Ring(lock) as ring:
        for _ in range(5):  # more than the circuit breaker's threshold
            with pytest.raises(ProviderError) as info:
                ring.chat("a", "Hi", tools=TOOLS, tool_choice="bogus")
            assert info.value.kind == "bad_request"
            assert "please report" not in str(info.value)
        assert server.requests == []  # raised before the network; mock:echo never answered either
        r = ring.chat("a", "Hi", tools=TOOLS, tool_choice="auto")
    assert r.model == "google:gemini-2.5-flash"  # the primary was not rested


def test_what_the_model_cannot_do_is_unsupported_and_fails_over(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    lock = tmp_path / "llmring.lock"
    lock.write_text('[profiles.default]\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["ollama:llama3", "mock:echo"]\n')
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}  # Ollama takes base64 only
    with Ring(lock) as ring:
        r = ring.chat("a", [{"role": "user", "content": [{"type": "text", "text": "Hi"}, image]}])
    assert r.model == "mock:echo"
    assert [(a.model, a.kind) for a in r.attempts] == [("ollama:llama3", "unsupported"), ("mock:echo", None)]
    assert server.requests == []


# -- extra_params: one merge, a JSON Merge Patch (RFC 7396) -----------------------------------

def test_merge_extra_params_is_a_json_merge_patch():
    body = {"model": "m", "options": {"temperature": 0.2, "nested": {"a": 1, "b": 2}}, "stop": ["x"]}
    extra = {"options": {"num_ctx": 8192, "nested": {"b": None, "c": 3}, "temperature": None},
             "stop": ["y"], "model": None, "new": {"k": 1, "gone": None}}
    assert merge_extra_params(body, extra) == {
        "options": {"nested": {"a": 1, "c": 3}, "num_ctx": 8192}, "stop": ["y"], "new": {"k": 1}}
    assert extra["options"]["nested"] == {"b": None, "c": 3}  # the caller's dict is left as given


MERGES = {  # prefix -> (request fields, extra_params, the body key to check, what it must hold)
    "openai": (dict(temperature=0.5, max_tokens=5), {"temperature": None, "seed": 7}, None,
               lambda b: "temperature" not in b and b["seed"] == 7 and b["max_tokens"] == 5),
    "anthropic": (dict(tools=TOOLS, tool_choice="auto"), {"tool_choice": {"disable_parallel_tool_use": True}},
                  "tool_choice", {"type": "auto", "disable_parallel_tool_use": True}),
    "google": (dict(temperature=0.3, max_tokens=5), {"generationConfig": {"topK": 5, "temperature": None}},
               "generationConfig", {"maxOutputTokens": 5, "topK": 5}),
    "ollama": (dict(temperature=0.3, max_tokens=5), {"options": {"num_ctx": 8192, "temperature": None}},
               "options", {"num_predict": 5, "num_ctx": 8192}),
}


@pytest.mark.parametrize("prefix", list(MERGES))
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_extra_params_merge_the_same_way_in_every_provider(server, prefix, streaming):
    provider, model, path = make(prefix, server.url)
    fields, extra, key, expected = MERGES[prefix]
    server.add("POST", path, Reply(json=ANSWERS[prefix]))
    server.add("POST", path.replace(":generateContent", ":streamGenerateContent"), Reply(status=500, json={}))
    request = LLMRequest(messages=["Hi"], extra_params=extra, **fields)
    try:
        list(provider.stream(model, request, TIMEOUT)) if streaming else provider.chat(model, request, TIMEOUT)
    except ProviderError:
        pass  # the stream's answer does not matter here: what was sent does
    body = server.requests[-1].json()
    assert expected(body) if callable(expected) else body[key] == expected


# -- model listings are bounded ----------------------------------------------------------------

def test_google_lists_every_page(server):
    provider, _, _ = make("google", server.url)
    server.add("GET", "/v1beta/models",
               Reply(json={"models": [{"name": "models/a", "supportedGenerationMethods": ["generateContent"]}],
                           "nextPageToken": "p2"}),
               Reply(json={"models": [{"name": "models/b"}, {"name": "models/emb",
                                                            "supportedGenerationMethods": ["embedContent"]}]}))
    assert provider.list_models(TIMEOUT) == ["a", "b"]
    assert [r.query for r in server.requests] == ["pageSize=1000", "pageSize=1000&pageToken=p2"]


def test_anthropic_lists_every_page(server):
    provider, _, _ = make("anthropic", server.url)
    server.add("GET", "/v1/models",
               Reply(json={"data": [{"id": "claude-a"}], "has_more": True, "last_id": "claude-a"}),
               Reply(json={"data": [{"id": "claude-b"}], "has_more": False, "last_id": "claude-b"}))
    assert provider.list_models(TIMEOUT) == ["claude-a", "claude-b"]
    assert server.requests[1].query == "limit=1000&after_id=claude-a"


LISTINGS = {  # prefix -> (path, a page that names itself as the next one)
    "google": ("/v1beta/models", {"models": [{"name": "models/a"}], "nextPageToken": "same"}),
    "anthropic": ("/v1/models", {"data": [{"id": "a"}], "has_more": True, "last_id": "a"}),
}


@pytest.mark.parametrize("prefix", list(LISTINGS))
def test_a_repeated_page_token_ends_the_listing_with_an_error(prefix):
    path, page = LISTINGS[prefix]
    with FaultServer() as s:
        s.route(path, repeated_page(page))
        provider, _, _ = make(prefix, s.url)
        with pytest.raises(ProviderError) as info:
            provider.list_models(TIMEOUT)
        assert s.hits[path] == 2  # the second answer repeats the first's token: stop there
    assert info.value.kind == "server" and "same page token twice" in str(info.value)


def test_a_listing_that_never_ends_stops_after_max_pages(server):
    provider, _, _ = make("google", server.url)
    count = iter(range(10 * Provider.max_pages))
    server.add("GET", "/v1beta/models", lambda rec: Reply(json={"models": [], "nextPageToken": f"t{next(count)}"}))
    with pytest.raises(ProviderError) as info:
        provider.list_models(TIMEOUT)
    assert info.value.kind == "server" and f"more than {Provider.max_pages} pages" in str(info.value)
    assert len(server.requests) == Provider.max_pages


def test_a_listing_page_of_an_unexpected_shape_is_invalid_output(server):
    provider, _, _ = make("google", server.url)
    server.add("GET", "/v1beta/models", Reply(json={"models": ["not-an-object"]}))
    with pytest.raises(ProviderError) as info:
        provider.list_models(TIMEOUT)
    assert info.value.kind == "invalid_output"


STOPS = {  # prefix -> where the body carries stop sequences
    "openai": lambda b: b.get("stop"),
    "anthropic": lambda b: b.get("stop_sequences"),
    "google": lambda b: (b.get("generationConfig") or {}).get("stopSequences"),
    "ollama": lambda b: (b.get("options") or {}).get("stop"),
}


@pytest.mark.parametrize("prefix", list(STOPS))
@pytest.mark.parametrize("stop,sent", [("END", ["END"]), (["a", "b"], ["a", "b"]), ("", None), ([], None)])
def test_stop_is_normalised_the_same_way_in_every_provider(server, prefix, stop, sent):
    provider, model, path = make(prefix, server.url)
    server.add("POST", path, Reply(json=ANSWERS[prefix]))
    provider.chat(model, LLMRequest(messages=["Hi"], stop=stop), TIMEOUT)
    assert STOPS[prefix](server.requests[-1].json()) == sent
