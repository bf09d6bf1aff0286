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
    keeps the provider's text when it was not valid JSON."""

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
    {"type": "text", "text": ...}, {"type": "image_url", "image_url": {"url": ...}}
    (a data: URL carries base64)."""

    role: str = attrs.field(validator=_check_role)
    content: Union[str, list, None] = ""
    tool_calls: Optional[list] = attrs.field(default=None, converter=_tool_calls)
    tool_call_id: Optional[str] = None
    name: Optional[str] = None
    metadata: Optional[dict] = None

    @classmethod
    def coerce(cls, value: Union[Message, dict]) -> Message:
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
    """What to ask: `model` is an alias or a `provider:model` reference."""

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
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: Optional[int] = None

    def __attrs_post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)

    # The original library's and OpenAI's names.
    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens


@attrs.define
class Attempt:
    """One try of one model during a call: what happened and how long it took."""

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
        return self.kind is None and not self.skipped

    def describe(self) -> str:
        if self.ok:
            return f"{self.model}: ok ({self.elapsed * 1000:.0f} ms)"
        status = f" {self.status}" if self.status else ""
        verb = "skipped" if self.skipped else f"{self.kind}{status}"
        return f"{self.model}: {verb}: {self.message}"


@attrs.define
class LLMResponse:
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
    """A fragment of a streamed tool call; `index` ties fragments together."""

    index: int
    id: Optional[str] = None
    name: Optional[str] = None
    arguments: str = ""


@attrs.define
class StreamChunk:
    """A piece of a streamed answer. The last chunk has `finish_reason`, `usage`, the
    complete `tool_calls`, the model that answered, and `parsed` structured output."""

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
        return self.delta
