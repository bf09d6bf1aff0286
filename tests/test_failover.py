"""Ring.chat / Ring.stream walking an alias's models: retries, failover, deadlines, breaker."""

import asyncio
import threading
import time

import pytest
from fakeclock import SkippingClock
from httpfake import Reply, closed_port, openai_answer, sse

from llmring import LLMRequest, LLMRing, Ring
from llmring.exceptions import (
    KINDS,
    AliasNotFoundError,
    AllModelsFailedError,
    ModelNotFoundError,
    ProviderRateLimitError,
    ProviderResponseError,
    StreamInterruptedError,
)
from llmring.failover import CircuitBreaker, RetryPolicy
from llmring.state import MemoryState

FAST = RetryPolicy(base_delay=0.001, max_delay=0.01)


def quick_ring(path, **options):
    """A Ring whose waits take no real time: its walker, its limits and (unless a breaker is
    given) its state run on a clock whose sleeps skip ahead; `ring.slept` lists the waits.
    (mock:fail-rate_limit asks for a 1 s Retry-After, which also cools the model for 1 s: on the
    real clock both would be waited for.)"""
    clock = SkippingClock()
    options.setdefault("breaker", CircuitBreaker(state=MemoryState(clock)))
    ring = Ring(path, retry=FAST, **options)
    ring.walker.clock, ring.walker.sleep = clock, clock.sleep
    ring.slept = clock.slept
    return ring
KEY = "sk-test-very-secret-key-123456"


def lockfile(tmp_path, bindings, providers=""):
    text = 'version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\nname = "default"\n'
    for alias, models in bindings.items():
        refs = ", ".join(f'"{m}"' for m in models)
        text += f'\n[[profiles.default.bindings]]\nalias = "{alias}"\nmodels = [{refs}]\n'
    path = tmp_path / "llmring.lock"
    path.write_text(text + providers)
    return path


def openai_ok(text="from openai"):
    return openai_answer(text)


def openai_error(status, message, type_="server_error", code=None, headers=None):
    return Reply(status=status, headers=headers or {},
                 json={"error": {"message": message, "type": type_, "param": None, "code": code}})


