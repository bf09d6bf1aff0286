"""A hostile server cannot hold a call past its deadline, make it read without bound, or crash
it: each fault of tests/faults.py through a real provider, with `mock:echo` as the fallback.

Times are checked only against generous bounds far below the failure mode (the slow drip took
21 s before the deadline held; these allow 10 s for a 3 s deadline)."""

import os
import threading
import time

import pytest
from faults import (
    FaultServer,
    answer,
    giant_body,
    giant_line,
    gzip_bomb,
    keepalive_stream,
    nested_json,
    redirect,
    slow_drip,
    stalled_body,
    unchunked_sse,
)

from llmring import Ring
from llmring.exceptions import AllModelsFailedError, ProviderError
from llmring.failover import RetryPolicy
from llmring.provider import ProviderSettings
from llmring.types import LLMRequest, Message
from llmring_providers.anthropic import AnthropicProvider
from llmring_providers.google import GoogleProvider
from llmring_providers.openai import OpenAIProvider

FAST = RetryPolicy(base_delay=0.001, max_delay=0.01)
CHAT = "/v1/chat/completions"
OK = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "slow answer"}, "finish_reason": "stop"}]}
GENEROUS = 10.0  # seconds; every failure mode here took 15 s or more (or never ended)


@pytest.fixture
def faults():
    with FaultServer() as s:
        yield s


def ring_for(tmp_path, faults, models=("x:slow", "mock:echo")):
    refs = ", ".join(f'"{m}"' for m in models)
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\nname = "default"\n\n'
                    f'[[profiles.default.bindings]]\nalias = "a"\nmodels = [{refs}]\n\n'
                    f'[providers.x]\ntype = "openai"\nbase_url = "{faults.url}/v1"\n')
    return Ring(path, retry=FAST)


def timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def failed(response):
    return [a for a in response.attempts if not a.ok]


# -- the deadline ----------------------------------------------------------------------------

def test_a_server_dripping_its_status_line_cannot_hold_chat_past_its_deadline(tmp_path, faults):
    # Issue 9, item 4: one byte every 0.2 s never trips a socket timeout; it took 21 s and the
    # fallback was never tried.
    faults.route(CHAT, slow_drip(OK, every=0.2))
    with ring_for(tmp_path, faults) as ring:
        r, elapsed = timed(lambda: ring.chat("a", "hi", timeout=3))
    assert r.content == "hi" and r.model == "mock:echo"
    assert {a.kind for a in failed(r)} == {"timeout"}
    assert "deadline passed" in failed(r)[0].message
    assert elapsed < GENEROUS


def test_a_stream_of_keepalive_comments_only_ends_at_the_deadline_and_fails_over(tmp_path, faults):
    faults.route(CHAT, keepalive_stream(every=0.3))
    with ring_for(tmp_path, faults) as ring:
        chunks, elapsed = timed(lambda: list(ring.stream("a", "hi", timeout=3)))
    assert "".join(c.delta for c in chunks) == "hi"
    assert chunks[-1].model == "mock:echo"
    assert {a.kind for a in failed(chunks[-1])} == {"timeout"}
    assert elapsed < GENEROUS


def test_without_a_deadline_the_read_timeout_bounds_a_stream_up_to_its_first_chunk(tmp_path, faults, monkeypatch):
    # Issue 9, item 4: keep-alive comments reset every socket timeout, so with only
    # LLMRING_PROVIDER_TIMEOUT_S set (the CLI's case) such a stream ran on and never failed over.
    monkeypatch.setenv("LLMRING_PROVIDER_TIMEOUT_S", "1")
    faults.route(CHAT, keepalive_stream(every=0.3))
    with ring_for(tmp_path, faults) as ring:
        chunks, elapsed = timed(lambda: list(ring.stream("a", "hi")))
    assert chunks[-1].model == "mock:echo"
    assert {a.kind for a in failed(chunks[-1])} == {"timeout"}
    assert elapsed < GENEROUS


def test_a_stream_past_its_first_chunk_may_use_the_rest_of_the_deadline(tmp_path, faults):
    # The primary's try gets half the deadline (3 of 6 s) to produce its first chunk; after
    # that it cannot fail over, so cutting it at 3 s would only lose the answer.
    gate = threading.Event()
    events = [b'data: {"choices": [{"index": 0, "delta": {"content": "first"}}]}\n\n',
              b'data: {"choices": [{"index": 0, "delta": {"content": " second"}, "finish_reason": "stop"}]}\n\n',
              b"data: [DONE]\n\n"]
    faults.route(CHAT, unchunked_sse(events, every=0.01, gate=gate))
    received = []
    with ring_for(tmp_path, faults) as ring:
        for chunk in ring.stream("a", "hi", timeout=6):
            received.append(chunk.delta)
            if len(received) == 1:
                threading.Event().wait(3.5)  # past the first try's budget, within the deadline
                gate.set()
    assert "".join(received) == "first second"
    assert chunk.model == "x:slow"


