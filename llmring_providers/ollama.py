"""Ollama (prefix "ollama") through its native API: POST {OLLAMA_HOST}/api/chat.

No key. OLLAMA_HOST is read the way Ollama's own clients read it: `localhost:11434`,
`0.0.0.0` (the address a server listens on; we connect to 127.0.0.1) and full URLs all work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Optional
from urllib.parse import urlsplit

import requests

from llmring.exceptions import ProviderError, ProviderNotConfiguredError
from llmring.plugins import hookimpl
from llmring.provider import (
    Provider,
    Timeout,
    answer_text,
    bad_request,
    content_parts,
    function_specs,
    image_url,
    looks_like_context_length,
    new_call_id,
    response_json,
    split_data_url,
    status_kind,
    stop_sequences,
    tool_call,
    tool_choice,
    unsupported,
)
from llmring.types import LLMRequest, LLMResponse, StreamChunk, ToolCallDelta, Usage
from llmring.wire import iter_ndjson

DEFAULT_PORT = 11434


class OllamaProvider(Provider):
    base_url_env = "OLLAMA_HOST"
    default_base_url = f"http://localhost:{DEFAULT_PORT}"

    @property
    def base_url(self) -> str:
        raw = super().base_url
        try:
            return normalize_host(raw)
        except ValueError:
            raise ProviderNotConfiguredError(
                f"{self.name}: OLLAMA_HOST {raw!r} is not a host[:port] or URL; set it like "
                f"localhost:{DEFAULT_PORT}.", provider=self.name) from None

    # -- the vendor mapping ---------------------------------------------------------------
    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/api/chat"

    def parse(self, model: str, request: LLMRequest, data: dict) -> LLMResponse:
        message = data.get("message") or {}
        calls = _tool_calls(message.get("tool_calls"))
        raw = data.get("done_reason")
        # `content` keeps any literal <think> tags; message.thinking is reasoning, not the answer.
        return LLMResponse(content=answer_text(message.get("content")), model=model, usage=_usage(data),
                           finish_reason=_finish_reason(raw, calls), raw_finish_reason=raw,
                           tool_calls=calls or None)

    def read_stream(self, model: str, request: LLMRequest, response: requests.Response) -> Iterator[StreamChunk]:
        calls: list = []
        for obj in iter_ndjson(response, self):
            data = self.answer_object(obj)
            message = data.get("message") or {}
            text = answer_text(message.get("content"))
            if text:
                yield StreamChunk(delta=text)
            new_calls = _tool_calls(message.get("tool_calls"))
            if new_calls:  # Ollama sends each tool call whole
                yield StreamChunk(tool_call_deltas=[
                    ToolCallDelta(index=i, id=c.id, name=c.name, arguments=json.dumps(c.arguments))
                    for i, c in enumerate(new_calls, start=len(calls))])
                calls.extend(new_calls)
            if data.get("done"):
                raw = data.get("done_reason")
                yield StreamChunk(finish_reason=_finish_reason(raw, calls), raw_finish_reason=raw,
                                  usage=_usage(data), tool_calls=calls or None, model=model)
                return
        raise self.error("connection", "the stream ended before it finished.", model=model)

    def list_models(self, timeout: Timeout) -> list:
        response = self.request("GET", f"{self.base_url}/api/tags", headers={}, timeout=timeout)
        data = self.answer_object(response_json(response))
        return [m["name"] for m in data.get("models") or [] if isinstance(m, dict) and m.get("name")]

    def body(self, model: str, request: LLMRequest, stream: bool) -> dict:
        body: dict = {"model": model, "messages": _messages(request.messages), "stream": stream}
        options = _options(request)
        if options:
            body["options"] = options
        tools = _tools(request)
        if tools:
            body["tools"] = tools
        fmt = _format(request.response_format)
        if fmt is not None:
            body["format"] = fmt
        return body

    # -- errors ---------------------------------------------------------------------
    def error_kind(self, err: dict, status: Optional[int]) -> str:
        return _error_kind(status, str(err.get("message") or ""))

    def transport_error(self, exc: BaseException) -> ProviderError:
        err = super().transport_error(exc)
        if err.kind != "connection":
            return err
        # Nearly always: the Ollama server is not running, or OLLAMA_HOST points elsewhere.
        return self.error("connection", f"{err.message.split(': ', 1)[-1]}; is Ollama running at "
                                        f"{self.base_url}? Start it with `ollama serve` or set OLLAMA_HOST.")


def normalize_host(value: str) -> str:
    """OLLAMA_HOST -> base URL: http:// when no scheme is given, port 11434 when no port is
    given without a scheme, and 0.0.0.0 (a listen address) -> 127.0.0.1."""
    value = value.strip()
    has_scheme = "://" in value
    parts = urlsplit(value if has_scheme else f"http://{value}")
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = parts.port  # raises ValueError for a bad port
    if port is None:
        port = DEFAULT_PORT if not has_scheme else (443 if parts.scheme == "https" else 80)
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


# -- request helpers ---------------------------------------------------------------------

def _messages(messages: list) -> list:
    names: dict = {}  # tool_call_id -> function name, for the tool results that follow
    out = []
    for m in messages:
        msg: dict = {"role": m.role, "content": m.text()}
        images = _images(m.content)
        if images:
            msg["images"] = images
        if m.tool_calls:
            names.update((c.id, c.name) for c in m.tool_calls)
            msg["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments or {}}}
                                 for c in m.tool_calls]
        if m.role == "tool":
            name = names.get(m.tool_call_id) or m.name
            if name:
                msg["tool_name"] = name
        out.append(msg)
    return out


def _images(content: Any) -> list:
    images = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "image_url":
            data = split_data_url(image_url(part))
            if not data:
                raise unsupported("Ollama takes images as base64 only; pass the image as a data: URL")
            images.append(data[1])
        elif kind != "text":
            raise unsupported(f"message parts of type {kind!r} cannot be sent to Ollama")
    return images


def _options(request: LLMRequest) -> dict:
    options: dict = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    stop = stop_sequences(request.stop)
    if stop:
        options["stop"] = stop
    return options


def _tools(request: LLMRequest) -> Optional[list]:
    # Ollama has no tool_choice: "none" sends no tools, a named function sends only that one.
    mode, name = tool_choice(request) or ("auto", None)
    if not request.tools or mode == "none":
        return None
    specs = [s for s in function_specs(request.tools) if name in (None, s["name"])]
    return [{"type": "function", "function": s} for s in specs]


def _format(fmt: Optional[dict]) -> Any:
    kind = (fmt or {}).get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or "json"
    raise bad_request(f"response_format type {kind!r} is not one of text, json_object, json_schema")


# -- response helpers --------------------------------------------------------------------

def _tool_calls(raw: Any) -> list:
    # Arguments come as an object; some model templates yield JSON text instead.
    return [tool_call(item.get("id") or new_call_id(), (item.get("function") or {}).get("name", ""),
                      (item.get("function") or {}).get("arguments"))
            for item in raw or []]


def _finish_reason(raw: Optional[str], calls: list) -> str:
    if calls:
        return "tool_calls"
    return "length" if raw == "length" else "stop"


def _usage(data: dict) -> Optional[Usage]:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    return Usage(input_tokens=data.get("prompt_eval_count") or 0, output_tokens=data.get("eval_count") or 0)


def _error_kind(status: Optional[int], message: str) -> str:
    text = message.lower()
    if "does not support" in text:  # "... does not support tools" / "images" / "thinking"
        return "unsupported"
    if looks_like_context_length(message):
        return "context_length"
    if status == 404 or ("model" in text and "not found" in text):
        return "not_found"
    return status_kind(status) if status else "server"


@hookimpl
def register_providers(register: Any) -> None:
    register("ollama", OllamaProvider)

