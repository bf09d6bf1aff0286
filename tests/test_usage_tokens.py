"""Cached and reasoning tokens, as each provider reports them, in answers and in streams, and
on into the usage log. Real local HTTP servers speaking each provider's wire format."""

import pytest
from httpfake import Reply, sse
from usagefix import rows

from llmring import Ring, usage
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message
from llmring.usage import db
from llmring_providers.anthropic import AnthropicProvider
from llmring_providers.google import GoogleProvider
from llmring_providers.openai import OpenAIProvider

TIMEOUT = (2, 5)
ASK = LLMRequest(messages=[Message(role="user", content="Hi")])
OPENAI_USAGE = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 30, "audio_tokens": 0}}


def openai(server):
    return OpenAIProvider(ProviderSettings(name="openai", env={"OPENAI_API_KEY": "sk-x",
                                                              "OPENAI_BASE_URL": server.url + "/v1"}))


def openai_body(usage):
    return {"id": "c", "object": "chat.completion", "model": "o3", "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


def tokens(u):
    return (u.input_tokens, u.output_tokens, u.cached_tokens, u.reasoning_tokens)


def test_openai_answer_and_stream(server):
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "ok"},
                                                                        "finish_reason": "stop"}]}
    server.add("POST", "/v1/chat/completions", Reply(json=openai_body(OPENAI_USAGE)),
               Reply(chunks=sse(chunk, {"id": "c", "choices": [], "usage": OPENAI_USAGE}, "[DONE]")))
    assert tokens(openai(server).chat("o3", ASK, TIMEOUT).usage) == (100, 50, 64, 30)
    final = list(openai(server).stream("o3", ASK, TIMEOUT))[-1]
    assert tokens(final.usage) == (100, 50, 64, 30)


@pytest.mark.parametrize("details", [{}, {"prompt_tokens_details": None, "completion_tokens_details": None},
                                     {"prompt_tokens_details": {"cached_tokens": "lots"}}])
def test_openai_compatible_servers_without_details_give_none_not_zero(server, details):
    server.add("POST", "/v1/chat/completions",
               Reply(json=openai_body({"prompt_tokens": 5, "completion_tokens": 2, **details})))
    assert tokens(openai(server).chat("m", ASK, TIMEOUT).usage) == (5, 2, None, None)


def anthropic(server):
    return AnthropicProvider(ProviderSettings(name="anthropic", env={"ANTHROPIC_API_KEY": "k",
                                                                    "ANTHROPIC_BASE_URL": server.url}))


ANTHROPIC_USAGE = {"input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 70,
                   "output_tokens": 5}


def test_anthropic_answer_and_stream(server):
    start = {**ANTHROPIC_USAGE, "output_tokens": 1}
    server.add("POST", "/v1/messages", Reply(json={
        "id": "m", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "ok"}], "usage": ANTHROPIC_USAGE}), Reply(chunks=sse(
        ("message_start", {"type": "message_start", "message": {"id": "m", "usage": start}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "ok"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}))))
    assert tokens(anthropic(server).chat("claude", ASK, TIMEOUT).usage) == (100, 5, 70, None)
    final = list(anthropic(server).stream("claude", ASK, TIMEOUT))[-1]
    assert tokens(final.usage) == (100, 9, 70, None)


def test_google_answer_and_stream(server):
    meta = {"promptTokenCount": 40, "candidatesTokenCount": 8, "cachedContentTokenCount": 32,
            "thoughtsTokenCount": 120, "totalTokenCount": 168}
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP",
                            "index": 0}], "usageMetadata": meta}
    provider = GoogleProvider(ProviderSettings(name="google", base_url=server.url, env={"GEMINI_API_KEY": "k"}))
    bare = {**body, "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}}
    server.add("POST", "/v1beta/models/gemini-2.5-flash:generateContent", Reply(json=body), Reply(json=bare))
    server.add("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", Reply(chunks=sse(body)))
    assert tokens(provider.chat("gemini-2.5-flash", ASK, TIMEOUT).usage) == (40, 8, 32, 120)
    final = list(provider.stream("gemini-2.5-flash", ASK, TIMEOUT))[-1]
    assert tokens(final.usage) == (40, 8, 32, 120)
    assert tokens(provider.chat("gemini-2.5-flash", ASK, TIMEOUT).usage) == (3, 1, None, None)


def test_the_log_stores_them_for_a_chat_and_a_stream(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    (tmp_path / "llmring.lock").write_text('version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\n'
                                           'name = "default"\n\n[[profiles.default.bindings]]\nalias = "a"\n'
                                           'models = ["openai:gpt-4o-mini"]\n')
    server.add("POST", "/v1/chat/completions", Reply(json=openai_body(OPENAI_USAGE)))
    ring = Ring()
    answer = ring.chat("a", "Hi")
    ring.close()
    [row] = rows(db.path())
    assert [row[k] for k in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")] == [100, 50, 64, 30]
    assert row["cost"] == pytest.approx(answer.cost) and row["cost"] > 0  # gpt-4o-mini has prices
    assert usage.spent("a", "default", 0) == pytest.approx(answer.cost)