def test_an_unchunked_keepalive_stream_ends_at_the_deadline_too(tmp_path, faults):
    # Without chunking the watchdog's shutdown looks like the body's end: still a timeout.
    faults.route(CHAT, keepalive_stream(every=0.3, chunked=False))
    with ring_for(tmp_path, faults, ["x:slow"]) as ring, pytest.raises(AllModelsFailedError) as info:
        list(ring.stream("a", "hi", timeout=2))
    assert info.value.kind == "timeout"


def test_a_body_that_stalls_halfway_is_cut_at_the_deadline(tmp_path, faults):
    faults.route(CHAT, stalled_body())
    with ring_for(tmp_path, faults) as ring:
        r, elapsed = timed(lambda: ring.chat("a", "hi", timeout=3))
    assert r.model == "mock:echo"
    assert {a.kind for a in failed(r)} == {"timeout"}
    assert elapsed < GENEROUS


def request():
    return LLMRequest(messages=[Message(role="user", content="hi")])


def test_an_anthropic_stream_of_pings_only_ends_at_the_try_budget(faults):
    from llmring.deadline import TryTimeout

    faults.route("/v1/messages", keepalive_stream(every=0.3))
    p = AnthropicProvider(ProviderSettings("anthropic", base_url=faults.url, api_key_env="K",
                                           env={"K": "sk-ant-test-key-0123456789"}))
    with pytest.raises(ProviderError) as info:
        list(p.stream("claude", request(), TryTimeout(5, 30, budget=1.5)))
    assert info.value.kind == "timeout" and "deadline passed" in str(info.value)


def test_a_plain_tuple_timeout_keeps_working_without_a_deadline(faults):
    faults.route(CHAT, unchunked_sse([b'data: {"choices": [{"index": 0, "delta": {"content": "ok"}}]}\n\n',
                                      b"data: [DONE]\n\n"], every=0.05))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    assert "".join(c.delta for c in p.stream("m", request(), (5, 5))) == "ok"


