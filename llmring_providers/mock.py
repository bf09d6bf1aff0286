"""An offline, deterministic provider (prefix "mock") for tests and the offline quick start.

Models:
    mock:echo                  answers with the last user message (JSON for response_format)
    mock:fail-<kind>           always raises the ProviderError of that kind (exceptions.KINDS)
    mock:flaky-<kind>-<n>      fails with <kind> the first n calls, then echoes
    mock:slow-<ms>             waits ms milliseconds (within the read timeout), then echoes
    mock:<name>                plays the replies scripted for <name>, in order

Scripts come from `script(name, replies)` or from the JSON file named by LLMRING_MOCK_SCRIPT
({"name": [reply, ...]}). A reply is a string (text) or a dict with "content", "tool_calls"
([{"name", "arguments", "id"?}]), "finish_reason" and "error" (a failure kind).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any, Optional, Union

import attrs

from llmring.exceptions import KINDS, ProviderError, ProviderTimeoutError, error_for_kind
from llmring.plugins import hookimpl
from llmring.provider import Provider, ProviderSettings, Timeout, check_request
from llmring.schema import resolve_ref
from llmring.types import FINISH_REASONS, LLMRequest, LLMResponse, StreamChunk, ToolCall, ToolCallDelta, Usage

SCRIPT_ENV = "LLMRING_MOCK_SCRIPT"
_BUILT_IN = "echo, fail-<kind>, flaky-<kind>-<n>, slow-<ms>"
_SPECIAL_PREFIXES = ("fail-", "flaky-", "slow-")
_FLAKY = re.compile(r"flaky-(?P<kind>[a-z_]+)-(?P<n>\d+)")

# A plausible HTTP status for each simulated failure (None: no HTTP answer at all).
_STATUS = {"rate_limit": 429, "overloaded": 529, "server": 503, "auth": 401, "not_found": 404,
           "bad_request": 400, "context_length": 400, "content_filter": 400, "unsupported": 400}
_RETRY_AFTER = {"rate_limit": 1.0}


@attrs.define
class Reply:
    """One answer of the mock: text, tool calls, or a failure to raise."""

    content: str = ""
    tool_calls: Optional[list] = None
    finish_reason: str = "stop"
    error: Optional[str] = None


# -- scripts -------------------------------------------------------------------------------

_scripts: dict = {}
_scripts_lock = threading.Lock()


def script(name: str, replies: list) -> None:
    """Make `mock:<name>` answer with `replies`, one per call, in order (replaces any script
    for that name). A reply is a str or a dict (see the module docstring)."""
    parsed = _parse_script(name, replies)
    with _scripts_lock:
        _scripts[name] = parsed


def clear_scripts() -> None:
    """Forget every script registered with `script()`."""
    with _scripts_lock:
        _scripts.clear()


def _parse_script(name: Any, replies: Any) -> deque:
    if not isinstance(name, str) or not name:
        raise ValueError(f"A mock script needs a non-empty name, not {name!r}.")
    if name == "echo" or name.startswith(_SPECIAL_PREFIXES):
        raise ValueError(f"mock:{name} is a built-in mock model ({_BUILT_IN}); pick another script name.")
    if not isinstance(replies, list):
        raise ValueError(f"The script for mock:{name} must be a list of replies, "
                         f"not {type(replies).__name__}.")
    return deque(_parse_reply(name, i, r) for i, r in enumerate(replies))


def _parse_reply(name: str, index: int, raw: Any) -> Reply:
    where = f"reply {index + 1} of the script for mock:{name}"
    if isinstance(raw, str):
        return Reply(content=raw)
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a string or a dict, not {type(raw).__name__}.")
    unknown = sorted(set(raw) - {"content", "tool_calls", "finish_reason", "error"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; "
                         "use content, tool_calls, finish_reason, error.")
    error = raw.get("error")
    if error is not None and error not in KINDS:
        raise ValueError(f"{where} has error {error!r}; use one of {', '.join(KINDS)}.")
    content = raw.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = json.dumps(content)  # a dict or list stands for its JSON text
    calls = [_parse_tool_call(where, f"call_{name}_{index + 1}_{i + 1}", c)
             for i, c in enumerate(raw.get("tool_calls") or [])] or None
    finish = raw.get("finish_reason") or ("tool_calls" if calls else "stop")
    if finish not in FINISH_REASONS:
        raise ValueError(f"{where} has finish_reason {finish!r}; use one of {', '.join(FINISH_REASONS)}.")
    return Reply(content=content, tool_calls=calls, finish_reason=finish, error=error)


def _parse_tool_call(where: str, default_id: str, raw: Any) -> ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ValueError(f"each tool call in {where} must be a dict with a name.")
    args = raw.get("arguments", {})
    call_id = str(raw.get("id") or default_id)
    if isinstance(args, str):
        # A string stands for the model's raw text: invalid JSON is kept as raw_arguments,
        # so code handling a model's malformed arguments can be tested too.
        try:
            args = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            return ToolCall(id=call_id, name=raw["name"], raw_arguments=args)
    if not isinstance(args, dict):
        raise ValueError(f"the arguments of tool call {raw['name']!r} in {where} "
                         "must be a dict or JSON text.")
    return ToolCall(id=call_id, name=raw["name"], arguments=args)


def _load_script_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise ValueError(f"it is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"it must hold a JSON object of script name -> list of replies, "
                         f"not {type(data).__name__}")
    return {name: _parse_script(name, replies) for name, replies in data.items()}


# -- the provider ------------------------------------------------------------------------------

class MockProvider(Provider):
    """Answers without any network; see the module docstring for its models."""

    key_envs = ()
    offline = True  # `lock init` with no key set binds its starter models, so a new project runs at once
    starter_models = {"assistant": ["echo"]}

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._calls: Counter = Counter()  # flaky model -> calls so far
        self._file_scripts: Optional[dict] = None

    def chat(self, model: str, request: LLMRequest, timeout: Timeout) -> LLMResponse:
        reply = self._answer(model, request, timeout)
        return LLMResponse(content=reply.content, model=model, usage=_usage(request, reply),
                           finish_reason=reply.finish_reason, raw_finish_reason=reply.finish_reason,
                           tool_calls=reply.tool_calls)

    def stream(self, model: str, request: LLMRequest, timeout: Timeout) -> Iterator[StreamChunk]:
        reply = self._answer(model, request, timeout)
        for piece in _pieces(reply.content):
            yield StreamChunk(delta=piece)
        for index, call in enumerate(reply.tool_calls or []):
            for delta in _tool_call_deltas(index, call):
                yield StreamChunk(tool_call_deltas=[delta])
        yield StreamChunk(finish_reason=reply.finish_reason, raw_finish_reason=reply.finish_reason,
                          usage=_usage(request, reply), tool_calls=reply.tool_calls)

    def list_models(self, timeout: Timeout) -> list:
        return ["echo", *self._script_names()]

    def configuration_problem(self) -> Optional[str]:
        try:
            self._scripts_from_file()
        except ProviderError as e:
            return str(e)
        return None

    # -- answering ---------------------------------------------------------------------------
    def _answer(self, model: str, request: LLMRequest, timeout: Timeout) -> Reply:
        with self.caller_errors(model):  # the caller's errors are found here as with a real API
            check_request(request)
        if model == "echo":
            return _echo(request)
        head, _, rest = model.partition("-")
        if head == "fail" and rest in KINDS:
            raise self._failure(rest, model)
        flaky = _FLAKY.fullmatch(model)
        if flaky and flaky["kind"] in KINDS:
            if self._count_call(model) <= int(flaky["n"]):
                raise self._failure(flaky["kind"], model)
            return _echo(request)
        if head == "slow" and rest.isdigit():
            self._wait(int(rest) / 1000, timeout, model)
            return _echo(request)
        reply = self._next_scripted(model)
        if reply.error:
            raise self._failure(reply.error, model)
        return reply

    def _failure(self, kind: str, model: str) -> ProviderError:
        return error_for_kind(kind, f"{self.name}: simulated {kind} failure of mock:{model}.",
                              provider=self.name, model=model, status=_STATUS.get(kind),
                              retry_after=_RETRY_AFTER.get(kind))

    def _count_call(self, model: str) -> int:
        with self._lock:
            self._calls[model] += 1
            return self._calls[model]

    def _wait(self, seconds: float, timeout: Timeout, model: str) -> None:
        limit = timeout[1] if timeout else None
        if limit is not None and seconds > limit:
            time.sleep(limit)
            raise ProviderTimeoutError(f"{self.name}: mock:{model} gave no answer in {limit:g} s.",
                                       provider=self.name, model=model)
        time.sleep(seconds)

    # -- scripts -----------------------------------------------------------------------------
    def _next_scripted(self, model: str) -> Reply:
        # Scripts registered from Python win over the file's; each is consumed under its lock.
        for scripts, lock in ((_scripts, _scripts_lock), (self._scripts_from_file(), self._lock)):
            with lock:
                replies = scripts.get(model)
                if replies:
                    return replies.popleft()
            if replies is not None:
                raise error_for_kind("bad_request", f"{self.name}: the script for mock:{model} has no more "
                                     "replies; script more of them.", provider=self.name, model=model)
        scripted = ", ".join(self._script_names()) or "none"
        raise error_for_kind("not_found", f"{self.name}: there is no mock model {model!r}; use {_BUILT_IN} "
                             f"(kinds: {', '.join(KINDS)}) or a scripted name (scripted: {scripted}).",
                             provider=self.name, model=model, status=404)

    def _scripts_from_file(self) -> dict:
        with self._lock:
            if self._file_scripts is None:
                path = self.settings.env.get(SCRIPT_ENV)
                try:
                    self._file_scripts = _load_script_file(path) if path else {}
                except ValueError as e:
                    raise error_for_kind("bad_request", f"{self.name}: the mock script file {path} "
                                         f"({SCRIPT_ENV}) is unusable: {e}.", provider=self.name) from None
            return self._file_scripts

    def _script_names(self) -> list:
        file_names = set(self._scripts_from_file())
        with _scripts_lock:
            return sorted(file_names | set(_scripts))


# -- echo and its structured output -----------------------------------------------------------

def _echo(request: LLMRequest) -> Reply:
    text = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
    kind = (request.response_format or {}).get("type")
    if kind == "json_schema":
        return Reply(content=json.dumps(example_for_schema(_schema_of(request.response_format))))
    if kind == "json_object":
        return Reply(content=json.dumps({"echo": text}))
    return Reply(content=text)


def _schema_of(response_format: dict) -> dict:
    # The OpenAI shape nests the schema under json_schema; a bare "schema" is accepted too.
    return (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema") or {}


_FORMATS = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "time": "00:00:00",
            "email": "user@example.com", "uri": "https://example.com",
            "uuid": "00000000-0000-0000-0000-000000000000"}
_MAX_DEPTH = 4  # arrays deeper than this stay at minItems, so recursive schemas end


def example_for_schema(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A small value valid for a JSON schema: required properties only, type-appropriate
    values (const, enum and default first). Handles local $ref, anyOf/oneOf/allOf."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 8 * _MAX_DEPTH:
        return None
    if "$ref" in schema:
        try:
            target = resolve_ref(root, schema["$ref"])
        except ValueError:
            target = {}  # a remote or dangling reference: any value will do for a mock
        return example_for_schema(target, root, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0], root, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: example_for_schema(props.get(name, {}), root, depth + 1)
                for name in schema.get("required") or []}
    if kind == "array":
        return _example_array(schema, root, depth)
    if kind in ("integer", "number"):
        return _example_number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema)


def _type_of(schema: dict) -> str:
    kind: Union[str, list, None] = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind:
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    return "array" if "items" in schema or "prefixItems" in schema else "string"


def _example_array(schema: dict, root: Any, depth: int) -> list:
    if schema.get("prefixItems"):
        return [example_for_schema(s, root, depth + 1) for s in schema["prefixItems"]]
    count = max(schema.get("minItems", 0), 1 if depth < _MAX_DEPTH else 0)
    if "maxItems" in schema:
        count = min(count, schema["maxItems"])
    return [example_for_schema(schema.get("items", {}), root, depth + 1) for _ in range(count)]


def _example_number(schema: dict, kind: str) -> Union[int, float]:
    if "minimum" in schema:
        value = schema["minimum"]
    elif "exclusiveMinimum" in schema:
        value = schema["exclusiveMinimum"] + 1
    else:
        value = min(0, schema.get("maximum", 0))
    return int(value) if kind == "integer" else float(value)


def _example_string(schema: dict) -> str:
    text = _FORMATS.get(schema.get("format", ""), "mock")
    text = text.ljust(schema.get("minLength", 0), "x")
    return text[:schema["maxLength"]] if "maxLength" in schema else text


# -- shared pieces ---------------------------------------------------------------------------

def _words(text: str) -> int:
    return len(text.split())


def _usage(request: LLMRequest, reply: Reply) -> Usage:
    return Usage(input_tokens=sum(_words(m.text()) for m in request.messages),
                 output_tokens=_words(reply.content))


def _pieces(text: str) -> list:
    """The text split word by word, each word keeping the whitespace after it."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


def _tool_call_deltas(index: int, call: ToolCall) -> list:
    """A tool call as a provider streams it: id and name first, then the arguments in parts."""
    text = call.raw_arguments if call.raw_arguments is not None else json.dumps(call.arguments)
    half = len(text) // 2
    return [ToolCallDelta(index=index, id=call.id, name=call.name, arguments=text[:half]),
            ToolCallDelta(index=index, arguments=text[half:])]


@hookimpl
def register_providers(register: Any) -> None:
    register("mock", MockProvider)
