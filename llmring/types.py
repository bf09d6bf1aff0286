"""Request, response and stream types shared by the core and every provider."""

from __future__ import annotations

from typing import Any, Optional, Union

import attrs

ROLES = ("system", "user", "assistant", "tool")
# Normalised finish reasons; providers map their raw values onto these.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")


def _check_role(instance: Any, attribute: Any, value: str) -> None:
    if value not in ROLES:
        raise ValueError(f"Message role must be one of {', '.join(ROLES)}, not {value!r}.")


@attrs.define
class ToolCall:
    """A function call the model asked for. `arguments` is parsed JSON; `raw_arguments`
    keeps the provider's text when it was not valid JSON.

    Attributes:
        id: The provider's id for the call; a `tool` message answers it by `tool_call_id`.
        name: The function's name, as given in the request's `tools`.
        arguments: The arguments, parsed from the model's JSON (`{}` when it sent none).
        raw_arguments: The model's text when it was not valid JSON (then `arguments` is `{}`).
    """

    id: str
    name: str
    arguments: dict = attrs.field(factory=dict)
    raw_arguments: Optional[str] = None

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


def _tool_calls(value: Any) -> Optional[list]:
    if value is None:
        return None
    return [v if isinstance(v, ToolCall) else _tool_call_from_dict(v) for v in value]


def _tool_call_from_dict(d: dict) -> ToolCall:
    # Accept our own shape and the OpenAI one ({"id", "function": {"name", "arguments"}}).
    fn = d.get("function") or {}
    args = d.get("arguments", fn.get("arguments", {}))
    if isinstance(args, str):
        import json

        try:
            args = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            return ToolCall(id=d.get("id", ""), name=d.get("name") or fn.get("name", ""), raw_arguments=args)
    return ToolCall(id=d.get("id", ""), name=d.get("name") or fn.get("name", ""), arguments=args)


@attrs.define
class Message:
    """One chat message. `content` is text, or a list of parts:
    `{"type": "text", "text": ...}`, `{"type": "image_url", "image_url": {"url": ...}}`
    (a `data:` URL carries base64). A dict with these keys works wherever a Message does.

    Attributes:
        role: `system`, `user`, `assistant` or `tool`; anything else is a `ValueError`.
        content: The text, or a list of parts as above.
        tool_calls: On an assistant message, the `ToolCall`s it made (dicts are converted).
        tool_call_id: On a `tool` message, the id of the call it answers.
        name: An optional name of the speaker or tool.
        metadata: Free-form data of the caller's; never sent to a provider.
    """

    role: str = attrs.field(validator=_check_role)
    content: Union[str, list, None] = ""
    tool_calls: Optional[list] = attrs.field(default=None, converter=_tool_calls)
    tool_call_id: Optional[str] = None
    name: Optional[str] = None
    metadata: Optional[dict] = None

    @classmethod
    def coerce(cls, value: Union[Message, dict]) -> Message:
        """`value` as a Message: a Message as is, a dict by its keys (an unknown key or a
        missing `role` is a `ValueError`)."""
        if isinstance(value, Message):
            return value
        if isinstance(value, dict):
            known = {f.name for f in attrs.fields(cls)}
            extra = sorted(set(value) - known)
            if extra:
                raise ValueError(f"Unknown message field(s) {', '.join(extra)}; use {', '.join(sorted(known))}.")
            if "role" not in value:
                raise ValueError("A message needs a role: system, user, assistant or tool.")
            return cls(**value)
        raise TypeError(f"A message must be a Message or a dict, not {type(value).__name__}.")

    def text(self) -> str:
        """The text of the message, with non-text parts left out."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(p.get("text", "") for p in self.content if isinstance(p, dict) and p.get("type") == "text")


def _messages(value: Any) -> list:
    if isinstance(value, (str, Message, dict)):
        value = [value]
    return [Message(role="user", content=v) if isinstance(v, str) else Message.coerce(v) for v in value or []]


@attrs.define
class LLMRequest:
    """What to ask: `model` is an alias or a `provider:model` reference. `Ring.chat` builds
    one from its arguments; pass one to send the same request again or to another target.

    Attributes:
        model: An alias or a `provider:model` reference (`Ring.chat`'s target overrides it).
        messages: The conversation: `Message`s, dicts, or a str (one user message).
        temperature: Sent only when given; llmring adds no default.
        max_tokens: Sent only when given (Anthropic, which requires it, gets 4096).
        stop: A stop sequence or a list of them.
        tools: Function tools, OpenAI's shape (`{"type": "function", "function": {...}}`).
        tool_choice: `"auto"`, `"none"`, `"required"` or `{"type": "function", "function": {"name": ...}}`.
        response_format: `{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {...}}`.
        extra_params: Merged into the provider's request body (JSON Merge Patch, RFC 7396).
        timeout: A deadline in seconds for the whole call, retries and fallbacks included.
    """

    model: Optional[str] = None
    messages: list = attrs.field(factory=list, converter=_messages)
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    stop: Union[str, list, None] = None
    tools: Optional[list] = None
    tool_choice: Union[str, dict, None] = None
    response_format: Optional[dict] = None
    extra_params: dict = attrs.field(factory=dict)
    timeout: Optional[float] = None


@attrs.define
class Usage:
    """Tokens a call used, as the provider reported them.

    Attributes:
        input_tokens: Tokens of the prompt (also `prompt_tokens`).
        output_tokens: Tokens of the answer (also `completion_tokens`).
        total_tokens: Their sum, unless the provider reported another total.
        cached_tokens: Of input_tokens, those read from the provider's prompt cache; None when
            the provider did not say.
        reasoning_tokens: Tokens the model spent thinking (OpenAI's reasoning tokens, Gemini's
            thoughts); None when the provider did not say.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: Optional[int] = None
    cached_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None

    def __attrs_post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)

    # The original library's and OpenAI's names.
    @property
    def prompt_tokens(self) -> int:
        """`input_tokens`, by the original library's and OpenAI's name."""
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        """`output_tokens`, by the original library's and OpenAI's name."""
        return self.output_tokens


