"""Turning a chat() call into a checked LLMRequest before any network call.

The caller's own bad values (a NaN temperature, max_tokens=0, timeout="5", a tool_choice naming
no tool, a malformed message) raise BadRequestError at once: kind "bad_request", never retried,
never failed over, never counted against a model by the circuit breaker. A binding's `params`
fill what the request left unset; a bad default there is the lockfile's fault and says so."""

from __future__ import annotations

import math
from typing import Any, Optional

import attrs

from .exceptions import BadRequestError, ConfigurationError
from .types import LLMRequest

REQUEST_FIELDS = frozenset(f.name for f in attrs.fields(LLMRequest)) - {"model", "messages"}


def build(target: Any, messages: Any, params: dict) -> LLMRequest:
    """The request chat(target, messages, **params) asks for, checked."""
    unknown = sorted(set(params) - REQUEST_FIELDS)
    if unknown:
        raise TypeError(f"unknown parameter(s) {', '.join(unknown)}; pass provider-specific fields "
                        "as extra_params={...}")
    if not isinstance(target, (str, LLMRequest)):
        raise TypeError(f"chat() takes an alias, a provider:model reference or an LLMRequest, "
                        f"not {type(target).__name__}")
    try:
        if isinstance(target, LLMRequest):
            changes = dict(params)
            if messages is not None:
                changes["messages"] = messages
            request = attrs.evolve(target, **changes) if changes else target
        else:
            request = LLMRequest(model=target, messages=messages if messages is not None else [], **params)
    except (ValueError, TypeError) as e:  # a malformed message, from the Message converter
        raise BadRequestError(str(e), kind="bad_request") from None
    if not request.model:
        raise ConfigurationError("The request names no model; give an alias such as 'summarizer'.")
    if not request.messages:
        raise ConfigurationError("The request has no messages; pass the prompt, e.g. chat('summarizer', 'Hi').")
    problem = problem_of(request)
    if problem:
        raise BadRequestError(problem + ".", kind="bad_request")
    return request


def with_defaults(request: LLMRequest, params: dict, alias: str, path: Any) -> LLMRequest:
    """A binding's params fill what the request left unset; the caller's values win. A default
    the request cannot use is a ConfigurationError naming the binding."""
    changes: dict = {}
    extra = dict(request.extra_params)
    for key, value in params.items():
        if key == "extra_params" and isinstance(value, dict):
            for k, v in value.items():
                extra.setdefault(k, v)
        elif key in REQUEST_FIELDS:
            if getattr(request, key) is None:
                changes[key] = value
        else:
            extra.setdefault(key, value)
    if extra != request.extra_params:
        changes["extra_params"] = extra
    if not changes:
        return request
    problem = problem_of(attrs.evolve(request, **{k: v for k, v in changes.items() if k != "messages"}))
    if problem:
        raise ConfigurationError(f"The params of alias {alias!r} in {path} are wrong: {problem}; fix the binding.")
    return attrs.evolve(request, **changes)


def problem_of(request: LLMRequest) -> Optional[str]:
    """What is wrong with the request's values, or None."""
    checks = (
        _number("temperature", request.temperature, 0.0),
        _max_tokens(request.max_tokens),
        _timeout(request.timeout),
        _stop(request.stop),
        _tools(request.tools, request.tool_choice),
        _response_format(request.response_format),
        None if isinstance(request.extra_params, dict) else
        f"extra_params must be a dict, not {type(request.extra_params).__name__}",
        _contents(request.messages),
    )
    return next((c for c in checks if c), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(name: str, value: Any, least: float) -> Optional[str]:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or value < least:
        return f"{name} must be a finite number of at least {least:g}, not {value!r}"
    return None


def _max_tokens(value: Any) -> Optional[str]:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return None
    return f"max_tokens must be a whole number above 0, not {value!r}"


def _timeout(value: Any) -> Optional[str]:
    return None if value is None else seconds_problem("timeout", value, " (or None for no deadline)")


def seconds_problem(name: str, value: Any, alternative: str = "") -> Optional[str]:
    """Why `value` is not a number of seconds above 0, or None."""
    if _is_number(value) and math.isfinite(value) and value > 0:
        return None
    return f"{name} must be a number of seconds above 0{alternative}, not {value!r}"


def _stop(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value)):
        return None
    return f"stop must be a string or a list of strings, not {value!r}"


def _tools(tools: Any, choice: Any) -> Optional[str]:
    names: list = []
    if tools is not None:
        if not isinstance(tools, list):
            return f"tools must be a list of tool definitions, not {type(tools).__name__}"
        from .provider import function_specs

        try:
            names = [spec["name"] for spec in function_specs(tools)]
        except ValueError as e:
            return str(e)
    if choice is None or choice in ("auto", "none") or choice == "required" and names:
        return None
    if isinstance(choice, dict):
        fn = choice.get("function") if choice.get("type") == "function" else choice
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name in names:
            return None
        if isinstance(name, str):
            return f"tool_choice names the tool {name!r}, which is not in tools ({', '.join(names) or 'none given'})"
    if choice == "required":
        return "tool_choice='required' needs tools; pass tools=[...]"
    return ('tool_choice must be "auto", "none", "required", {"type": "function", "function": {"name": ...}} '
            f"or {{\"name\": ...}}, not {choice!r}")


def _response_format(fmt: Any) -> Optional[str]:
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return (f"response_format type must be text, json_object or json_schema, not {kind!r}; "
                'e.g. {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}')
    if kind == "json_schema" and not isinstance((fmt.get("json_schema") or {}).get("schema"), dict):
        return ('A json_schema response_format needs {"json_schema": {"name": ..., "schema": {...}}}; '
                "the schema is missing")
    return None


def _contents(messages: list) -> Optional[str]:
    for i, m in enumerate(messages):
        content = m.content
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            return f"message {i} content must be text or a list of parts, not {type(content).__name__}"
        for part in content:
            if not (isinstance(part, dict) and isinstance(part.get("type"), str)):
                return (f"message {i} has a content part {part!r}; each part is a dict with a type, "
                        'e.g. {"type": "text", "text": ...}')
    return None


def needs(request: LLMRequest, requires: Any = ()) -> list:
    """(what, capabilities any one of which will do) for each capability the request needs,
    plus what the binding promises its callers (`requires`)."""
    out: list = []
    if request.tools and request.tool_choice != "none":
        out.append(("tools", ("tools",)))
    kind = (request.response_format or {}).get("type")
    if kind in ("json_schema", "json_object"):
        # Without native schemas, JSON mode or a forced tool call still gives checked JSON.
        out.append(("structured output", ("json_schema", "json_mode", "tools")))
    if any(isinstance(m.content, list) and any(isinstance(p, dict) and p.get("type") in ("image_url", "image")
                                               for p in m.content) for m in request.messages):
        out.append(("images", ("vision",)))
    return out + [(cap, (cap,)) for cap in requires]
