"""OpenTelemetry spans of llmring calls (llmring/otel.py), read back with the SDK's in-memory
exporter: real calls through a Ring to a real local HTTP server and to the mock provider."""

import asyncio
import json
import subprocess
import sys

import pytest
from httpfake import Reply, openai_answer, sse
from lockfiles import one_alias
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from llmring import LLMRing, Ring
from llmring.exceptions import AllModelsFailedError, StreamInterruptedError
from llmring.failover import CircuitBreaker, RetryPolicy

KEY = "sk-test-very-secret-key-123456"
APP = trace.get_tracer("the-application")


def _reset_global_provider():
    # The API lets a process set its tracer provider once; opentelemetry's own test utilities
    # undo it this way, so the rest of the suite runs without tracing.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture(scope="module")
def exporter():
    _reset_global_provider()
    provider = TracerProvider()
    found = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(found))
    trace.set_tracer_provider(provider)
    yield found
    provider.shutdown()
    _reset_global_provider()


@pytest.fixture
def spans(exporter):
    exporter.clear()
    return exporter


@pytest.fixture
def openai_env(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return server


def calls(exporter):
    """The call spans, oldest first, each with its attempt spans (in order)."""
    found = exporter.get_finished_spans()
    out = []
    for span in sorted((s for s in found if s.name.startswith("chat ")), key=lambda s: s.start_time):
        children = [s for s in found if s.parent is not None and s.parent.span_id == span.context.span_id]
        out.append((span, sorted(children, key=lambda s: s.start_time)))
    return out


def one_call(exporter):
    (found,) = calls(exporter)
    return found


def test_a_chat_is_one_span_with_the_genai_attributes_under_the_applications_span(tmp_path, spans, openai_env):
    openai_env.add("POST", "/v1/chat/completions", openai_answer("hi", prompt_tokens=7, completion_tokens=3))
    lockfile = one_alias(tmp_path, ["openai:gpt-4o-mini"], alias="summarizer")
    with Ring(lockfile) as ring, APP.start_as_current_span("handle request") as outer:
        r = ring.chat("summarizer", "Hello")
    call, (attempt,) = one_call(spans)
    assert (call.name, call.kind, call.status.status_code) == ("chat summarizer", SpanKind.CLIENT, StatusCode.UNSET)
    assert call.parent.span_id == outer.get_span_context().span_id
    assert call.context.trace_id == outer.get_span_context().trace_id
    a = dict(call.attributes)
    assert a.pop("llmring.cost_usd") == pytest.approx(r.cost) and r.cost > 0
    assert a.pop("llmring.lockfile") == str(lockfile)
    assert a == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": "summarizer", "gen_ai.response.model": "gpt-4o-mini",
                 "gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 3,
                 "gen_ai.response.finish_reasons": ("stop",), "llmring.alias": "summarizer",
                 "llmring.profile": "default", "llmring.model": "openai:gpt-4o-mini", "llmring.stream": False,
                 "llmring.failovers": 0}  # and no prompt or answer text: LLMRING_USAGE_TEXT is not on
    assert attempt.name == "attempt openai:gpt-4o-mini" and attempt.status.status_code == StatusCode.UNSET
    assert dict(attempt.attributes) == {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                                        "llmring.model": "openai:gpt-4o-mini", "llmring.attempt.skipped": False}
    # timed from the record: the call lasts what the response says, the try lies inside it
    assert (call.end_time - call.start_time) / 1e9 == pytest.approx(r.latency, abs=1e-6)
    assert (attempt.end_time - attempt.start_time) / 1e9 == pytest.approx(r.attempts[0].elapsed, abs=1e-6)
    assert call.start_time <= attempt.start_time <= attempt.end_time <= call.end_time


