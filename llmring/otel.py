"""OpenTelemetry traces of llmring calls (`pip install "llmring[otel]"`), a built-in observer.

Each finished call becomes one span named after the OpenTelemetry GenAI semantic conventions
(`chat {alias or model}`) with one child span per attempt, made from the call's record after
it finished, timed from the record and parented to the application's span current at that
moment. Spans are made only when the application set a tracer provider: without
opentelemetry installed `sink()` returns None, and with it installed but no provider set (the
API's default no-op) a call costs a dictionary look-up and an isinstance check. Prompt and
answer text are added (as the conventions' opt-in `gen_ai.input.messages` and
`gen_ai.output.messages`) only when the record carries them, i.e. with LLMRING_USAGE_TEXT=on."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any, Callable, Optional

SCOPE = "llmring"


def sink() -> Optional[Callable[[Any], None]]:
    """The span maker, or None when opentelemetry is not installed (nothing is imported)."""
    if importlib.util.find_spec("opentelemetry") is None:
        return None
    return _Tracing()


class _Tracing:
    """Turns records into spans while the application has a tracer provider set."""

    def __init__(self) -> None:
        self._provider: Any = None
        self._tracer: Any = None

    def __call__(self, record: Any) -> None:
        # An application that set a tracer provider has imported opentelemetry.trace already:
        # until then, nothing is imported here and nothing is made.
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return
        provider = trace.get_tracer_provider()
        if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return
        if provider is not self._provider:  # the tracer of the provider set last
            from . import __version__

            self._provider, self._tracer = provider, provider.get_tracer(SCOPE, __version__)
        spans(self._tracer, trace, record)


def spans(tracer: Any, trace: Any, record: Any) -> None:
    """One span for the call and one child per attempt, under the current span."""
    start = _ns(record.started_at)
    call = tracer.start_span(f"chat {_requested(record)}", kind=trace.SpanKind.CLIENT, start_time=start,
                             attributes=_call_attributes(record))
    if not call.is_recording():  # sampled out: its attempts would be orphans
        call.end(end_time=_ns(record.started_at + record.elapsed))
        return
    if record.first_chunk is not None:
        call.add_event("llmring.first_chunk", timestamp=_ns(record.started_at + record.first_chunk))
    if record.error_kind:
        call.set_status(trace.Status(trace.StatusCode.ERROR, f"{record.error_kind}"))
    inside = trace.set_span_in_context(call)
    for attempt in record.attempts:
        _attempt_span(tracer, trace, inside, record.started_at, attempt)
    call.end(end_time=_ns(record.started_at + record.elapsed))


def _attempt_span(tracer: Any, trace: Any, parent: Any, started_at: float, attempt: Any) -> None:
    prefix, _, model = attempt.model.partition(":")
    attributes = {"gen_ai.provider.name": provider_name(prefix), "gen_ai.request.model": model,
                  "llmring.model": attempt.model, "llmring.attempt.skipped": attempt.skipped}
    if attempt.kind is not None:
        attributes["llmring.attempt.kind"] = attempt.kind
        if not attempt.skipped:
            attributes["error.type"] = attempt.kind
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
    begun = started_at + attempt.at
    span = tracer.start_span(f"attempt {attempt.model}", context=parent, start_time=_ns(begun),
                             attributes=attributes)
    if attempt.kind is not None and not attempt.skipped:
        span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.message or attempt.kind))
    span.end(end_time=_ns(begun + attempt.elapsed))


def _call_attributes(record: Any) -> dict:
    prefix, _, model = _model(record).partition(":")
    values = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(prefix) if prefix else None,
        "gen_ai.request.model": _requested(record),
        "gen_ai.response.model": model if record.model else None,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "gen_ai.response.finish_reasons": (record.finish_reason,) if record.finish_reason else None,
        "error.type": record.error_kind,
        "llmring.alias": record.alias,
        "llmring.profile": record.profile,
        "llmring.model": record.model,
        "llmring.lockfile": record.lockfile,
        "llmring.stream": record.stream,
        "llmring.failovers": record.failovers,
        "llmring.cost_usd": record.cost,
        "llmring.cost_note": record.cost_note,
        "llmring.time_to_first_chunk": record.first_chunk,
        "gen_ai.input.messages": _input_messages(record.prompt) if record.prompt is not None else None,
        "gen_ai.output.messages": _output_messages(record) if record.answer is not None else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def provider_name(prefix: str) -> str:
    """The conventions' `gen_ai.provider.name` for a prefix: what its provider says
    (`Provider.telemetry_name`), else the prefix (a [providers.NAME] endpoint is named so too)."""
    from .plugins import registry

    registry.load()
    info = registry.providers.get(prefix)
    return (getattr(info.factory, "telemetry_name", "") if info else "") or prefix


def _requested(record: Any) -> str:
    """What the application asked for: the alias, else the model of a provider:model call."""
    if record.alias:
        return record.alias
    first = _model(record)
    return first.partition(":")[2] or first


def _model(record: Any) -> str:
    """The model that answered, else the first one tried ("" when none was)."""
    return record.model or (record.attempts[0].model if record.attempts else "")


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _input_messages(prompt: str) -> str:
    """The record's messages (JSON of llmring Messages) in the conventions' shape."""
    return json.dumps([{"role": m["role"], "parts": _parts(m)} for m in json.loads(prompt)], ensure_ascii=False)


def _output_messages(record: Any) -> str:
    message = {"role": "assistant", "parts": [{"type": "text", "content": record.answer}]}
    if record.finish_reason:
        message["finish_reason"] = record.finish_reason
    return json.dumps([message], ensure_ascii=False)


def _parts(message: dict) -> list:
    content = message.get("content")
    if message["role"] == "tool":
        return [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content}]
    if isinstance(content, str):
        parts = [{"type": "text", "content": content}] if content else []
    else:  # a list of parts: text as the conventions write it, others (images) as they are
        parts = [{"type": "text", "content": p.get("text", "")} if p.get("type") == "text" else p
                 for p in content or ()]
    for call in message.get("tool_calls") or ():
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": call.get("arguments")})
    return parts