@pytest.fixture
def openai_env(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return server


FAILING_OVER = sorted(k for k, (_, over) in KINDS.items() if over)


@pytest.mark.parametrize("kind", FAILING_OVER)
def test_each_failure_kind_fails_over_to_the_next_model(tmp_path, kind):
    path = lockfile(tmp_path, {"assistant": [f"mock:fail-{kind}", "mock:echo"]})
    with quick_ring(path) as ring:
        r = ring.chat("assistant", "ping")
    assert r.content == "ping"
    assert r.model == "mock:echo"
    assert r.alias == "assistant"
    failed = [a for a in r.attempts if not a.ok]
    assert failed and {a.kind for a in failed} == {kind}
    assert all(a.model == f"mock:fail-{kind}" for a in failed)
    assert r.attempts[-1].ok and r.attempts[-1].model == "mock:echo"


def test_retryable_kinds_retry_the_same_model_a_bounded_number_of_times(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:fail-server", "mock:echo"]})
    with quick_ring(path) as ring:
        r = ring.chat("a", "x")
    assert [a.kind for a in r.attempts] == ["server", "server", "server", None]


def test_non_retryable_kinds_are_tried_once(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:fail-auth", "mock:echo"]})
    with quick_ring(path) as ring:
        r = ring.chat("a", "x")
    assert [a.kind for a in r.attempts] == ["auth", None]


def test_bad_request_raises_at_once_without_trying_fallbacks(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:fail-bad_request", "mock:echo"]})
    with quick_ring(path) as ring, pytest.raises(ProviderResponseError) as info:
        ring.chat("a", "x")
    err = info.value
    assert isinstance(err, AllModelsFailedError)
    assert err.kind == "bad_request"
    assert [a.model for a in err.attempts] == ["mock:fail-bad_request"]


def test_flaky_model_recovers_on_retry(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:flaky-overloaded-2"]})
    with quick_ring(path) as ring:
        r = ring.chat("a", "hello")
    assert r.content == "hello"
    assert [a.kind for a in r.attempts] == ["overloaded", "overloaded", None]


def test_all_failed_lists_every_attempt_and_is_catchable_by_the_last_kind(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:fail-auth", "mock:fail-rate_limit"]})
    with quick_ring(path) as ring, pytest.raises(ProviderRateLimitError) as info:
        ring.chat("a", "x")
    err = info.value
    assert isinstance(err, AllModelsFailedError)
    assert err.kind == "rate_limit"
    text = str(err)
    assert "mock:fail-auth" in text and "mock:fail-rate_limit" in text
    assert [a.kind for a in err.attempts][0] == "auth"


def test_long_retry_after_moves_on_at_once(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions",
               openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded", {"retry-after": "30"}))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    with Ring(path) as ring:
        r = ring.chat("a", "hi")
    assert r.model == "mock:echo"
    assert len(server.requests) == 1  # no second try of the rate-limited model
    assert r.attempts[0].kind == "rate_limit" and r.attempts[0].retry_after == 30


def test_short_retry_after_is_honoured_on_the_same_model(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions",
               openai_error(429, "slow down", "requests", "rate_limit_exceeded", {"retry-after-ms": "20"}),
               openai_ok())
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    with Ring(path) as ring:
        r = ring.chat("a", "hi")
    assert r.model == "openai:gpt-4o-mini" and r.content == "from openai"
    assert len(server.requests) == 2


def test_connection_refused_fails_over(tmp_path, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    with quick_ring(path) as ring:
        r = ring.chat("a", "hi")
    assert r.model == "mock:echo"
    assert {a.kind for a in r.attempts if not a.ok} == {"connection"}


def test_hanging_primary_hits_the_read_timeout_and_fails_over(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", Reply(delay=3, json={}))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    with Ring(path, timeout=0.2, retry=RetryPolicy(max_retries=0)) as ring:
        r = ring.chat("a", "hi")
    assert r.model == "mock:echo"
    assert r.attempts[0].kind == "timeout"


def test_request_timeout_is_one_deadline_for_the_whole_walk(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", Reply(delay=30, json={}))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "openai:gpt-4o"]})
    started = time.monotonic()
    with quick_ring(path) as ring, pytest.raises(AllModelsFailedError) as info:
        ring.chat(LLMRequest(model="a", messages=["hi"], timeout=0.6))
    assert time.monotonic() - started < 15  # cut by the 0.6 s deadline, not by the server's 30 s
    assert info.value.kind == "timeout"
    # The hanging primary got only part of the time: the fallback was still tried.
    tried = {a.model for a in info.value.attempts if a.kind == "timeout" and a.elapsed > 0}
    assert tried == {"openai:gpt-4o-mini", "openai:gpt-4o"}
    assert {r.json()["model"] for r in server.requests} == {"gpt-4o-mini", "gpt-4o"}


def test_a_hanging_primary_leaves_time_for_the_fallback_under_a_deadline(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", Reply(delay=3, json={}))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    with Ring(path, retry=RetryPolicy(max_retries=0)) as ring:
        r = ring.chat(LLMRequest(model="a", messages=["hi"], timeout=1.0))
    assert r.model == "mock:echo" and r.attempts[0].kind == "timeout"


def test_circuit_breaker_rests_a_failing_model_but_not_the_last_one(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", openai_error(503, "down", "server_error"))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"], "b": ["openai:gpt-4o-mini"]})
    breaker = CircuitBreaker(threshold=3, cooldown=60)
    with quick_ring(path, breaker=breaker) as ring:
        ring.chat("a", "1")  # three failures: the breaker opens
        calls = len(server.requests)
        r = ring.chat("a", "2")
        assert len(server.requests) == calls  # skipped without a request
        assert r.attempts[0].skipped and r.attempts[0].model == "openai:gpt-4o-mini"
        with pytest.raises(AllModelsFailedError):
            ring.chat("b", "3")  # the only model left is still tried
        assert len(server.requests) > calls


def test_keys_never_appear_in_errors(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions",
               openai_error(401, f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key"))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini"]})
    with Ring(path) as ring, pytest.raises(AllModelsFailedError) as info:
        ring.chat("a", "hi")
    assert server.last().headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert all(KEY not in a.message for a in info.value.attempts)
    assert info.value.kind == "auth"


def test_unknown_alias_is_model_not_found_and_names_the_fix(tmp_path):
    path = lockfile(tmp_path, {"summarizer": ["mock:echo"]})
    with Ring(path) as ring, pytest.raises(ModelNotFoundError) as info:
        ring.chat("summariser", "x")
    assert isinstance(info.value, AliasNotFoundError)
    assert "summarizer" in str(info.value)  # the close match
    assert "llmring bind summariser" in str(info.value)


def test_unknown_provider_prefix_fails_over_and_lists_installed(tmp_path):
    path = lockfile(tmp_path, {"a": ["nosuch:model", "mock:echo"]})
    with Ring(path) as ring:
        r = ring.chat("a", "x")
    assert r.attempts[0].kind == "not_configured"
    assert "mock" in r.attempts[0].message and "pip install" in r.attempts[0].message


def test_direct_reference_and_provider_with_colon_in_model(tmp_path):
    path = lockfile(tmp_path, {})
    with Ring(path) as ring:
        r = ring.chat("mock:echo", "direct")
    assert r.content == "direct" and r.model == "mock:echo" and r.alias is None


def test_ollama_reference_splits_at_the_first_colon(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    server.add("POST", "/api/chat", Reply(json={
        "model": "llama3:8b", "created_at": "2024-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "hi"}, "done": True, "done_reason": "stop",
        "prompt_eval_count": 3, "eval_count": 1}))
    with Ring(lockfile(tmp_path, {"local": ["ollama:llama3:8b"]})) as ring:
        r = ring.chat("local", "hi")
    assert server.last().json()["model"] == "llama3:8b"
    assert r.model == "ollama:llama3:8b"


def test_binding_params_are_defaults_and_the_call_wins(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", openai_ok())
    path = lockfile(tmp_path, {})
    path.write_text(path.read_text() + '\n[[profiles.default.bindings]]\nalias = "a"\nmodels = ["openai:gpt-4o-mini"]\n'
                    'params = { temperature = 0.2, max_tokens = 50, seed = 7 }\n')
    with Ring(path) as ring:
        ring.chat("a", "x")
        first = server.last().json()
        ring.chat("a", "x", temperature=0.9)
        second = server.last().json()
    assert first["temperature"] == 0.2 and first["max_tokens"] == 50 and first["seed"] == 7
    assert second["temperature"] == 0.9 and second["max_tokens"] == 50


def test_no_temperature_is_sent_unless_given(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", openai_ok())
    with Ring(lockfile(tmp_path, {"a": ["openai:gpt-4o-mini"]})) as ring:
        ring.chat("a", "x")
    assert "temperature" not in server.last().json()


def test_structured_output_is_parsed_and_a_wrong_shape_fails_over(tmp_path):
    from llmring_providers import mock

    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    mock.script("badjson", ['{"nom": 1}'])
    try:
        path = lockfile(tmp_path, {"a": ["mock:badjson", "mock:echo"]})
        with Ring(path) as ring:
            r = ring.chat("a", "make a person", response_format=fmt)
    finally:
        mock.clear_scripts()
    assert r.model == "mock:echo"
    assert isinstance(r.parsed, dict) and isinstance(r.parsed["name"], str)
    assert r.attempts[0].kind == "invalid_output" and "name" in r.attempts[0].message


def test_stream_fails_over_before_the_first_chunk(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:fail-overloaded", "mock:echo"]})
    with quick_ring(path) as ring:
        chunks = list(ring.stream("a", "one two three"))
    assert "".join(c.delta for c in chunks) == "one two three"
    final = chunks[-1]
    assert final.finish_reason == "stop" and final.model == "mock:echo"
    assert [a.kind for a in final.attempts][0] == "overloaded"


def test_stream_failure_after_the_first_chunk_carries_the_partial_text(tmp_path, openai_env):
    server = openai_env
    frames = sse({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}]})
    frames.append('data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n')
    server.add("POST", "/v1/chat/completions", Reply(chunks=frames))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    got = []
    with Ring(path) as ring, pytest.raises(StreamInterruptedError) as info:
        for c in ring.stream("a", "hi"):
            got.append(c.delta)
    assert "".join(got) == "Hello"
    assert info.value.partial == "Hello"
    assert len(server.requests) == 1  # no failover after the first chunk


def test_async_ring_runs_calls_concurrently(tmp_path, openai_env):
    server = openai_env
    calls = 60
    # The server answers only once all calls are in flight at once: a small pool would never
    # get there (the barrier breaks after a generous wait and the calls fail).
    together = threading.Barrier(calls, timeout=60)

    def held(_req):
        together.wait()
        return openai_ok()

    server.add("POST", "/v1/chat/completions", held)
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini"]})

    async def main():
        async with LLMRing(lockfile_path=path, retry=RetryPolicy(max_retries=0)) as service:
            return await asyncio.gather(*(service.chat("a", f"q{i}") for i in range(calls)))

    results = asyncio.run(main())
    assert len(results) == calls and all(r.content == "from openai" for r in results)
    assert not together.broken


def test_async_stream_and_sync_use_of_llmring(tmp_path):
    path = lockfile(tmp_path, {"a": ["mock:echo"]})

    async def main():
        async with LLMRing(lockfile_path=path) as service:
            return [c.delta async for c in service.stream("a", "x y z")]

    assert "".join(asyncio.run(main())) == "x y z"
    service = LLMRing(lockfile_path=path)  # the seed's library example calls chat from sync code
    assert service.chat("a", messages=[{"role": "user", "content": "sync"}]).content == "sync"


def test_cancelling_an_async_stream_cuts_its_connection_at_once(tmp_path, openai_env):
    server = openai_env
    chunk = {"id": "c", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": "tick "}, "finish_reason": None}]}
    server.add("POST", "/v1/chat/completions", Reply(chunks=sse(*[chunk] * 20), chunk_delay=30))
    path = lockfile(tmp_path, {"slow": ["openai:gpt-4o-mini"], "quick": ["mock:echo"]})

    async def main():
        async with LLMRing(lockfile_path=path, max_concurrency=1) as service:
            async def consume():
                async for c in service.stream("slow", "go"):
                    got.append(c.delta)

            got = []
            task = asyncio.create_task(consume())
            while not got:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The only pool thread was reading the slow stream; it is free long before the
            # server's next chunk (30 s) only if the connection was cut at once.
            return await asyncio.wait_for(service.chat("quick", "next"), timeout=15)

    assert asyncio.run(main()).content == "next"


def test_binding_extra_params_table_merges_into_the_request(tmp_path, openai_env):
    server = openai_env
    server.add("POST", "/v1/chat/completions", openai_ok())
    path = lockfile(tmp_path, {})
    path.write_text(path.read_text() + '\n[[profiles.default.bindings]]\nalias = "a"\nmodels = ["openai:gpt-4o-mini"]\n'
                    'params = { extra_params = { seed = 3, user = "lockfile" } }\n')
    with Ring(path) as ring:
        ring.chat("a", "x", extra_params={"user": "caller"})
    body = server.last().json()
    assert body["seed"] == 3 and body["user"] == "caller" and "extra_params" not in body


@pytest.mark.parametrize("stream", [False, True])
def test_calls_reuse_one_keep_alive_connection(tmp_path, openai_env, stream):
    server = openai_env
    chunks = sse({"id": "c", "object": "chat.completion.chunk",
                  "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}, "[DONE]")
    server.add("POST", "/v1/chat/completions", Reply(chunks=chunks) if stream else openai_ok("hi"))
    with Ring(lockfile(tmp_path, {"a": ["openai:gpt-4o-mini"]})) as ring:
        for _ in range(3):
            text = "".join(c.delta for c in ring.stream("a", "x")) if stream else ring.chat("a", "x").content
            assert text == "hi"
    assert len(server.requests) == 3 and server.connections == 1


def test_a_provider_bug_fails_over_without_retrying_the_paid_call(tmp_path, monkeypatch):
    import llmring.plugins
    from llmring.plugins import PluginRegistry, hookimpl
    from llmring.provider import Provider

    calls = []

    class Buggy(Provider):
        def chat(self, model, request, timeout):
            calls.append(model)
            return {}["choices"]  # a parsing bug: KeyError

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register("buggy", Buggy)

    registry = PluginRegistry()  # this test's own: later tests see no "buggy" provider
    registry.register(Plugin(), name="test-buggy-plugin")
    monkeypatch.setattr(llmring.plugins, "registry", registry)
    path = lockfile(tmp_path, {"a": ["buggy:model", "mock:echo"]})
    with quick_ring(path) as ring:
        r = ring.chat("a", "hi")
    assert r.model == "mock:echo"
    assert calls == ["model"]  # tried once, not retried
    assert r.attempts[0].kind == "invalid_output" and "KeyError" in r.attempts[0].message


def test_each_failed_attempt_is_logged_without_the_key(tmp_path, openai_env, caplog):
    server = openai_env
    server.add("POST", "/v1/chat/completions",
               openai_error(401, f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key"))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini", "mock:echo"]})
    with caplog.at_level("WARNING", logger="llmring"), Ring(path) as ring:
        ring.chat("a", "hi")
    records = [r for r in caplog.records if r.name == "llmring"]
    assert len(records) == 1 and "openai:gpt-4o-mini: auth 401" in records[0].getMessage()
    assert KEY not in caplog.text


def test_a_streamed_structured_answer_is_parsed_on_the_final_chunk(tmp_path):
    from llmring_providers import mock

    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    with Ring(lockfile(tmp_path, {"a": ["mock:echo"]})) as ring:
        chunks = list(ring.stream("a", "make a person", response_format=fmt))
    assert isinstance(chunks[-1].parsed, dict) and isinstance(chunks[-1].parsed["name"], str)
    assert all(c.parsed is None for c in chunks[:-1])
    mock.script("badjson", ['{"nom": "x"}'])
    try:
        got = []
        with Ring(lockfile(tmp_path, {"b": ["mock:badjson"]})) as ring, \
                pytest.raises(StreamInterruptedError) as info:
            for c in ring.stream("b", "make a person", response_format=fmt):
                got.append(c.delta)
    finally:
        mock.clear_scripts()
    assert info.value.kind == "invalid_output" and info.value.partial == '{"nom": "x"}' == "".join(got)


def test_cancelling_an_async_chat_leaves_the_ring_usable(tmp_path, openai_env):
    server = openai_env
    arrived, release = threading.Event(), threading.Event()

    def held(_req):
        arrived.set()
        release.wait(30)
        return openai_ok("late")

    server.add("POST", "/v1/chat/completions", held, openai_ok("next"))
    path = lockfile(tmp_path, {"a": ["openai:gpt-4o-mini"]})

    async def main():
        async with LLMRing(lockfile_path=path) as service:
            task = asyncio.ensure_future(service.chat("a", "slow"))
            await asyncio.get_running_loop().run_in_executor(None, arrived.wait, 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()  # the abandoned call finishes in its thread
            return await service.chat("a", "again")

    assert asyncio.run(main()).content == "next"
    assert len(server.requests) == 2


@pytest.mark.parametrize("fmt, fragment", [
    ({"type": "xml"}, "must be text, json_object or json_schema"),
    ("json", "must be text, json_object or json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "the schema is missing"),
])
def test_a_malformed_response_format_is_refused_before_any_call(tmp_path, fmt, fragment):
    from llmring.exceptions import ConfigurationError

    with Ring(lockfile(tmp_path, {"a": ["mock:echo"]})) as ring, pytest.raises(ConfigurationError, match=fragment):
        ring.chat("a", "x", response_format=fmt)
