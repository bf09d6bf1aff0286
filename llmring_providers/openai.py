"""OpenAI Chat Completions (POST {base}/chat/completions), and every OpenAI-compatible
endpoint a lockfile declares (`[providers.groq] type = "openai"`): vLLM, llama.cpp,
Ollama's /v1, Groq, OpenRouter... Those servers differ in small ways (no usage, no
finish_reason, tool calls without an index, extra `reasoning` fields), so parsing
reads only what it needs and tolerates what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional

import requests

from llmring.exceptions import ProviderError
from llmring.plugins import hookimpl
from llmring.provider import (
    Provider,
    Timeout,
    answer_text,
    content_parts,
    function_specs,
    looks_like_context_length,
    new_call_id,
    response_json,
    status_kind,
    stop_sequences,
    tool_call,
    tool_choice,
)
from llmring.types import LLMRequest, LLMResponse, Message, StreamChunk, ToolCallDelta, Usage
from llmring.wire import iter_sse

# Reasoning models take max_completion_tokens and reject temperature.
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                  "function_call": "tool_calls", "content_filter": "content_filter"}

# 429s that are not about pace: the account has no credit left, so waiting will not help.
QUOTA_CODES = {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached",
               "organization_spend_limit_exceeded", "project_spend_limit_exceeded",
               "organization_usage_limit_exceeded"}
CONTENT_FILTER_CODES = {"content_filter", "content_policy_violation"}
UNSUPPORTED_CODES = {"unsupported_parameter", "unsupported_value"}
UNSUPPORTED_MARKERS = ("does not support", "not supported with this model",
                       "only supported by certain models")
# How an error object met inside a stream (no HTTP status) is classified by its type.
ACCOUNT_HEADERS = (("OPENAI_ORGANIZATION", "OpenAI-Organization"), ("OPENAI_PROJECT", "OpenAI-Project"))
STREAM_ERROR_TYPES = {"server_error": "server", "rate_limit_exceeded": "rate_limit", "tokens": "rate_limit",
                      "requests": "rate_limit", "invalid_request_error": "bad_request",
                      "authentication_error": "auth", "permission_error": "auth"}


class OpenAIProvider(Provider):
    key_envs = ("OPENAI_API_KEY",)
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"  # includes /v1, as the official SDK's does
    #: What `llmring lock init` binds per task, newest first (checked against the registry).
    starter_models = {
        "assistant": ["gpt-5.6-terra", "gpt-5.4", "gpt-4.1"],
        "summarizer": ["gpt-5.6-luna", "gpt-5.4-mini", "gpt-4.1-mini"],
        "extractor": ["gpt-5.6-luna", "gpt-4.1-mini"],
        "code-reviewer": ["gpt-5.6-sol", "gpt-5"],
    }

    # -- the vendor mapping ---------------------------------------------------------------
    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def list_models(self, timeout: Timeout) -> list:
        response = self.request("GET", f"{self.base_url}/models", headers=self.headers(), timeout=timeout)
        data = response_json(response)
        entries = data.get("data") if isinstance(data, dict) else None
        return [m["id"] for m in entries or [] if isinstance(m, dict) and m.get("id")]

    def headers(self) -> dict:
        headers = super().headers()
        # Account ids are OpenAI's own; a lockfile-declared endpoint (Groq, vLLM) must not get them.
        if not (self.settings.base_url or self.settings.api_key_env):
            for env, header in ACCOUNT_HEADERS:
                if self.settings.env.get(env):
                    headers[header] = self.settings.env[env]
        return headers

    def body(self, model: str, request: LLMRequest, stream: bool) -> dict:
        body: dict = {"model": model, "messages": [_message(m) for m in request.messages]}
        reasoning = is_reasoning_model(model)
        if request.max_tokens is not None:
            body["max_completion_tokens" if reasoning else "max_tokens"] = request.max_tokens
        if request.temperature is not None and not reasoning:
            body["temperature"] = request.temperature
        stop = stop_sequences(request.stop)
        if stop:
            body["stop"] = stop
        if request.tools:
            body["tools"] = _tools(request.tools)
        choice = tool_choice(request)
        if choice:
            mode, name = choice
            body["tool_choice"] = {"type": "function", "function": {"name": name}} if name else mode
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def open_stream(self, model: str, request: LLMRequest, timeout: Timeout) -> requests.Response:
        try:
            return super().open_stream(model, request, timeout)
        except ProviderError as e:
            # Some compatible servers reject stream_options; they just won't report usage.
            if e.status != 400 or "stream_options" not in str(e) or "stream_options" in request.extra_params:
                raise
        body = self.request_body(model, request, stream=True)
        del body["stream_options"]
        return self.post(self.url(model, stream=True), body, self.headers(), timeout, stream=True)

    def parse(self, model: str, request: LLMRequest, data: dict) -> LLMResponse:
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise self.error("server", "answered without a choice")
        choice = choices[0]
        message = choice.get("message") or {}
        content = _text(message.get("content"))
        calls = [_tool_call(tc) for tc in message.get("tool_calls") or []] or None
        raw = choice.get("finish_reason")
        refused = bool(message.get("refusal")) and not content
        return LLMResponse(content=content, model=model, usage=_usage(data.get("usage")), tool_calls=calls,
                           finish_reason=_finish(raw, calls, refused), raw_finish_reason=raw)

    def read_stream(self, model: str, request: LLMRequest, response: requests.Response) -> Iterator[StreamChunk]:
        calls = _ToolCallAssembler()
        raw_finish, usage, has_text, refused = None, None, False, False
        for event in iter_sse(response, self):
            if event.data[:6] == "[DONE]":
                tool_calls = calls.finished()
                yield StreamChunk(finish_reason=_finish(raw_finish, tool_calls, refused and not has_text),
                                  raw_finish_reason=raw_finish, usage=usage, tool_calls=tool_calls)
                return
            data = self.event_json(event.data)
            if event.event == "error" or data.get("error"):
                raise self.error_from_object(data.get("error") or data)
            if data.get("usage"):  # only in the last chunk: skip the call on every other one
                usage = _usage(data["usage"]) or usage
            choice = _first_choice(data.get("choices"))
            if choice is None:
                continue
            delta = choice.get("delta") or {}
            text = _text(delta.get("content"))
            fragments = delta.get("tool_calls")
            deltas = [calls.add(tc) for tc in fragments if isinstance(tc, dict)] or None if fragments else None
            if text:
                has_text = True
            if delta.get("refusal"):
                refused = True
            raw_finish = choice.get("finish_reason") or raw_finish
            if text or deltas:
                yield StreamChunk(delta=text, tool_call_deltas=deltas)
        raise self.error("connection", "stream ended before it finished (no [DONE])")

    # -- errors -----------------------------------------------------------------------
    def error_kind(self, err: dict, status: Optional[int]) -> str:
        return error_kind(status, err)


def error_kind(status: Optional[int], err: dict) -> str:
    """The failure kind of an OpenAI error object; `status` is None inside a stream."""
    marks = {str(err.get("code") or ""), str(err.get("type") or "")}
    message = str(err.get("message") or "")
    if marks & QUOTA_CODES:
        # HTTP 429, but no credit left: "auth" so the ring fails over at once instead of
        # retrying (no wait brings money back), like a key that does not work.
        return "auth"
    if "invalid_api_key" in marks:
        return "auth"
    if marks & CONTENT_FILTER_CODES:
        return "content_filter"
    if "model_not_found" in marks:
        return "not_found"
    if "context_length_exceeded" in marks or (status != 429 and looks_like_context_length(message)):
        return "context_length"
    if marks & UNSUPPORTED_CODES or (status in (None, 400, 422)
                                     and any(m in message.lower() for m in UNSUPPORTED_MARKERS)):
        return "unsupported"
    if status is not None:
        # A 429 "Request too large ... tokens per min" stays rate_limit: another model may take it.
        return status_kind(status)
    return next((STREAM_ERROR_TYPES[m] for m in marks if m in STREAM_ERROR_TYPES), "server")


def is_reasoning_model(model: str) -> bool:
    name = model.rsplit("/", 1)[-1]  # "openai/o3-mini" on routers
    return name.startswith(REASONING_PREFIXES)


# -- request pieces ------------------------------------------------------------------------

def _message(m: Message) -> dict:
    out: dict = {"role": m.role, "content": _content(m.content)}
    if m.name:
        out["name"] = m.name
    if m.role == "assistant" and m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.arguments)}}
            for c in m.tool_calls]
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id
    return out


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content if content is not None else ""
    # Image parts given as a bare URL string get OpenAI's {"url": ...} object; others pass as given.
    return [{**p, "image_url": {"url": p["image_url"]}}
            if p.get("type") == "image_url" and isinstance(p.get("image_url"), str)
            else p for p in content_parts(content)]


def _tools(tools: list) -> list:
    out = []
    for tool, spec in zip(tools, function_specs(tools)):
        fn = tool.get("function", tool)
        if "strict" in fn:  # keep OpenAI's strict flag when the caller set it
            spec["strict"] = fn["strict"]
        out.append({"type": "function", "function": spec})
    return out


# -- response pieces -----------------------------------------------------------------------

def _text(content: Any) -> str:
    if isinstance(content, list):  # a few compatible servers answer with text parts
        return "".join(answer_text(p.get("text")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return answer_text(content)  # the one rule: text, none, or a shape llmring cannot read


def _first_choice(choices: Any) -> Optional[dict]:
    for choice in choices or []:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _usage(usage: Any) -> Optional[Usage]:
    if not isinstance(usage, dict):
        return None
    return Usage(input_tokens=usage.get("prompt_tokens") or 0,
                 output_tokens=usage.get("completion_tokens") or 0,
                 cached_tokens=_count(usage.get("prompt_tokens_details"), "cached_tokens"),
                 reasoning_tokens=_count(usage.get("completion_tokens_details"), "reasoning_tokens"))


def _count(details: Any, name: str) -> Optional[int]:
    """A count from a *_tokens_details object; None when the server sent none (many compatible ones)."""
    value = details.get(name) if isinstance(details, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tool_call(tc: dict) -> Any:
    fn = tc.get("function") or {}
    return tool_call(tc.get("id") or new_call_id(), fn.get("name") or "", fn.get("arguments"))


def _finish(raw: Optional[str], tool_calls: Optional[list], refused: bool) -> str:
    if refused:
        return "content_filter"
    if tool_calls and raw != "length":
        return "tool_calls"  # some compatible servers say "stop" after a tool call
    return FINISH_REASONS.get(raw or "", "stop")


class _ToolCallAssembler:
    """Joins streamed tool-call fragments: id and name come first, arguments in pieces."""

    def __init__(self) -> None:
        self.calls: dict = {}  # index -> {"id", "name", "arguments": [str]}

    def add(self, fragment: dict) -> ToolCallDelta:
        index = self._index(fragment)
        fn = fragment.get("function") or {}
        arguments = fn.get("arguments")
        if isinstance(arguments, dict):  # some servers send the whole object at once
            arguments = json.dumps(arguments)
        call = self.calls.setdefault(index, {"id": None, "name": None, "arguments": []})
        call["id"] = fragment.get("id") or call["id"]
        call["name"] = fn.get("name") or call["name"]
        if arguments:
            call["arguments"].append(arguments)
        return ToolCallDelta(index, id=fragment.get("id"), name=fn.get("name"), arguments=arguments or "")

    def _index(self, fragment: dict) -> int:
        if isinstance(fragment.get("index"), int):
            return fragment["index"]
        # Servers that omit the index send each call whole, with its own id.
        known = {c["id"]: i for i, c in self.calls.items()}
        if fragment.get("id"):
            return known.get(fragment["id"], len(self.calls))
        return max(self.calls, default=0)

    def finished(self) -> Optional[list]:
        return [tool_call(c["id"] or new_call_id(), c["name"] or "", "".join(c["arguments"]))
                for _, c in sorted(self.calls.items())] or None


@hookimpl
def register_providers(register: Any) -> None:
    register("openai", OpenAIProvider)
