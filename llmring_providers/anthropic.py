"""Anthropic Messages API (POST {base}/v1/messages).

The API wants the system prompt at the top level, strictly alternating user/assistant
turns, tool results inside user turns and a max_tokens on every request. It has no
response_format: structured output is asked for by forcing a tool whose input schema is
the wanted schema, and the tool's input is handed back as the JSON answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional

import requests

from llmring.plugins import hookimpl
from llmring.provider import (
    Provider,
    Timeout,
    answer_text,
    content_parts,
    function_specs,
    image_url,
    looks_like_context_length,
    response_json,
    split_data_url,
    status_kind,
    stop_sequences,
    tool_call,
    tool_choice,
)
from llmring.types import LLMRequest, LLMResponse, Message, StreamChunk, ToolCallDelta, Usage
from llmring.wire import iter_sse

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens
JSON_TOOL = "json_output"  # the forced tool's name when the schema has none

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "tool_use": "tool_calls",
                  "refusal": "content_filter"}

ERROR_KINDS = {"authentication_error": "auth", "permission_error": "auth", "billing_error": "auth",
               "not_found_error": "not_found", "rate_limit_error": "rate_limit",
               "overloaded_error": "overloaded", "api_error": "server", "timeout_error": "timeout",
               "request_too_large": "context_length"}


class AnthropicProvider(Provider):
    key_envs = ("ANTHROPIC_API_KEY",)
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"  # without /v1: paths add it
    #: What `llmring lock init` binds per task, newest first (checked against the registry).
    starter_models = {
        "assistant": ["claude-sonnet-5", "claude-sonnet-4-6", "claude-sonnet-4-5-20250929"],
        "summarizer": ["claude-haiku-4-5-20251001", "claude-sonnet-5"],
        "extractor": ["claude-haiku-4-5-20251001", "claude-sonnet-5"],
        "code-reviewer": ["claude-opus-5", "claude-opus-4-5-20251101"],
    }

    # -- the vendor mapping ---------------------------------------------------------------
    def url(self, model: str, stream: bool) -> str:
        return self._url("messages")

    def read_stream(self, model: str, request: LLMRequest, response: requests.Response) -> Iterator[StreamChunk]:
        return _StreamReader(self, json_tool_name(request.response_format)).read(response)

    def list_models(self, timeout: Timeout) -> list:
        def page(after: Optional[str]) -> tuple:
            params = {"limit": 1000, **({"after_id": after} if after else {})}
            response = self.request("GET", self._url("models"), headers=self.headers(), timeout=timeout,
                                    params=params)
            data = self.answer_object(response_json(response))
            names = [m["id"] for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]
            return names, data.get("last_id") if data.get("has_more") else None

        return self.pages(page)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v1/{path}"

    def headers(self) -> dict:
        headers = {"anthropic-version": API_VERSION}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        return headers

    def body(self, model: str, request: LLMRequest, stream: bool) -> dict:
        system, messages = convert_messages(request.messages)
        max_tokens = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
        body: dict = {"model": model, "messages": messages, "max_tokens": max_tokens}
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        stop = stop_sequences(request.stop)
        if stop:
            body["stop_sequences"] = stop
        tools = [{"name": s["name"], "description": s["description"], "input_schema": s["parameters"]}
                 for s in function_specs(request.tools)]
        choice = _tool_choice(tool_choice(request))
        output_tool = _output_tool(request.response_format)
        if output_tool:
            if choice is None:
                # Force the JSON tool; with tools of the caller's too, require some tool instead,
                # so the model can still call theirs before it answers.
                choice = {"type": "any"} if tools else {"type": "tool", "name": output_tool["name"]}
            tools.append(output_tool)
        if tools:
            body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if stream:
            body["stream"] = True
        return body

    # -- response ---------------------------------------------------------------------
    def parse(self, model: str, request: LLMRequest, data: dict) -> LLMResponse:
        json_tool = json_tool_name(request.response_format)
        texts, calls, json_answer = [], [], None
        for block in data.get("content") or []:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                texts.append(answer_text(block.get("text")))
            elif kind == "tool_use" and json_tool and block.get("name") == json_tool:
                json_answer = json.dumps(block.get("input") or {}, ensure_ascii=False)
            elif kind == "tool_use":
                calls.append(tool_call(block.get("id") or "", block.get("name") or "", block.get("input")))
            # thinking / redacted_thinking and server-side tool blocks are not part of the answer
        raw = data.get("stop_reason")
        return LLMResponse(content=json_answer if json_answer is not None else "".join(texts), model=model,
                           usage=_usage(data.get("usage")), finish_reason=_finish(raw, bool(calls)),
                           raw_finish_reason=raw, tool_calls=calls or None)

    # -- errors -----------------------------------------------------------------------
    def error_kind(self, err: dict, status: Optional[int]) -> str:
        return error_kind(status, err)


def error_kind(status: Optional[int], err: dict) -> str:
    """The failure kind of an Anthropic error object; `status` is None inside a stream."""
    etype = str(err.get("type") or "")
    message = str(err.get("message") or "").lower()
    if etype in ERROR_KINDS:
        return ERROR_KINDS[etype]
    # invalid_request_error (or an unknown type): the message tells the cases failover can help with.
    if looks_like_context_length(message):
        return "context_length"
    if "credit balance" in message:  # about billing, not the request
        return "auth"
    if "does not support" in message:  # e.g. images or tools asked of a model without them
        return "unsupported"
    return status_kind(status) if status is not None else ("bad_request" if etype else "server")


def json_tool_name(response_format: Optional[dict]) -> Optional[str]:
    """The name of the tool that carries the structured answer, or None without response_format."""
    if not response_format or response_format.get("type") not in ("json_schema", "json_object"):
        return None
    return (response_format.get("json_schema") or {}).get("name") or JSON_TOOL


def _output_tool(response_format: Optional[dict]) -> Optional[dict]:
    name = json_tool_name(response_format)
    if name is None:
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
    return {"name": name, "description": "Give the answer as this tool's input, matching its schema.",
            "input_schema": schema}


def _tool_choice(choice: Optional[tuple]) -> Optional[dict]:
    if choice is None:
        return None
    mode, name = choice
    return {"type": "tool", "name": name} if name else {"type": {"required": "any"}.get(mode, mode)}


# -- messages ------------------------------------------------------------------------------

def convert_messages(messages: list) -> tuple:
    """(system text, Anthropic messages): system messages move to the top level, tool
    results become user turns, and consecutive turns of one role merge into one."""
    system = [m.text() for m in messages if m.role == "system"]
    out: list = []
    for m in messages:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks(m)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), out


def _blocks(m: Message) -> list:
    if m.role == "tool":
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id or "",
                 "content": _content_blocks(m.content)}]
    blocks = _content_blocks(m.content)
    for c in m.tool_calls or []:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
    return blocks or [{"type": "text", "text": ""}]  # let the API say what it thinks of an empty turn


def _content_blocks(content: Any) -> list:
    blocks = []
    for part in content_parts(content):
        if part.get("type") == "text":
            if part.get("text"):  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            blocks.append(_image(image_url(part)))
        else:
            blocks.append(part)  # already an Anthropic block (image with source, document...)
    return blocks


def _image(url: str) -> dict:
    data = split_data_url(url)
    if data:
        return {"type": "image", "source": {"type": "base64", "media_type": data[0], "data": data[1]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


# -- responses -----------------------------------------------------------------------------

def _usage(usage: Any) -> Optional[Usage]:
    if not isinstance(usage, dict):
        return None
    # input_tokens leaves out prompt-cache reads and writes; count them, as OpenAI's prompt_tokens does.
    inputs = sum(usage.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens"))
    cached = usage.get("cache_read_input_tokens")
    return Usage(input_tokens=inputs, output_tokens=usage.get("output_tokens") or 0,
                 cached_tokens=cached if isinstance(cached, int) else None)


def _finish(raw: Optional[str], has_tool_calls: bool) -> str:
    if raw == "tool_use" and not has_tool_calls:
        return "stop"  # the only tool used was the structured-output one: that is the answer
    return FINISH_REASONS.get(raw or "", "stop")


class _StreamReader:
    """Turns the Messages SSE events into StreamChunks."""

    def __init__(self, provider: AnthropicProvider, json_tool: Optional[str]) -> None:
        self.provider, self.json_tool = provider, json_tool
        self.usage: dict = {}
        self.raw_finish: Optional[str] = None
        self.blocks: dict = {}  # content block index -> {"kind", "id", "name", "json": [str], "call"}
        self.calls: list = []  # ToolCalls in order
        self.tool_blocks = 0  # tool_use blocks seen: the index of their ToolCallDeltas

    def read(self, response: requests.Response) -> Iterator[StreamChunk]:
        for event in iter_sse(response, self.provider):
            data = self.provider.event_json(event.data)
            kind = data.get("type") or event.event
            if kind == "message_stop":
                yield self._final()
                return
            if kind == "error":
                raise self.provider.error_from_object(data.get("error"))
            chunk = self._handle(kind, data)
            if chunk is not None:
                yield chunk
        raise self.provider.error("connection", "stream ended before it finished (no message_stop)")

    def _final(self) -> StreamChunk:
        raw = self.raw_finish
        return StreamChunk(finish_reason=_finish(raw, bool(self.calls)), raw_finish_reason=raw,
                           usage=_usage(self.usage) if self.usage else None, tool_calls=self.calls or None)

    def _handle(self, kind: str, data: dict) -> Optional[StreamChunk]:
        if kind == "message_start":
            self.usage.update((data.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            self.raw_finish = (data.get("delta") or {}).get("stop_reason") or self.raw_finish
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        elif kind == "content_block_start":
            return self._start(data.get("index"), data.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(self.blocks.get(data.get("index")), data.get("delta") or {})
        elif kind == "content_block_stop":
            return self._stop(self.blocks.get(data.get("index")))
        return None  # ping, and event types added after this was written

    def _start(self, index: Any, block: dict) -> Optional[StreamChunk]:
        kind = block.get("type")
        if kind == "tool_use":
            json_answer = bool(self.json_tool) and block.get("name") == self.json_tool
            state = {"kind": "json" if json_answer else "tool", "id": block.get("id") or "",
                     "name": block.get("name") or "", "json": [], "input": block.get("input"),
                     "call": None if json_answer else self.tool_blocks}
            self.blocks[index] = state
            if json_answer:
                return None
            self.tool_blocks += 1
            delta = ToolCallDelta(state["call"], id=state["id"], name=state["name"])
            return StreamChunk(tool_call_deltas=[delta])
        self.blocks[index] = {"kind": kind}
        if kind == "text" and answer_text(block.get("text")):
            return StreamChunk(delta=block["text"])
        return None

    def _delta(self, block: Optional[dict], delta: dict) -> Optional[StreamChunk]:
        kind = delta.get("type")
        if kind == "text_delta" and answer_text(delta.get("text")) and (block is None or block["kind"] == "text"):
            return StreamChunk(delta=delta["text"])
        if kind == "input_json_delta" and block is not None and block["kind"] in ("tool", "json"):
            fragment = delta.get("partial_json") or ""
            if not fragment:
                return None
            block["json"].append(fragment)
            if block["kind"] == "json":
                return StreamChunk(delta=fragment)  # the structured answer streams as text
            return StreamChunk(tool_call_deltas=[ToolCallDelta(block["call"], arguments=fragment)])
        return None  # thinking_delta, signature_delta, citations

    def _stop(self, block: Optional[dict]) -> Optional[StreamChunk]:
        if block is None or block["kind"] not in ("tool", "json"):
            return None
        text = "".join(block["json"])
        if block["kind"] == "json":
            # An empty input means {}; it must still reach the caller as JSON text.
            return None if text else StreamChunk(delta=json.dumps(block["input"] or {}))
        self.calls.append(tool_call(block["id"], block["name"], text if text else block["input"]))
        return None


@hookimpl
def register_providers(register: Any) -> None:
    register("anthropic", AnthropicProvider)