def test_a_failover_has_one_attempt_span_per_try_the_first_failed(tmp_path, spans, openai_env):
    openai_env.add("POST", "/v1/chat/completions",
                   Reply(status=401, json={"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}))
    with Ring(one_alias(tmp_path, ["openai:gpt-4o-mini", "mock:echo"])) as ring:
        r = ring.chat("a", "Hello")
    call, (first, second) = one_call(spans)
    assert r.model == "mock:echo" and call.status.status_code == StatusCode.UNSET
    assert (call.attributes["llmring.failovers"], call.attributes["gen_ai.response.model"],
            call.attributes["gen_ai.provider.name"]) == (1, "echo", "mock")
    assert first.status.status_code == StatusCode.ERROR and "Incorrect API key" in first.status.description
    assert (first.attributes["llmring.attempt.kind"], first.attributes["error.type"],
            first.attributes["http.response.status_code"]) == ("auth", "auth", 401)
    assert (second.name, second.status.status_code) == ("attempt mock:echo", StatusCode.UNSET)
    assert "llmring.attempt.kind" not in second.attributes
    assert first.end_time <= second.start_time


def test_a_call_no_model_answered_is_an_error_span(tmp_path, spans, openai_env):
    openai_env.add("POST", "/v1/chat/completions",
                   Reply(status=401, json={"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}))
    with Ring(one_alias(tmp_path, ["openai:gpt-4o-mini", "mock:fail-auth"])) as ring, \
            pytest.raises(AllModelsFailedError) as info:
        ring.chat("a", "Hello")
    call, attempts = one_call(spans)
    assert call.status.status_code == StatusCode.ERROR
    assert call.attributes["error.type"] == info.value.kind == "auth"
    assert "gen_ai.response.model" not in call.attributes and "gen_ai.usage.input_tokens" not in call.attributes
    assert call.attributes["gen_ai.provider.name"] == "openai"  # the first model's, as none answered
    assert [s.attributes["llmring.model"] for s in attempts] == ["openai:gpt-4o-mini", "mock:fail-auth"]
    assert all(s.status.status_code == StatusCode.ERROR for s in attempts)


def test_a_skipped_model_has_a_marked_attempt_span(tmp_path, spans):
    breaker = CircuitBreaker(threshold=1)  # one failure rests the model: the next call skips it
    with Ring(one_alias(tmp_path, ["mock:fail-overloaded", "mock:echo"]), breaker=breaker,
              retry=RetryPolicy(max_retries=0)) as ring:
        ring.chat("a", "one")
        spans.clear()
        ring.chat("a", "two")
    _call, (skipped, answered) = one_call(spans)
    assert (skipped.attributes["llmring.attempt.skipped"], skipped.attributes["llmring.attempt.kind"]) == \
        (True, "overloaded")
    assert skipped.status.status_code == StatusCode.UNSET and "error.type" not in skipped.attributes
    assert answered.attributes["llmring.attempt.skipped"] is False


def _stream_reply(*texts, broken=False):
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
    frames = sse(*({**chunk, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
                   for t in texts))
    if broken:
        return Reply(chunks=frames + ['data: {"error": {"message": "it broke", "type": "server_error"}}\n\n'])
    return Reply(chunks=frames + sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 4, "completion_tokens": 2}}, "[DONE]"))


def test_a_stream_span_marks_its_first_chunk(tmp_path, spans, openai_env):
    openai_env.add("POST", "/v1/chat/completions", _stream_reply("Hel", "lo"))
    with Ring(one_alias(tmp_path, ["openai:gpt-4o-mini"])) as ring:
        text = "".join(c.delta for c in ring.stream("a", "Hi"))
    call, (attempt,) = one_call(spans)
    assert text == "Hello" and call.attributes["llmring.stream"] is True
    assert (call.attributes["gen_ai.usage.input_tokens"], call.attributes["gen_ai.usage.output_tokens"]) == (4, 2)
    (event,) = call.events
    assert event.name == "llmring.first_chunk"
    assert attempt.end_time <= event.timestamp + 1000 and event.timestamp <= call.end_time
    assert (event.timestamp - call.start_time) / 1e9 == pytest.approx(call.attributes["llmring.time_to_first_chunk"],
                                                                     abs=1e-6)


def test_a_stream_broken_midway_is_an_error_span(tmp_path, spans, openai_env):
    openai_env.add("POST", "/v1/chat/completions", _stream_reply("Hel", broken=True))
    with Ring(one_alias(tmp_path, ["openai:gpt-4o-mini"])) as ring, pytest.raises(StreamInterruptedError):
        for _ in ring.stream("a", "Hi"):
            pass
    call, _ = one_call(spans)
    assert call.status.status_code == StatusCode.ERROR and call.attributes["error.type"] == "server"


def test_prompt_and_answer_text_only_when_opted_in(tmp_path, spans, monkeypatch):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bonjour à tous"}]
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        ring.chat("a", messages)
        monkeypatch.setenv("LLMRING_USAGE_TEXT", "on")
        ring.chat("a", messages)
    (off, _), (on, _) = calls(spans)
    assert not [k for k in off.attributes if k.startswith(("gen_ai.input", "gen_ai.output"))]
    assert json.loads(on.attributes["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Bonjour à tous"}]}]
    assert json.loads(on.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Bonjour à tous"}], "finish_reason": "stop"}]


def test_tool_calls_and_tool_results_take_the_conventions_shape(tmp_path, spans, monkeypatch):
    monkeypatch.setenv("LLMRING_USAGE_TEXT", "on")
    messages = [{"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "t1", "name": "weather", "arguments": {"city": "Oslo"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "cold"}]
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        ring.chat("a", messages)
    call, _ = one_call(spans)
    assert json.loads(call.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1", "name": "weather",
                                         "arguments": {"city": "Oslo"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": "cold"}]}]


def test_a_call_by_model_reference_is_named_after_the_model(tmp_path, spans):
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        ring.chat("mock:echo", "Hi")
    call, _ = one_call(spans)
    assert call.name == "chat echo" and "llmring.alias" not in call.attributes


def test_map_and_async_calls_are_children_of_the_callers_span(tmp_path, spans):
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring, APP.start_as_current_span("batch") as outer:
        assert [r.content for r in ring.map("a", ["x", "y", "z"], concurrency=3)] == ["x", "y", "z"]

    async def main():
        async with LLMRing(lockfile_path=tmp_path / "llmring.lock") as service:
            with APP.start_as_current_span("task") as task:
                await service.chat("a", "w")
                assert "".join([c.delta async for c in service.stream("a", "v")]) == "v"
                return task

    task = asyncio.run(main())
    parents = [span.parent.span_id for span, _ in calls(spans)]
    ours = outer.get_span_context().span_id, task.get_span_context().span_id
    assert parents == [ours[0]] * 3 + [ours[1]] * 2


def test_provider_names_follow_the_conventions(monkeypatch):
    """Each provider names itself (Provider.telemetry_name); the core knows no vendor's name."""
    import llmring.plugins
    from llmring.otel import provider_name
    from llmring.plugins import PluginRegistry, hookimpl
    from llmring.provider import Provider

    class Bedrock(Provider):
        telemetry_name = "aws.bedrock"

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register("otel-test-bedrock", Bedrock)

    registry = PluginRegistry()  # this test's own: other tests see no extra provider
    registry.register(Plugin(), name="otel-test-plugin")
    monkeypatch.setattr(llmring.plugins, "registry", registry)
    assert [provider_name(p) for p in ("openai", "anthropic", "google", "ollama", "otel-test-bedrock",
                                       "my-endpoint")] == [
        "openai", "anthropic", "gcp.gemini", "ollama", "aws.bedrock", "my-endpoint"]


def _run(code, tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_without_a_tracer_provider_nothing_is_imported_or_made(tmp_path):
    # opentelemetry is installed here, but the application set no tracer provider: the sink is
    # there and returns at once, and not even the API is imported.
    out = _run("import sys, llmring\n"
               "before = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
               "llmring.Ring().chat('a', 'hi')\n"
               "from llmring import observe\n"
               "print(before, sorted(m for m in sys.modules if m.startswith('opentelemetry')),"
               " [name for name, _ in observe._sinks])", tmp_path)
    assert out == "[] [] ['llmring.usage:sink', 'llmring.otel:sink']"  # the usage log is on by default


def test_with_the_apis_no_op_provider_no_tracer_is_asked_for(tmp_path):
    out = _run("from opentelemetry import trace\n"
               "trace.set_tracer_provider(trace.NoOpTracerProvider())\n"
               "import llmring\nfrom llmring import observe\n"
               "llmring.Ring().chat('a', 'hi')\n"
               "print(dict(observe._sinks)['llmring.otel:sink']._tracer)", tmp_path)
    assert out == "None"


def test_without_opentelemetry_installed_there_is_no_sink(tmp_path):
    out = _run("import sys\nsys.modules['opentelemetry'] = None  # as if it were not installed\n"
               "import llmring\nfrom llmring import observe, otel\n"
               "llmring.Ring().chat('a', 'hi')\n"
               "print(otel.sink(), [name for name, _ in observe._sinks if 'otel' in name])", tmp_path)
    assert out == "None []"


def test_a_provider_set_after_the_first_call_gets_the_next_calls(tmp_path):
    out = _run("import llmring\n"
               "from opentelemetry import trace\n"
               "from opentelemetry.sdk.trace import TracerProvider\n"
               "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
               "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
               "ring = llmring.Ring()\n"
               "ring.chat('a', 'before')\n"
               "found = InMemorySpanExporter()\n"
               "provider = TracerProvider()\n"
               "provider.add_span_processor(SimpleSpanProcessor(found))\n"
               "trace.set_tracer_provider(provider)\n"
               "ring.chat('a', 'after')\n"
               "print(sorted(s.name for s in found.get_finished_spans()))", tmp_path)
    assert out == "['attempt mock:echo', 'chat a']"


def test_a_sampled_out_call_makes_no_spans(tmp_path):
    out = _run("import llmring\n"
               "from opentelemetry import trace\n"
               "from opentelemetry.sdk.trace import TracerProvider\n"
               "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
               "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
               "from opentelemetry.sdk.trace.sampling import ALWAYS_OFF\n"
               "found = InMemorySpanExporter()\n"
               "provider = TracerProvider(sampler=ALWAYS_OFF)\n"
               "provider.add_span_processor(SimpleSpanProcessor(found))\n"
               "trace.set_tracer_provider(provider)\n"
               "llmring.Ring().chat('a', 'hi')\n"
               "print(found.get_finished_spans())", tmp_path)
    assert out == "()"
