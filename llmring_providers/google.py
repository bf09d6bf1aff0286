"""Google Gemini (prefix "google") through the Gemini API's REST interface.

    POST {GEMINI_BASE_URL}/v1beta/models/{model}:generateContent
    POST {GEMINI_BASE_URL}/v1beta/models/{model}:streamGenerateContent?alt=sse

The key (GEMINI_API_KEY or GOOGLE_API_KEY) travels in the x-goog-api-key header, never in
the URL, so it cannot leak through logged URLs or exception texts.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Iterator
from typing import Any, Optional

import requests

from llmring.exceptions import ProviderError
from llmring.plugins import hookimpl
from llmring.provider import (
    Provider,
    ProviderSettings,
    Timeout,
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
from llmring.types import LLMRequest, LLMResponse, StreamChunk, ToolCall, ToolCallDelta, Usage
from llmring.wire import iter_sse

from .gemini_schema import gemini_schema

_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# Error texts of models that lack a feature (function calling, JSON mode, system instructions).
_UNSUPPORTED_MARKERS = ("is not enabled for models/", "is not supported for this model", "does not support")
# Replayed function calls must carry the model's thoughtSignature (Gemini 3 rejects them
# otherwise). When we no longer have the real one, Google documents this value to skip the check.
_SKIP_SIGNATURE = "skip_thought_signature_validator"
_MAX_REMEMBERED = 1024


class GoogleProvider(Provider):
    key_envs = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    telemetry_name = "gcp.gemini"  # the OpenTelemetry conventions' name for the Gemini API
    base_url_env = "GEMINI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com"
    #: What `llmring lock init` binds per task, newest first (checked against the registry). Newer
    #: generations are still previews in the registry; the starters stay on the stable ones.
    starter_models = {
        "assistant": ["gemini-2.5-pro", "gemini-2.5-flash"],
        "summarizer": ["gemini-2.5-flash-lite", "gemini-2.5-flash"],
        "extractor": ["gemini-2.5-flash", "gemini-2.5-flash-lite"],
        "code-reviewer": ["gemini-2.5-pro"],
    }

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._signatures = _Memory()  # (call id, name, args) -> thoughtSignature
        # Ids Gemini gave its function calls (Gemini 3 does): they must come back on the call and
        # its functionResponse. Ids we made up for calls without one are never sent.
        self._gemini_ids = _Memory()

    def key_env_names(self) -> tuple:
        # A custom base URL (a proxy) still speaks to Gemini and needs the Gemini key.
        return (self.settings.api_key_env,) if self.settings.api_key_env else self.key_envs

    # -- the vendor mapping ---------------------------------------------------------------
    def url(self, model: str, stream: bool) -> str:
        name = _model_name(model)
        if stream:
            return f"{self._api_root()}/models/{name}:streamGenerateContent?alt=sse"
        return f"{self._api_root()}/models/{name}:generateContent"

    def parse(self, model: str, request: LLMRequest, data: dict) -> LLMResponse:
        name = _model_name(model)
        text, calls, raw = self._read_candidate(data)  # raises if the prompt was blocked
        if not data.get("candidates"):
            raise self.error("server", "answered without any candidate.", model=name)
        return LLMResponse(content=text, model=name, usage=_usage(data.get("usageMetadata")),
                           finish_reason=_finish_reason(raw, calls), raw_finish_reason=raw,
                           tool_calls=calls or None)

    def read_stream(self, model: str, request: LLMRequest, response: requests.Response) -> Iterator[StreamChunk]:
        name = _model_name(model)
        calls: list = []
        raw: Optional[str] = None
        usage: Optional[Usage] = None
        for event in iter_sse(response, self):
            data = self.answer_object(self.event_json(event.data))
            text, new_calls, finish = self._read_candidate(data)
            if text:
                yield StreamChunk(delta=text)
            if new_calls:  # Gemini sends each function call whole, in one chunk
                yield StreamChunk(tool_call_deltas=[
                    ToolCallDelta(index=i, id=c.id, name=c.name, arguments=json.dumps(c.arguments))
                    for i, c in enumerate(new_calls, start=len(calls))])
                calls.extend(new_calls)
            usage = _usage(data.get("usageMetadata")) or usage
            raw = finish or raw
        # Gemini sends no end marker: the chunk with finishReason is the last one.
        if raw is None:
            raise self.error("connection", "the stream ended before it finished.", model=name)
        yield StreamChunk(finish_reason=_finish_reason(raw, calls), raw_finish_reason=raw, usage=usage,
                          tool_calls=calls or None, model=name)

    def list_models(self, timeout: Timeout) -> list:
        def page(token: Optional[str]) -> tuple:
            params = {"pageSize": 1000, **({"pageToken": token} if token else {})}
            response = self.request("GET", f"{self._api_root()}/models", headers=self.headers(),
                                    timeout=timeout, params=params)
            data = self.answer_object(response_json(response))
            names = [_model_name(info.get("name", "")) for info in data.get("models") or []
                     if info.get("supportedGenerationMethods") is None
                     or "generateContent" in info["supportedGenerationMethods"]]
            return names, data.get("nextPageToken")

        return self.pages(page)

    def _api_root(self) -> str:
        base = self.base_url
        return base if base.endswith(("/v1beta", "/v1")) else base + "/v1beta"

    def headers(self) -> dict:
        return {"x-goog-api-key": self.api_key()}

    def body(self, model: str, request: LLMRequest, stream: bool) -> dict:
        body: dict = {"contents": self._contents(request.messages)}
        system = [m.text() for m in request.messages if m.role == "system" and m.text()]
        if system:
            body["systemInstruction"] = {"parts": [{"text": t} for t in system]}
        config = _generation_config(request)
        if config:
            body["generationConfig"] = config
        if request.tools:
            body["tools"] = [{"functionDeclarations": [_declaration(s) for s in function_specs(request.tools)]}]
        choice = tool_choice(request)
        if choice:
            mode, name = choice
            calling = {"mode": "ANY", "allowedFunctionNames": [name]} if name else {"mode": _TOOL_MODES[mode]}
            body["toolConfig"] = {"functionCallingConfig": calling}
        return body

    def _contents(self, messages: list) -> list:
        names: dict = {}  # tool_call_id -> function name, for the tool results that follow
        turns: list = []
        for m in messages:
            if m.role == "system":
                continue
            if m.role == "assistant":
                names.update((c.id, c.name) for c in m.tool_calls or [])
                role = "model"
                parts = _parts(m.content) + [self._function_call_part(c) for c in m.tool_calls or []]
            elif m.role == "tool":
                role, parts = "user", [self._function_response_part(m, names)]
            else:
                role, parts = "user", _parts(m.content)
            if not parts:
                continue
            # Gemini wants turns to alternate; the results of parallel calls form one turn.
            if turns and turns[-1]["role"] == role:
                turns[-1]["parts"].extend(parts)
            else:
                turns.append({"role": role, "parts": parts})
        return turns

    def _function_call_part(self, call: ToolCall) -> dict:
        signature = self._signatures.get(_signature_key(call), _SKIP_SIGNATURE)
        function_call = {"name": call.name, "args": call.arguments or {}, **self._gemini_id(call.id)}
        return {"functionCall": function_call, "thoughtSignature": signature}

    def _function_response_part(self, message: Any, names: dict) -> dict:
        name = names.get(message.tool_call_id) or message.name
        if not name:
            raise self.bad_request(f"the tool result for {message.tool_call_id!r} answers no tool call "
                                   "of an earlier assistant message; pass that message too.")
        return {"functionResponse": {"name": name, "response": _tool_result(message),
                                     **self._gemini_id(message.tool_call_id)}}

    def _gemini_id(self, call_id: Optional[str]) -> dict:
        return {"id": call_id} if call_id in self._gemini_ids else {}

    # -- response -------------------------------------------------------------------
    def answer_object(self, data: Any) -> dict:
        if isinstance(data, list) and data:  # some errors come wrapped in a list
            data = data[0]
        return super().answer_object(data)

    def _read_candidate(self, data: dict) -> tuple:
        """(visible text, tool calls, raw finish reason) of the first candidate."""
        candidates = data.get("candidates") or []
        if not candidates:
            blocked = (data.get("promptFeedback") or {}).get("blockReason")
            if blocked:
                raise self.error("content_filter", f"the prompt was blocked ({blocked}).")
            return "", [], None
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
        calls = []
        for part in parts:
            if "functionCall" in part:
                call = _tool_call(part["functionCall"])
                self._remember(call, part.get("thoughtSignature"), part["functionCall"].get("id"))
                calls.append(call)
        return text, calls, candidate.get("finishReason")

    def _remember(self, call: ToolCall, signature: Optional[str], gemini_id: Optional[str]) -> None:
        if signature:
            self._signatures.put(_signature_key(call), signature)
        if gemini_id:
            self._gemini_ids.put(gemini_id, True)

    # -- errors ---------------------------------------------------------------------
    def error_object(self, body: Any) -> Any:
        if isinstance(body, list) and body:  # some errors come wrapped in a list
            body = body[0]
        err = super().error_object(body)
        return err if isinstance(err, dict) else None

    def error_from_object(self, err: Any, response: Optional[requests.Response] = None) -> ProviderError:
        err = err if isinstance(err, dict) else {"message": str(err or "unknown error")}
        # In a 200 body or a stream, the object's own code stands for the HTTP status.
        status = response.status_code if response is not None else err.get("code")
        status = status if isinstance(status, int) else None
        message = str(err.get("message") or "no message")
        kind = _error_kind(status, err, message)
        if kind == "auth":
            message += f" (check {' or '.join(self.key_env_names())})"
        exc = self.error(kind, message, response=response)
        exc.status = exc.status or status
        if exc.retry_after is None:
            exc.retry_after = _retry_delay(err.get("details"))
        return exc


# -- request helpers ---------------------------------------------------------------------

def _model_name(model: str) -> str:
    return model[len("models/"):] if model.startswith("models/") else model


def _parts(content: Any) -> list:
    parts = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_media_part(image_url(part)))
        else:
            raise unsupported(f"message parts of type {kind!r} cannot be sent to Gemini")
    return parts


def _media_part(url: str) -> dict:
    data = split_data_url(url)
    if data:
        return {"inlineData": {"mimeType": data[0], "data": data[1]}}
    if url.startswith(("http://", "https://")):
        file_data = {"fileUri": url}
        mime = mimetypes.guess_type(url.split("?")[0])[0]
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    raise unsupported("an image must be a data: URL or an http(s) URL")


def _tool_result(message: Any) -> dict:
    text = message.content if isinstance(message.content, str) else message.text()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    # functionResponse.response must be an object.
    return value if isinstance(value, dict) else {"result": value}


def _signature_key(call: ToolCall) -> tuple:
    return call.id, call.name, json.dumps(call.arguments, sort_keys=True)


class _Memory:
    """key -> value for the last _MAX_REMEMBERED keys; safe to share between threads (an
    AsyncRing calls one provider from many)."""

    def __init__(self) -> None:
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            return self._data.get(key, default)

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._data

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > _MAX_REMEMBERED:
                del self._data[next(iter(self._data))]


def _generation_config(request: LLMRequest) -> dict:
    config: dict = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    stop = stop_sequences(request.stop)
    if stop:
        config["stopSequences"] = stop
    fmt = request.response_format or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if fmt["type"] == "json_schema" and schema:
            config["responseSchema"] = gemini_schema(schema)
    elif fmt.get("type") not in (None, "text"):
        raise bad_request(f"response_format type {fmt.get('type')!r} is not one of text, json_object, json_schema")
    return config


def _declaration(spec: dict) -> dict:
    decl = {"name": spec["name"]}
    if spec.get("description"):
        decl["description"] = spec["description"]
    params = gemini_schema(spec.get("parameters") or {})
    # Gemini rejects an OBJECT without properties: a function without arguments has no schema.
    if params.get("properties") or (params and params.get("type") != "OBJECT"):
        decl["parameters"] = params
    return decl


# -- response helpers --------------------------------------------------------------------

def _tool_call(call: dict) -> ToolCall:
    args = call.get("args")  # an object, as Gemini sends it; anything else is kept as raw text
    return tool_call(call.get("id") or new_call_id(), call.get("name", ""),
                     args if args is None or isinstance(args, dict) else json.dumps(args))


def _finish_reason(raw: Optional[str], calls: list) -> str:
    if raw in _FILTERED:
        return "content_filter"
    if calls and raw in (None, "STOP"):
        return "tool_calls"
    return _FINISH.get(raw, "stop")


def _usage(meta: Optional[dict]) -> Optional[Usage]:
    if not meta:
        return None
    # Thinking tokens (thoughtsTokenCount) are reported apart and not counted as output here.
    return Usage(input_tokens=meta.get("promptTokenCount") or 0, output_tokens=meta.get("candidatesTokenCount") or 0,
                 cached_tokens=_count(meta, "cachedContentTokenCount"),
                 reasoning_tokens=_count(meta, "thoughtsTokenCount"))


def _count(meta: dict, name: str) -> Optional[int]:
    value = meta.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_kind(status: Optional[int], err: dict, message: str) -> str:
    name = err.get("status") or ""
    reasons = {d.get("reason") for d in err.get("details") or [] if isinstance(d, dict)}
    text = message.lower()
    # Gemini answers a bad key with 400 INVALID_ARGUMENT; FAILED_PRECONDITION means the
    # account cannot use the API (region, billing): no retry helps, another provider may.
    if "API_KEY_INVALID" in reasons or "api key not valid" in text or name in (
            "UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION"):
        return "auth"
    if name == "RESOURCE_EXHAUSTED" or status == 429:
        return "rate_limit"
    if looks_like_context_length(message):
        return "context_length"
    if any(m in text for m in _UNSUPPORTED_MARKERS):
        return "unsupported"
    # 503 UNAVAILABLE is Gemini's "The model is overloaded. Please try again later.": a
    # capacity signal, so back off and retry like Anthropic's 529.
    if name == "UNAVAILABLE" or status == 503:
        return "overloaded"
    if name == "DEADLINE_EXCEEDED" or status == 504:
        return "timeout"
    if name == "NOT_FOUND":
        return "not_found"
    return status_kind(status) if status else "server"


def _retry_delay(details: Any) -> Optional[float]:
    """Seconds from a google.rpc.RetryInfo detail ({"retryDelay": "35s"})."""
    for detail in details or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay") or "")
            try:
                return max(0.0, float(delay[:-1] if delay.endswith("s") else delay))
            except ValueError:
                return None
    return None


@hookimpl
def register_providers(register: Any) -> None:
    register("google", GoogleProvider)