@pytest.fixture
def tls_faults(tmp_path, monkeypatch):
    """A FaultServer speaking https with a throwaway self-signed certificate the client trusts."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # requests prefers it to a session's own `verify`
    with FaultServer(tls=context) as s:
        yield s


@pytest.mark.parametrize("case", ["drip", "keepalive"])
def test_the_deadline_holds_over_https(tls_faults, case):
    # Real providers speak TLS: the watchdog must wake a reader blocked inside an SSL socket.
    from llmring.deadline import TryTimeout

    tls_faults.route(CHAT, slow_drip(OK, every=0.2) if case == "drip" else keepalive_stream(every=0.3))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{tls_faults.url}/v1"))
    with pytest.raises(ProviderError) as info:
        if case == "drip":
            p.chat("m", request(), TryTimeout(5, 30, budget=1.5))
        else:
            list(p.stream("m", request(), TryTimeout(5, 30, budget=1.5)))
    assert info.value.kind == "timeout" and "deadline passed" in str(info.value)


# -- sizes -----------------------------------------------------------------------------------

def test_an_answer_larger_than_the_cap_is_refused_without_reading_it(tmp_path, faults):
    faults.route(CHAT, giant_body(100 << 20, prefix=b'{"choices": [{"message": {"content": "'))
    with ring_for(tmp_path, faults) as ring:
        r = ring.chat("a", "hi", timeout=30)
    assert r.model == "mock:echo"
    (attempt,) = failed(r)
    assert attempt.kind == "invalid_output" and "100 MiB" in attempt.message


def test_an_answer_with_no_length_is_read_only_up_to_the_cap(faults):
    faults.route(CHAT, giant_line(8 << 20, prefix=b"{"))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    p.max_answer_bytes = 1 << 20
    with pytest.raises(ProviderError) as info:
        p.chat("m", request(), (5, 30))
    assert info.value.kind == "invalid_output" and "more than 1 MiB" in str(info.value)


def test_a_giant_error_body_is_read_only_up_to_its_small_cap(tmp_path, faults):
    # Issue 9, item 6: a 400 MB error body cost 1.27 GB although 300 characters of it were used.
    faults.route(CHAT, giant_body(400 << 20, status=502))
    with ring_for(tmp_path, faults) as ring:
        r, elapsed = timed(lambda: ring.chat("a", "hi", timeout=30))
    assert r.model == "mock:echo"
    kinds = {a.kind for a in failed(r)}
    assert kinds == {"server"} and "error body of 400 MiB" in failed(r)[0].message
    assert elapsed < GENEROUS


@pytest.mark.parametrize("chunked", [False, True])
def test_a_compressed_answer_is_capped_by_what_it_decompresses_to(faults, chunked):
    faults.route(CHAT, gzip_bomb(200 << 20, chunked=chunked))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    with pytest.raises(ProviderError) as info:
        p.chat("m", request(), (5, 30))
    assert info.value.kind == "invalid_output" and "more than 64 MiB" in str(info.value)


def test_a_compressed_error_body_is_read_only_up_to_its_cap(faults):
    faults.route(CHAT, gzip_bomb(200 << 20, status=503))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    with pytest.raises(ProviderError) as info:
        p.chat("m", request(), (5, 30))
    assert info.value.kind == "server" and "HTTP 503 with an error body of unknown size" in str(info.value)


def test_a_giant_single_line_is_an_error_not_a_hang(faults):
    faults.route(CHAT, giant_line(40 << 20))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    with pytest.raises(ProviderError) as info:
        list(p.stream("m", request(), (5, 30)))
    assert info.value.kind == "invalid_output" and "16 MiB" in str(info.value)


def test_a_long_unchunked_line_is_split_in_linear_time(faults):
    # Issue 9, item 7: each 1 KiB read re-copied the pending line: 8 MB took 15.6 s, 12 MB ~35 s.
    faults.route(CHAT, giant_line(12 << 20))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        list(p.stream("m", request(), (5, 60)))
    assert "not JSON" in str(info.value)  # read whole, then found to be garbage
    assert time.monotonic() - started < GENEROUS


def test_an_unchunked_stream_hands_each_event_over_as_soon_as_it_arrives(faults):
    # Issue 9, item 8: events waited for 1 KiB to build up (the first came at 4.7 s, not 0.3 s).
    # The server sends nothing after the first event until the client has handed it over.
    gate = threading.Event()
    events = [b'data: {"choices": [{"index": 0, "delta": {"content": "first"}}]}\n\n',
              b'data: {"choices": [{"index": 0, "delta": {"content": " second"}, "finish_reason": "stop"}]}\n\n',
              b"data: [DONE]\n\n"]
    faults.route(CHAT, unchunked_sse(events, every=0.01, gate=gate))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    from llmring.deadline import TryTimeout

    received = []
    # The read timeout is what ends a client that waits for more: the server sends nothing more.
    for chunk in p.stream("m", request(), TryTimeout(5, 5, budget=20)):
        received.append(chunk.delta)
        gate.set()
        if len(received) == 1:
            assert received == ["first"]
    assert "".join(received) == "first second"


# -- shapes and requests ---------------------------------------------------------------------

def test_a_deeply_nested_answer_fails_cleanly_and_fails_over(tmp_path, faults):
    faults.route(CHAT, nested_json())
    with ring_for(tmp_path, faults) as ring:
        r = ring.chat("a", "hi", timeout=30)
    assert r.model == "mock:echo"
    # Like any body that is not a JSON object: not a parser crash ("RecursionError") blamed on the plugin.
    assert {a.kind for a in failed(r)} == {"server"}
    assert all("not a JSON object" in a.message for a in failed(r))


def test_deeply_nested_tool_arguments_are_kept_raw_and_a_nested_structured_answer_fails_over(tmp_path, faults):
    # The body parses (it is a JSON object); the nesting is inside strings the model wrote.
    nested = "[" * 200_000 + "]" * 200_000
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": nested}}
    faults.route(CHAT, answer({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [call]}}]}))
    tools = [{"name": "f", "parameters": {"type": "object"}}]
    with ring_for(tmp_path, faults, ["x:m"]) as ring:
        r = ring.chat("a", "hi", tools=tools)
    assert r.tool_calls[0].raw_arguments == nested and r.tool_calls[0].arguments == {}
    faults.route(CHAT, answer({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": nested}}]}))
    with ring_for(tmp_path, faults) as ring:
        r = ring.chat("a", "hi", response_format={"type": "json_object"})
    assert r.model == "mock:echo"
    assert [a.kind for a in failed(r)] == ["invalid_output"] and "nested too deeply" in failed(r)[0].message


def test_a_deeply_nested_stream_event_is_invalid_output(faults):
    depth = 200_000
    faults.route("/v1beta/models/g:streamGenerateContent",
                 unchunked_sse([b"data: " + b"[" * depth + b"]" * depth + b"\n\n"], every=0.01))
    p = GoogleProvider(ProviderSettings("google", base_url=f"{faults.url}/v1beta", api_key_env="G",
                                        env={"G": "AIza-test-key-0123456789"}))
    with pytest.raises(ProviderError) as info:
        list(p.stream("g", request(), (5, 30)))
    assert info.value.kind == "invalid_output" and "nested too deeply" in str(info.value)


def test_a_redirect_is_not_followed_and_names_where_it_points(tmp_path, faults, monkeypatch):
    # requests would re-send the key headers (Anthropic's x-api-key, Gemini's x-goog-api-key) to
    # whatever host a 3xx names.
    monkeypatch.setenv("X_KEY", "sk-x-secret-0123456789")
    faults.route(CHAT, redirect(f"{faults.url}/stolen", status=307))
    faults.route("/stolen", nested_json())
    path = tmp_path / "llmring.lock"
    with ring_for(tmp_path, faults) as ring:
        path.write_text(path.read_text() + 'api_key_env = "X_KEY"\n')
        r = ring.chat("a", "hi", timeout=30)
    assert r.model == "mock:echo"
    (attempt,) = failed(r)
    assert attempt.kind == "not_configured" and f"{faults.url}/stolen" in attempt.message
    assert faults.hits == {CHAT: 1}


def test_a_value_json_cannot_carry_is_the_callers_bad_request_before_any_network_call(faults):
    faults.route(CHAT, nested_json())
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    with pytest.raises(ProviderError) as info:
        p.chat("m", LLMRequest(messages=[Message(role="user", content="hi")], extra_params={"seed": float("nan")}),
               (5, 5))
    assert info.value.kind == "bad_request" and "JSON" in str(info.value)
    assert faults.hits == {}


def _drip_in_child(url, results):
    from llmring.deadline import TryTimeout

    p = OpenAIProvider(ProviderSettings("x", base_url=f"{url}/v1"))
    try:
        p.chat("m", request(), TryTimeout(5, 5, budget=1))
        results.put("answered")
    except ProviderError as e:
        results.put(e.kind)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_deadline_holds_in_a_forked_child(faults):
    # The parent's watchdog thread does not survive fork(); the child must start its own.
    import multiprocessing

    # Without its own watchdog the child notices the deadline only once the dripped headers are
    # in, after some 30 s.
    faults.route(CHAT, slow_drip(OK, every=0.4))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{faults.url}/v1"))
    from llmring.deadline import TryTimeout

    with pytest.raises(ProviderError):  # the parent's watchdog is running now
        p.chat("m", request(), TryTimeout(5, 5, budget=0.5))
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_drip_in_child, args=(faults.url, results))
    child.start()
    try:
        assert results.get(timeout=GENEROUS) == "timeout"
    finally:
        child.join(GENEROUS)
        if child.is_alive():
            child.kill()


@pytest.mark.parametrize("value", ["inf", "nan", "1e999", "Mon, 99 Xyz 99999 99:99:99 GMT"])
def test_a_retry_after_header_that_is_no_finite_wait_is_ignored(value):
    import requests

    from llmring.provider import retry_after

    response = requests.Response()
    response.headers["Retry-After"] = value
    assert retry_after(response) is None
    response.headers = requests.structures.CaseInsensitiveDict({"retry-after-ms": value})
    assert retry_after(response) is None


def test_a_finished_calls_deadline_never_cuts_the_next_call_on_its_pooled_connection(server):
    from httpfake import Reply

    from llmring.deadline import TryTimeout

    server.add("POST", "/v1/chat/completions", Reply(json=OK), Reply(json=OK, delay=1.0))
    p = OpenAIProvider(ProviderSettings("x", base_url=f"{server.url}/v1"))
    assert p.chat("m", request(), TryTimeout(5, 5, budget=0.3)).content == "slow answer"
    assert p.chat("m", request(), (5, 5)).content == "slow answer"  # runs past the first call's deadline
    assert server.connections == 1


@pytest.mark.parametrize(("env", "says"), [
    ({"OPENAI_API_KEY": "sk-copied-with-a-newline-0123\n"}, "check OPENAI_API_KEY"),
    ({"OPENAI_API_KEY": "sk-fine-key-0123456789", "OPENAI_BASE_URL": "127.0.0.1:9/v1"}, "base_url"),
    ({"OPENAI_API_KEY": "sk-fine-key-0123456789", "OPENAI_BASE_URL": "http://[::1/v1"}, "base_url"),
])
def test_a_malformed_key_or_url_is_a_configuration_error_not_a_connection_failure(env, says):
    # "connection failed" was retried three times and counted against the model's health.
    p = OpenAIProvider(ProviderSettings("openai", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **env}))
    with pytest.raises(ProviderError) as info:
        p.chat("m", request(), (1, 1))
    assert info.value.kind == "not_configured" and says in str(info.value)
    assert "sk-copied" not in str(info.value)
