"""Translating an LLMRequest into a vendor's request body, and answers back: the pieces
every provider needs, with the caller's values checked once. A value the caller got wrong
raises `bad_request()`; something the vendor's API cannot express raises `unsupported()`.
`llmring.provider` re-exports all of them for plugins."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Optional

from .exceptions import ProviderError, error_for_kind
from .types import LLMRequest, ToolCall


def bad_request(message: str) -> ProviderError:
    """For helper functions: the error for a caller's value that is wrong (raise it); the
    round trip (`Provider.caller_errors`) adds the provider's name."""
    return error_for_kind("bad_request", message)


def unsupported(message: str) -> ProviderError:
    """For helper functions: the error for what this API cannot express (raise it)."""
    return error_for_kind("unsupported", message)


def function_specs(tools: Optional[list]) -> list:
    """Tools in either accepted shape -> [{"name", "description", "parameters"}]."""
    specs = []
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise bad_request("each tool needs a name: use {'type': 'function', 'function': {'name': ..., "
                              "'parameters': {...}}} or {'name': ..., 'parameters': {...}}")
        specs.append({"name": fn["name"], "description": fn.get("description", ""),
                      "parameters": fn.get("parameters") or {"type": "object", "properties": {}}})
    return specs


def tool_choice_name(choice: Any) -> Optional[str]:
    """The function a tool_choice names ({"type":"function","function":{"name":...}} or
    {"name": ...}), or None for "auto" / "none" / "required"."""
    if not isinstance(choice, dict):
        return None
    fn = choice.get("function")
    name = (fn.get("name") if isinstance(fn, dict) else None) or choice.get("name")
    return name if isinstance(name, str) and name else None


RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_TOOL_MODES = {"auto": "auto", "none": "none", "required": "required", "any": "required"}


def tool_choice(request: LLMRequest) -> Optional[tuple]:
    """The request's tool_choice as (mode, name): ("auto" | "none" | "required", None) or
    ("function", its name); None when not given. Anthropic's names are taken too ("any",
    {"type": "tool", "name": ...}). Anything else, or a function that is not among the
    tools, is the caller's error (bad_request)."""
    choice = request.tool_choice
    if choice is None:
        return None
    name = tool_choice_name(choice)
    if name:
        if name not in {spec["name"] for spec in function_specs(request.tools)}:
            raise bad_request(f"tool_choice names the function {name!r}, which is not among the tools")
        return "function", name
    mode = choice.get("type") if isinstance(choice, dict) else choice
    if isinstance(mode, str) and mode in _TOOL_MODES:
        return _TOOL_MODES[mode], None
    raise bad_request(f"tool_choice must be 'auto', 'none', 'required' or a function "
                      f"({{'type': 'function', 'function': {{'name': ...}}}}), not {_brief(choice)}")


def check_request(request: LLMRequest) -> None:
    """Raise bad_request for a caller's value no API could take: message content of a wrong
    type, a tool without a name, an unknown tool_choice or response_format, a stop that is
    not text."""
    for message in request.messages:
        content_parts(message.content)
    if request.tools is not None and not isinstance(request.tools, list):
        raise bad_request(f"tools must be a list of tool definitions, not {type(request.tools).__name__}")
    function_specs(request.tools)
    if tool_choice(request) == ("required", None) and not request.tools:
        raise bad_request("tool_choice='required' needs tools; pass tools=[...]")
    stop_sequences(request.stop)
    fmt = request.response_format
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in RESPONSE_FORMATS:
        raise bad_request(f"response_format type must be text, json_object or json_schema, not {_brief(fmt)}; "
                          'e.g. {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}')
    spec = fmt.get("json_schema")
    if fmt["type"] == "json_schema" and not (isinstance(spec, dict) and isinstance(spec.get("schema"), dict)):
        raise bad_request('a json_schema response_format needs {"json_schema": {"name": ..., "schema": {...}}}; '
                          "the schema is missing")


def stop_sequences(stop: Any) -> Optional[list]:
    """`stop` (a string or a list of strings) as a list; None when empty. Anything else is
    the caller's error (bad_request)."""
    if stop is None or stop == "" or stop == []:
        return None
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) and s for s in items):
        raise bad_request(f"stop must be a string or a list of non-empty strings, not {_brief(stop)}")
    return list(items)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def new_call_id() -> str:
    """An id for a tool call the API gave none (Gemini 2.x, Ollama): unique, as OpenAI's and
    Anthropic's are, so code that keys calls by id works the same with every provider."""
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call(id: str, name: str, arguments: Any) -> ToolCall:
    """A ToolCall from arguments given as a dict or as JSON text ("" means no arguments);
    text that is not a JSON object is kept in `raw_arguments`."""
    if isinstance(arguments, dict):
        return ToolCall(id=id, name=name, arguments=arguments)
    text = arguments or ""
    if not text.strip():
        return ToolCall(id=id, name=name)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # a model's malformed (or absurdly nested) arguments
        parsed = None
    if isinstance(parsed, dict):
        return ToolCall(id=id, name=name, arguments=parsed)
    return ToolCall(id=id, name=name, raw_arguments=text)


def merge_extra_params(body: dict, extra: Optional[Mapping]) -> dict:
    """`body` with the caller's `extra_params` applied as a JSON Merge Patch (RFC 7396): a
    dict merges into the body's dict of that key, at any depth (`{"options": {"num_ctx":
    8192}}` adds to the options built from the request); any other value replaces; `None`
    removes the key. Lists replace whole."""
    for key, value in (extra or {}).items():
        if value is None:
            body.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(body.get(key), dict):
            body[key] = merge_extra_params(dict(body[key]), value)
        else:
            body[key] = _without_nulls(value)
    return body


def answer_text(value: Any) -> str:
    """A text field of an answer: the string, "" for none. Anything else (a server's bug) is a
    TypeError, which Provider.reading() turns into an "invalid_output" failure."""
    if value is None or isinstance(value, str):
        return value or ""
    raise TypeError(f"a text field holds {type(value).__name__}, not a string")


def layered(under: Mapping, over: Mapping) -> dict:
    """`over` laid on `under`, both extra_params patches, as one patch: `over` wins, tables of
    the same key merge at any depth, and a None in `over` stays (a removal, for the body)."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = layered(out[key], value)
        else:
            out[key] = value
    return out


def _without_nulls(value: Any) -> Any:
    # RFC 7396: a null inside a new object is a removal too, never sent.
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def content_parts(content: Any) -> list:
    """A message's content as a list of part dicts: a string is one text part (none when
    empty), and so is a bare string in a list. Any other value is the caller's error."""
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise bad_request(f"message content must be a string or a list of parts, not {type(content).__name__}")
    parts = []
    for part in content:
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        elif not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad_request(f"a message part must be a dict with a type, such as {{'type': 'text', "
                              f"'text': ...}}, not {_brief(part)}")
        parts.append(part)
    return parts


def split_data_url(url: str) -> Optional[tuple]:
    """"data:image/png;base64,AAAA" -> ("image/png", "AAAA"); None for other URLs."""
    if not url.startswith("data:") or "," not in url:
        return None
    head, data = url[5:].split(",", 1)
    mime = head.split(";")[0] or "application/octet-stream"
    return mime, data


def image_url(part: dict) -> str:
    """The URL of an image part ({"type": "image_url", "image_url": {"url"}} or a plain string)."""
    value = part.get("image_url")
    return value.get("url", "") if isinstance(value, dict) else str(value or part.get("url", ""))
