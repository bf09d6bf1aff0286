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
    """A binding's params fill what the request left unset; the caller's values win (its
    extra_params over the binding's, table by table at any depth, as one Merge Patch over the
    other). A default the request cannot use is a ConfigurationError naming the binding."""
    changes: dict = {}
    defaults: dict = {}  # the binding's extra_params, and its keys no request field takes
    for key, value in params.items():
        if key == "extra_params" and isinstance(value, dict):
            defaults.update(value)
        elif key in REQUEST_FIELDS:
            if getattr(request, key) is None:
                changes[key] = value
        else:
            defaults[key] = value
    if defaults:
        from .translate import layered  # with the provider-side merge; not needed at start-up

        changes["extra_params"] = layered(defaults, request.extra_params)
    if not changes:
        return request
    problem = problem_of(attrs.evolve(request, **{k: v for k, v in changes.items() if k != "messages"}))
    if problem:
        raise ConfigurationError(f"The params of alias {alias!r} in {path} are wrong: {problem}; fix the binding.")
    return attrs.evolve(request, **changes)


def problem_of(request: LLMRequest) -> Optional[str]:
    """What is wrong with the request's values, or None. Numbers and the deadline are checked
    here; messages, tools, tool_choice, stop and response_format by the same check every
    provider runs (translate.check_request), so the two can never disagree."""
    checks = (
        _number("temperature", request.temperature, 0.0),
        _max_tokens(request.max_tokens),
        _timeout(request.timeout),
        None if isinstance(request.extra_params, dict) else
        f"extra_params must be a dict, not {type(request.extra_params).__name__}",
    )
    problem = next((c for c in checks if c), None)
    if problem:
        return problem
    from .exceptions import ProviderError
    from .translate import check_request

    try:
        check_request(request)
    except ProviderError as e:
        return e.message
    return None


def field_problem(name: str, value: Any) -> Optional[str]:
    """Why `value` can never be the request's `name`, whatever the rest of the request, or
    None: a binding's params are read with this, so a default the lockfile accepts is one
    every call accepts too. (Whether tool_choice names one of the tools is the call's to say.)"""
    if name == "tool_choice":
        from .translate import tool_choice_name

        if tool_choice_name(value):
            return None
        request = LLMRequest(model="x", tool_choice=value, tools=[])
    elif name in ("stop", "tools", "response_format"):
        request = LLMRequest(model="x", **{name: value})
    else:
        return problem_of(LLMRequest(model="x", **{name: value}))
    from .exceptions import ProviderError
    from .translate import check_request, tool_choice

    try:
        tool_choice(request) if name == "tool_choice" else check_request(request)
    except ProviderError as e:
        return e.message
    return None


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
