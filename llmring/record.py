"""CallRecord: what one finished call did, as the usage log stores it and observers receive it.

Made once per call by the Ring (after a chat, at the end of a stream, or when no model could
answer), never on the way: building it costs a few microseconds and no I/O. Prompt and answer
text are left out unless the user opted in (LLMRING_USAGE_TEXT=on)."""

from __future__ import annotations

from typing import Any, Optional

import attrs


@attrs.frozen
class CallRecord:
    """One finished chat or stream, as the `call_finished` hook receives it and the usage log
    stores it. Times are seconds; `started_at` is Unix time. It pickles.

    Attributes:
        started_at: When the call started (Unix time).
        elapsed: How long it took; a stream: until its last chunk, or until it was closed or broke.
        alias: The alias asked; None for a `provider:model` call.
        profile: The profile the binding came from.
        lockfile: The path of the lockfile in use.
        stream: Whether it was a stream.
        model: The `provider:model` that answered; None when none did.
        attempts: Every `Attempt`, in order, each with `at` (seconds from the start).
        input_tokens: As the provider reported them; None when it did not.
        output_tokens: As the provider reported them; None when it did not.
        cached_tokens: As the provider reported them; None when it did not.
        reasoning_tokens: As the provider reported them; None when it did not.
        cost: USD; None when the price is unknown (`cost_note` says why), never 0 for unknown.
        cost_note: Why `cost` is None.
        finish_reason: `stop`, `length`, `tool_calls` or `content_filter`.
        first_chunk: A stream: seconds until its first chunk.
        error_kind: Why the call failed (no model answered, or a stream broke); None for a success.
        prompt: The messages as JSON, only when the user set `LLMRING_USAGE_TEXT=on`.
        answer: The answer text, only when the user set `LLMRING_USAGE_TEXT=on`.
    """

    started_at: float
    elapsed: float  # the whole call; a stream: until its last chunk (or until it was closed)
    alias: Optional[str]  # None when called with a provider:model reference
    profile: Optional[str]
    lockfile: Optional[str]  # the path of the lockfile in use
    stream: bool
    model: Optional[str]  # the provider:model that answered (None: none did)
    attempts: tuple  # every Attempt, in order, each with `at` (seconds from the start)
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cached_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    cost: Optional[float] = None  # USD; None when unknown (see cost_note), never 0 for unknown
    cost_note: Optional[str] = None
    finish_reason: Optional[str] = None
    first_chunk: Optional[float] = None  # a stream: seconds until its first chunk
    error_kind: Optional[str] = None  # why the call failed (no model answered, or a stream broke)
    prompt: Optional[str] = None  # JSON of the messages, only when LLMRING_USAGE_TEXT=on
    answer: Optional[str] = None  # only when LLMRING_USAGE_TEXT=on

    @property
    def provider(self) -> Optional[str]:
        """The prefix of `model` (None when no model answered)."""
        return self.model.partition(":")[0] if self.model else None

    @property
    def failovers(self) -> int:
        """Models given up on before the one that answered (or all of them, when none did)."""
        tried = []
        for a in self.attempts:
            if a.model not in tried:
                tried.append(a.model)
        return len(tried) - (1 if self.model else 0)


def make(started_at: float, elapsed: float, res: Any, *, stream: bool, model: Optional[str] = None,
         attempts: Any = (), usage: Any = None, cost: Optional[float] = None, cost_note: Optional[str] = None,
         finish_reason: Optional[str] = None, first_chunk: Optional[float] = None,
         error_kind: Optional[str] = None, request: Any = None, answer: Optional[str] = None) -> CallRecord:
    """The record of a call to `res` (a resolve.Resolution)."""
    from .observe import keep_text

    text = keep_text()
    return CallRecord(
        started_at, elapsed, res.alias, res.profile, _path(res.lockfile), stream, model, tuple(attempts or ()),
        _tokens(usage, "input_tokens"), _tokens(usage, "output_tokens"), _tokens(usage, "cached_tokens"),
        _tokens(usage, "reasoning_tokens"), cost, cost_note, finish_reason, first_chunk, error_kind,
        _messages(request) if text and request is not None else None, answer if text else None)


def _tokens(usage: Any, name: str) -> Optional[int]:
    return getattr(usage, name, None) if usage is not None else None


def _path(lockfile: Any) -> Optional[str]:
    return None if lockfile is None else str(lockfile)


def _messages(request: Any) -> str:
    import json  # only with LLMRING_USAGE_TEXT=on

    return json.dumps([attrs.asdict(m) for m in request.messages], default=str, ensure_ascii=False)
