"""No part of an API key reaches an error, an attempt or a log, wherever a server puts it and
wherever llmring cuts the text: redact the whole text first, then cut, then blank any key prefix
the cut (ours or the server's) left at the end."""

import json

import pytest
from httpfake import Reply, ndjson, sse
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lockfiles import one_alias

from llmring import Ring
from llmring.exceptions import AllModelsFailedError, ProviderError
from llmring.failover import RetryPolicy
from llmring.provider import MESSAGE_LIMIT, QUOTE_LIMIT, Provider, ProviderSettings
from llmring.transport import MIN_SECRET, clip, redact
from llmring.types import LLMRequest, Message
from llmring_providers.anthropic import AnthropicProvider
from llmring_providers.ollama import OllamaProvider
from llmring_providers.openai import OpenAIProvider

KEY = "sk-proj-" + "A1b2C3d4E5" * 5  # 58 characters, like a real project key
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01)
CUTS = (QUOTE_LIMIT, 300, MESSAGE_LIMIT)
keys = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
               min_size=MIN_SECRET, max_size=120)
fillers = st.text(st.sampled_from(" .:,{}\"'!?#=/+"), max_size=3)


def fragments(key):
    return {key[i:i + MIN_SECRET] for i in range(len(key) - MIN_SECRET + 1)}


def assert_no_fragment(text, key):
    leaked = [f for f in fragments(key) if f in text]
    assert not leaked, f"{leaked[0]!r} of the key is in {text!r}"


@settings(max_examples=300, deadline=None)
@given(key=keys, cut=st.sampled_from(CUTS), shift=st.integers(-130, 10), around=fillers)
def test_a_key_anywhere_around_a_cut_never_survives_even_in_part(key, cut, shift, around):
    # The key starts `shift` characters after the cut point (negative: before it), so every
    # offset from "whole key before the cut" to "just past it" is driven.
    assume(not fragments(key) & fragments(" [redacted]…" + around))
    start = max(0, cut + shift)
    text = "x" * start + around + " got Bearer " + key + around + "y" * 50
    for out in (clip(text, cut, [key]), clip(text, cut, ["other-secret-value", key])):
        assert_no_fragment(out, key)
        assert len(out) <= cut + 1


@settings(max_examples=200, deadline=None)
@given(key=keys, keep=st.integers(0, 120), before=st.text(max_size=40))
def test_a_key_the_server_cut_itself_is_blanked_from_8_characters(key, keep, before):
    assume(not fragments(key) & fragments(before + "[redacted]"))
    text = before + key[:keep]  # a server that cut its own message inside the key
    out = redact(text, [key])
    assert_no_fragment(out, key)
    if keep >= MIN_SECRET:
        assert "[redacted]" in out


def test_bytes_are_redacted_like_text():
    assert redact(b"key=" + KEY.encode() + b" and " + KEY[:20].encode(), [KEY]) == b"key=[redacted] and [redacted]"


def test_short_dummy_keys_and_no_keys_change_nothing():
    assert redact("token sk-1 x", ["sk-1"]) == "token sk-1 x"
    assert clip("abc" * 10, 10) == "abcabcabca…"


def provider(cls=OpenAIProvider, env_name="OPENAI_API_KEY", url=""):
    return cls(ProviderSettings("p", base_url=url or None, api_key_env=env_name, env={env_name: KEY}))


@pytest.mark.parametrize("start", range(MESSAGE_LIMIT - 70, MESSAGE_LIMIT + 2, 3))
def test_a_provider_error_message_never_carries_a_key_across_its_cut(start):
    e = provider().error("server", "x" * start + KEY + " and more")
    assert_no_fragment(str(e), KEY)


def lockfile(tmp_path, models, providers=""):
    return one_alias(tmp_path, models, tail=providers)


def gateway_lockfile(tmp_path, server, models):
    return lockfile(tmp_path, models, f'\n[providers.gw]\ntype = "openai"\nbase_url = "{server.url}/v1"\n'
                                      f'api_key_env = "GW_KEY"\n')


def test_the_issue_gateway_echoing_the_authorization_header_leaks_nothing(tmp_path, server, monkeypatch, caplog):
    # Issue 9, item 1: 502 with "x"*239 + " got " + the Authorization header: the key straddled the
    # 300-character cut and 49 of its 50 characters reached the exception, attempts and the log.
    monkeypatch.setenv("GW_KEY", KEY)
    server.add("POST", "/v1/chat/completions",
               lambda rec: Reply(status=502, body="x" * 239 + " got " + rec.headers["authorization"]))
    path = gateway_lockfile(tmp_path, server, ["gw:m"])
    with caplog.at_level("DEBUG", logger="llmring"), Ring(path, retry=FAST) as ring, \
            pytest.raises(AllModelsFailedError) as info:
        ring.chat("a", "hi")
    assert server.requests and server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    seen = [str(info.value), repr(info.value)] + [a.message or "" for a in info.value.attempts]
    seen += [r.getMessage() for r in caplog.records]
    for text in seen:
        assert_no_fragment(text, KEY)
    assert "got Bearer [redacted]" in info.value.attempts[0].message


def test_a_key_straddling_the_cut_of_a_garbled_stream_event_is_blanked(server):
    p = provider(url=server.url)
    for start in range(QUOTE_LIMIT - 60, QUOTE_LIMIT + 1, 7):
        server.routes.clear()
        server.add("POST", "/chat/completions", Reply(chunks=sse("{" + "x" * start + KEY)))
        with pytest.raises(ProviderError) as info:
            list(p.stream("m", LLMRequest(messages=[Message(role="user", content="hi")]), (2, 2)))
        assert "not JSON" in str(info.value)
        assert_no_fragment(str(info.value), KEY)


def test_a_stream_error_event_echoing_the_key_is_blanked(server):
    p = provider(AnthropicProvider, "ANTHROPIC_API_KEY", server.url)
    event = ("error", {"type": "error", "error": {"type": "api_error", "message": "y" * 480 + KEY}})
    server.add("POST", "/v1/messages", Reply(chunks=sse(event, event_names=True)))
    with pytest.raises(ProviderError) as info:
        list(p.stream("m", LLMRequest(messages=[Message(role="user", content="hi")]), (2, 2)))
    assert_no_fragment(str(info.value), KEY)


def test_a_key_straddling_the_cut_of_a_garbled_ndjson_line_is_blanked(server):
    p = provider(OllamaProvider, "OLLAMA_KEY", server.url)
    server.add("POST", "/api/chat", Reply(chunks=ndjson({"a": 1}) + ["{" + "z" * 90 + KEY + "\n"]))
    with pytest.raises(ProviderError) as info:
        list(p.stream("m", LLMRequest(messages=[Message(role="user", content="hi")]), (2, 2)))
    assert "not JSON" in str(info.value)
    assert_no_fragment(str(info.value), KEY)


def test_an_error_body_is_redacted_before_any_provider_code_cuts_it(server):
    # Plugins cut `response.text` themselves (the built-ins at 300); the body they see is redacted.
    class Cutting(Provider):
        def error_from_response(self, response):
            return self.error("server", response.text[:300])

    p = Cutting(ProviderSettings("c", base_url=server.url, api_key_env="K", env={"K": KEY}))
    server.add("POST", "/x", Reply(status=500, body=json.dumps({"echo": "x" * 270 + KEY})))
    with pytest.raises(ProviderError) as info:
        p.post(f"{server.url}/x", {}, {}, (2, 2))
    assert_no_fragment(str(info.value), KEY)
