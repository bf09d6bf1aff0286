"""Client-side limits: before a try of `provider:model`, take room under the lockfile's
`[limits.provider]` and `[limits."provider:model"]` (both must admit), and honour a cool-down
that a provider's 429 set for the model. The counting is the state's (state.py: in-process or
shared); this module decides how long a call may wait for room.

A call waits for room within its deadline: a model with fallbacks after it waits at most its
share of the time left (half, as the walker gives its tries), the last model all of it, and
without a deadline a call waits as long as it takes (the limits are the user's promise to the
provider). A cool-down is a provider's own "not before": a model with fallbacks waits for it
only as long as the retry policy waits for a Retry-After, since another model answers sooner."""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol

from .state import Limit, State

DEFAULT_OUTPUT_TOKENS = 256  # the answer's share of the estimate when max_tokens is not set
MAX_COOL = 60.0  # a longer Retry-After is a quota, not a rate: cool the model for a minute at most
LEASE_MARGIN = 30.0  # a slot outlives its try by this much before it frees itself
STREAM_LEASE = 600.0  # a stream without a deadline holds its slot at most this long


def estimate(request: Any) -> int:
    """Tokens a request may use: about 4 characters a token for what is sent, plus the answer
    (max_tokens, else a default). The provider's usage corrects it when the call ends."""
    chars = sum(len(m.text()) for m in request.messages)
    if request.tools:
        chars += len(repr(request.tools))
    output = request.max_tokens if request.max_tokens is not None else DEFAULT_OUTPUT_TOKENS
    return chars // 4 + 1 + output


class Hold:
    """The room one try holds: handed back with `release`, once (later calls do nothing)."""

    __slots__ = ("state", "tickets")

    def __init__(self, state: State, tickets: list) -> None:
        self.state, self.tickets = state, tickets

    def release(self, tokens_used: Optional[int] = None) -> None:
        """The try is over; `tokens_used` is the provider's usage when it reported one."""
        self._give_back(None if tokens_used is None else max(1, tokens_used))  # 0 means "never made"

    def forget(self) -> None:
        """The try was never made: as if it had never been admitted."""
        self._give_back(0)

    def _give_back(self, tokens_used: Optional[int]) -> None:
        tickets, self.tickets = self.tickets, []
        for key, ticket in tickets:
            self.state.release(key, ticket, tokens_used)


NOTHING = Hold(None, [])  # type: ignore[arg-type]  # a try under no limit holds nothing


class Timing(Protocol):
    """What a Limiter waits on (the walker): read anew by every `take`, so a clock or sleep
    replaced on the walker after it was made (as tests do) is the limiter's too."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]


class Limiter:
    """`limits()` gives the lockfile's limits for the call (key -> Limit); `timing` gives the
    clock and the sleep."""

    def __init__(self, state: State, limits: Callable[[], dict], timing: Timing) -> None:
        self.state, self.limits, self.timing = state, limits, timing

    def take(self, ref: str, tokens: int, lease: float, patience: Optional[float],
             cool_patience: Optional[float], written: Optional[str] = None) -> tuple:
        """(Hold, "") once `ref` may be called, after waiting if need be; (None, why) when the
        wait would take more than `patience` seconds for a limit, `cool_patience` for a
        cool-down (None: wait as long as it takes). `written`: the name the lockfile gives the
        model when `ref` is its pinned snapshot; `[limits."that name"]` counts it too."""
        limits = self.limits()
        keys = [(key, limits[key]) for key in keys_of(ref, written) if key in limits]
        clock = self.timing.clock
        now = clock()
        give_up = None if patience is None else now + patience
        cool_give_up = None if cool_patience is None else now + cool_patience
        while True:
            cooling = self.state.cooling(ref)
            if cooling > 0:
                wait, until = cooling, cool_give_up
                why = f"the provider asked for a pause (429 with Retry-After) for another {cooling:.1f} s"
            else:
                hold, wait, key = self._admit(keys, tokens, lease)
                if hold is not None:
                    return hold, ""
                until = give_up
                why = (f"{table_name(key)} in the lockfile ({_describe(limits[key])}) leaves no room "
                       f"for another {wait:.1f} s")
            if until is not None and clock() + wait > until:
                return None, f"{why}, longer than this model may wait"
            self.timing.sleep(wait)

    def _admit(self, keys: list, tokens: int, lease: float) -> tuple:
        """(Hold, 0, None) when every key admits, else (None, seconds, the key that refused)."""
        if not keys:
            return NOTHING, 0.0, None
        taken: list = []
        for key, limit in keys:
            wait, ticket = self.state.admit(key, limit, tokens, lease)
            if ticket is None:
                Hold(self.state, taken).forget()  # the call is not made: give back what the others took
                return None, wait, key
            taken.append((key, ticket))
        return Hold(self.state, taken), 0.0, None

    def cool(self, ref: str, seconds: float) -> None:
        """A 429 with Retry-After: hold `ref` for every worker sharing the state. Per model, as
        OpenAI and Anthropic count their limits per model: a 429 for one says nothing of another."""
        self.state.cool(ref, min(seconds, MAX_COOL))


def keys_of(ref: str, written: Optional[str] = None) -> tuple:
    """The [limits.KEY] keys a call to `ref` counts against, in the order they are taken: its
    provider's, its own, and the model id the lockfile names when `ref` is that id's pinned
    snapshot (`written`)."""
    return tuple(dict.fromkeys(key for key in (ref.partition(":")[0], ref, written) if key))


def limits_of(models: list, limits: dict, written_as: Optional[dict] = None) -> dict:
    """The [limits.KEY] tables calls to `models` count against (each model's own first, then
    its provider's), as KEY -> the limits it sets. `written_as`: pinned snapshot -> the id the
    lockfile names (pins.written_as)."""
    from .lockmodel import limit_dict

    written_as = written_as or {}
    keys = (key for ref in models for key in reversed(keys_of(ref, written_as.get(ref))) if key in limits)
    return {key: limit_dict(limits[key]) for key in dict.fromkeys(keys)}


def table_name(key: str) -> str:
    """The lockfile's header of a limit: [limits.openai] or [limits."openai:gpt-4o"]."""
    return f'[limits."{key}"]' if ":" in key else f"[limits.{key}]"


def settings(values: dict) -> str:
    """A limit's values as the lockfile writes them: "rpm = 100, tpm = 20000"."""
    return ", ".join(f"{k} = {v}" for k, v in values.items())


def _describe(limit: Limit) -> str:
    from .lockmodel import limit_dict  # only when a call cannot wait

    return settings(limit_dict(limit))