@attrs.define
class Attempt:
    """One try of one model during a call: what happened and how long it took.

    Attributes:
        model: The `provider:model` tried.
        kind: The failure's kind (see the guide's failover table); None when it answered.
        status: The HTTP status of a failure, when there was one.
        message: What went wrong, one line (never an API key).
        elapsed: Seconds this try took.
        skipped: True when the model was passed over without a call (circuit breaker,
            a capability it lacks, a full rate limit, a spent budget).
        retry_after: Seconds the provider asked to wait, when it said.
        at: Seconds from the start of the call to the start of this try (or skip).
    """

    model: str
    kind: Optional[str] = None  # None: it answered
    status: Optional[int] = None
    message: str = ""
    elapsed: float = 0.0
    skipped: bool = False
    retry_after: Optional[float] = None
    at: float = 0.0  # seconds from the start of the call to the start of this try (or skip)

    @property
    def ok(self) -> bool:
        """True when this try answered."""
        return self.kind is None and not self.skipped

    def describe(self) -> str:
        """One line for people, e.g. `openai:gpt-4o: rate_limit 429: slow down`."""
        if self.ok:
            return f"{self.model}: ok ({self.elapsed * 1000:.0f} ms)"
        status = f" {self.status}" if self.status else ""
        verb = "skipped" if self.skipped else f"{self.kind}{status}"
        return f"{self.model}: {verb}: {self.message}"


@attrs.define
class LLMResponse:
    """The answer to a call, and how it was reached.

    Attributes:
        content: The answer's visible text ("thinking" is never included).
        model: The `provider:model` that answered.
        alias: The alias asked (None for a direct `provider:model` reference).
        profile: The profile the binding came from (None for a direct reference).
        usage: The tokens used, when the provider reported them.
        cost: The call's cost in USD at the registry's prices, or None (see `cost_note`).
        cost_note: Why `cost` is None, e.g. "the model has no price in the registry".
        finish_reason: `stop`, `length`, `tool_calls` or `content_filter`.
        tool_calls: The `ToolCall`s the model asked for, or None.
        parsed: The parsed JSON answer when `response_format` asked for JSON.
        attempts: Every `Attempt` of the call in order, the answering one last.
        latency: Seconds for the whole call, retries and fallbacks included.
        raw_finish_reason: The provider's own finish reason.
    """

    content: str = ""
    model: str = ""  # provider:model that answered
    alias: Optional[str] = None
    profile: Optional[str] = None
    usage: Optional[Usage] = None
    cost: Optional[float] = None
    cost_note: Optional[str] = None  # why cost is None
    finish_reason: Optional[str] = None
    tool_calls: Optional[list] = None
    parsed: Any = None
    attempts: list = attrs.field(factory=list)
    latency: float = 0.0  # seconds, the whole call
    raw_finish_reason: Optional[str] = None


@attrs.define
class ToolCallDelta:
    """A fragment of a streamed tool call; `index` ties fragments together.

    Attributes:
        index: Which tool call of the answer this fragment belongs to.
        id: The call's id (on its first fragment).
        name: The function's name (on its first fragment).
        arguments: The next piece of the arguments' JSON text.
    """

    index: int
    id: Optional[str] = None
    name: Optional[str] = None
    arguments: str = ""


@attrs.define
class StreamChunk:
    """A piece of a streamed answer. The last chunk has `finish_reason`, `usage`, the
    complete `tool_calls`, the model that answered, and `parsed` structured output.

    Attributes:
        delta: The next piece of the answer's text (also `content`).
        tool_call_deltas: `ToolCallDelta` fragments of tool calls, as they arrive.
        tool_calls: On the final chunk, the complete `ToolCall`s.
        finish_reason: On the final chunk: `stop`, `length`, `tool_calls` or `content_filter`.
        usage: On the final chunk, the tokens used when the provider reported them.
        model: The `provider:model` that answered.
        alias: The alias asked (None for a direct reference).
        cost: On the final chunk, the cost in USD, or None.
        attempts: On the final chunk, every `Attempt` of the call.
        raw_finish_reason: On the final chunk, the provider's own finish reason.
        parsed: On the final chunk, the parsed JSON when structured output was asked for.
    """

    delta: str = ""
    tool_call_deltas: Optional[list] = None
    tool_calls: Optional[list] = None
    finish_reason: Optional[str] = None
    usage: Optional[Usage] = None
    model: Optional[str] = None
    alias: Optional[str] = None
    cost: Optional[float] = None
    attempts: Optional[list] = None
    raw_finish_reason: Optional[str] = None
    parsed: Any = None  # on the final chunk, when structured output was asked for

    @property
    def content(self) -> str:
        """`delta`, by the name `LLMResponse` uses."""
        return self.delta
