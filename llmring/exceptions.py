"""Every exception llmring raises. A provider's failure carries a `kind` that decides whether
the same model is tried again and whether the call fails over to the next model (KINDS maps
each kind to those two answers); names follow the original llmring, so `except` clauses
carry over."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "AliasNotFoundError",
    "AllModelsFailedError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigurationError",
    "ContentFilterError",
    "ContextLengthError",
    "InvalidOutputError",
    "LLMRingError",
    "LockfileError",
    "MissingAliasesError",
    "ModelNotFoundError",
    "NoModelAvailableError",
    "ProviderAuthenticationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderModelNotFoundError",
    "ProviderNotConfiguredError",
    "ProviderNotFoundError",
    "ProviderOverloadedError",
    "ProviderRateLimitError",
    "ProviderResponseError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "StreamInterruptedError",
    "UnsupportedFeatureError",
]

# kind -> (retry the same model?, fail over to the next model?)
KINDS = {
    "not_configured": (False, True),
    "rate_limit": (True, True),  # only when Retry-After is short; see failover.py
    "overloaded": (True, True),
    "server": (True, True),
    "timeout": (True, True),
    "connection": (True, True),
    "auth": (False, True),
    "not_found": (False, True),
    "context_length": (False, True),
    "content_filter": (False, True),
    "unsupported": (False, True),
    "invalid_output": (False, True),  # answered, but not in the shape asked for
    "bad_request": (False, False),
}


class LLMRingError(Exception):
    """Base class of every llmring error."""


class ConfigurationError(LLMRingError, ValueError):
    """Something in the setup is wrong (environment, arguments)."""


class LockfileError(ConfigurationError):
    """The lockfile cannot be found, read, parsed or validated. The message starts with
    `path:line:` where those are known.

    Attributes:
        path (Optional[str]): The lockfile's path, when the error is about a file.
        line (Optional[int]): The line of the problem, when known.
        key (Optional[str]): The TOML key at fault, when known.
    """

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None,
                 key: Optional[str] = None) -> None:
        self.path, self.line, self.key = path, line, key
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)


class MissingAliasesError(ConfigurationError):
    """A lockfile lacks aliases a library requires (`Ring.require_aliases`).

    Attributes:
        missing (list): The aliases the lockfile lacks.
        path (Optional[str]): The lockfile that was read.
    """

    def __init__(self, message: str, missing: list, path: Optional[str] = None) -> None:
        self.missing, self.path = missing, path
        super().__init__(message)

    def __reduce__(self) -> tuple:
        return type(self), (self.args[0], self.missing, self.path), self.__dict__


class ModelNotFoundError(LLMRingError, LookupError):
    """An alias or model could not be found."""

    kind = "not_found"


class AliasNotFoundError(ModelNotFoundError):
    """The alias is not bound in the lockfile (nor in its default profile)."""


class ProviderNotFoundError(LLMRingError, LookupError):
    """No installed provider has that prefix."""

    kind = "not_configured"


class ProviderError(LLMRingError):
    """A provider failed to answer. `kind` says how, and so whether the call tries the same
    model again or the next one (the guide's failover table); each kind has its subclass below.

    Attributes:
        kind (str): The failure kind, e.g. `rate_limit`, `server`, `auth`, `bad_request`.
        message (str): What went wrong, one line (never an API key).
        provider (Optional[str]): The provider prefix, e.g. `openai`.
        model (Optional[str]): The model asked, when known.
        status (Optional[int]): The HTTP status, when there was one.
        retry_after (Optional[float]): Seconds the provider asked to wait, when it said.
    """

    kind = "server"

    def __init__(self, message: str, *, provider: Optional[str] = None, model: Optional[str] = None,
                 status: Optional[int] = None, retry_after: Optional[float] = None,
                 kind: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider, self.model, self.status, self.retry_after = provider, model, status, retry_after
        if kind is not None:
            self.kind = kind


class ProviderNotConfiguredError(ProviderError):
    """The provider cannot be used here: not installed, or its API key variable is unset (kind `not_configured`)."""

    kind = "not_configured"


class ProviderAuthenticationError(ProviderError):
    """The provider refused the API key: 401, 403 or its own equivalent (kind `auth`)."""

    kind = "auth"


class ProviderRateLimitError(ProviderError):
    """The provider said slow down: 429, or a rate limit in the lockfile is full (kind `rate_limit`)."""

    kind = "rate_limit"


class ProviderOverloadedError(ProviderError):
    """The provider is overloaded (Anthropic's 529, "model overloaded"), or the circuit breaker
    rests the model (kind `overloaded`)."""

    kind = "overloaded"


class ProviderServerError(ProviderError):
    """The provider failed on its side: 500, 502, 503 and the like (kind `server`)."""

    kind = "server"


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time, or the call's deadline passed (kind `timeout`)."""

    kind = "timeout"


class ProviderConnectionError(ProviderError):
    """The provider could not be reached: connection refused or reset, a DNS failure (kind `connection`)."""

    kind = "connection"


class ProviderModelNotFoundError(ProviderError, ModelNotFoundError):
    """The provider does not know the model (kind `not_found`)."""

    kind = "not_found"


class ContextLengthError(ProviderError):
    """The prompt is longer than the model's context window (kind `context_length`)."""

    kind = "context_length"


class ContentFilterError(ProviderError):
    """The provider's safety system refused the request or the answer (kind `content_filter`)."""

    kind = "content_filter"


class UnsupportedFeatureError(ProviderError):
    """The model cannot do what the request asks: tools, images, a JSON schema (kind `unsupported`)."""

    kind = "unsupported"


class InvalidOutputError(ProviderError):
    """The model answered, but not in the shape the request asked for (e.g. JSON schema)."""

    kind = "invalid_output"


class ProviderResponseError(ProviderError):
    """The provider rejected the request as malformed; failover would not help."""

    kind = "bad_request"


class BadRequestError(ProviderResponseError, ConfigurationError):
    """The caller's own request is wrong (a NaN temperature, an unknown tool_choice, a malformed
    message): raised before any network call, never counted against a model. It is both a
    ProviderResponseError (kind "bad_request") and a ConfigurationError (a ValueError)."""


class StreamInterruptedError(ProviderError):
    """A stream broke after its first chunk, so it could not fail over.

    Attributes:
        partial (str): The text received before the break.
    """

    def __init__(self, message: str, *, partial: str = "", **kw) -> None:
        super().__init__(message, **kw)
        self.partial = partial


_BY_KIND = {
    cls.kind: cls
    for cls in (ProviderNotConfiguredError, ProviderAuthenticationError, ProviderRateLimitError,
                ProviderOverloadedError, ProviderServerError, ProviderTimeoutError, ProviderConnectionError,
                ProviderModelNotFoundError, ContextLengthError, ContentFilterError, UnsupportedFeatureError,
                InvalidOutputError, ProviderResponseError)
}


def error_for_kind(kind: str, message: str, **kw) -> ProviderError:
    """The ProviderError subclass for `kind`, built with `message` and keyword details."""
    if kind not in KINDS:
        raise ValueError(f"unknown failure kind {kind!r}")
    return _BY_KIND[kind](message, **kw)


class AllModelsFailedError(LLMRingError):
    """No model of an alias could answer. `attempts` lists each try; `kind` is the last
    failure's. What is raised is a subclass that is also the ProviderError class of that
    kind, so `except ProviderRateLimitError` still catches a walk that ended rate limited;
    when no model was configured, installed or found, it is also a ModelNotFoundError.

    Attributes:
        target (str): The alias or `provider:model` that was asked.
        attempts (list): Every `Attempt`, in order.
        kind (str): The last failure's kind.
        message (str): One line per attempt, after a summary line.
        provider (Optional[str]): The last failed attempt's provider prefix.
        model (Optional[str]): The last failed attempt's `provider:model`.
        status (Optional[int]): The last failed attempt's HTTP status, when it had one.
        retry_after (Optional[float]): The last failed attempt's Retry-After, when it had one.
    """

    kind = "not_configured"

    def __init__(self, target: str, attempts: list) -> None:
        self.target, self.attempts = target, attempts
        last = next((a for a in reversed(attempts) if a.kind), None)
        self.kind = last.kind if last else "not_configured"
        self.status = last.status if last else None
        self.retry_after = getattr(last, "retry_after", None)
        self.provider = last.model.partition(":")[0] if last else None
        self.model = last.model if last else None
        lines = "\n".join("  - " + a.describe() for a in attempts)
        self.message = f"No model could answer for {target!r}; tried {len(attempts)}:\n{lines}"
        Exception.__init__(self, self.message)

    def __reduce__(self) -> tuple:
        return type(self), (self.target, self.attempts), self.__dict__


def _all_failed_class(name: str, *bases: type) -> type:
    # Module-level names, so pickle and copy find each class again by its qualified name.
    cls = type(name, (AllModelsFailedError, *bases), {"__module__": __name__, "__qualname__": name,
                                                       "__doc__": AllModelsFailedError.__doc__})
    globals()[name] = cls
    return cls


_ALL_FAILED = {kind: _all_failed_class(f"AllModelsFailed_{kind}", cls) for kind, cls in _BY_KIND.items()}
# Every model unavailable because none is configured, installed or found: the seed's
# "could not resolve alias to an available model", caught by `except ModelNotFoundError`.
NoModelAvailableError = _all_failed_class("NoModelAvailableError", ProviderNotConfiguredError, ModelNotFoundError)
"""The `AllModelsFailedError` raised when no model of the alias is configured, installed or
found: it is also a `ProviderNotConfiguredError` and a `ModelNotFoundError`."""
_UNAVAILABLE = frozenset({"not_configured", "not_found"})


def all_failed(target: str, attempts: list) -> AllModelsFailedError:
    """An AllModelsFailedError that is also the ProviderError class of the last failure's kind."""
    kinds = [a.kind for a in attempts if a.kind]
    if not kinds or set(kinds) <= _UNAVAILABLE and kinds[-1] == "not_configured":
        return NoModelAvailableError(target, attempts)
    return _ALL_FAILED[kinds[-1]](target, attempts)


class BudgetExceededError(AllModelsFailedError):
    """No model answered and the alias's budget held back at least one paid model: the alias
    has spent `spent` USD of its `budget` for the `period` ("day" or "month", UTC), which
    resets at `resets_at` (an aware UTC datetime). `attempts` lists every model, the ones
    held back as skipped attempts of kind "budget". `lockfile` names the file to raise it in."""

    kind = "budget"

    def __init__(self, target: str, attempts: list, spent: float, budget: float, period: str,
                 resets_at: object, lockfile: str = "llmring.lock") -> None:
        super().__init__(target, attempts)
        self.kind = "budget"
        self.spent, self.budget, self.period, self.resets_at, self.lockfile = spent, budget, period, resets_at, lockfile
        adjective = "daily" if period == "day" else "monthly"
        when = resets_at.strftime("%Y-%m-%d %H:%M UTC")  # type: ignore[attr-defined]
        lines = "\n".join("  - " + a.describe() for a in attempts)
        self.message = (f"{target} has spent ${spent:.2f} of its ${budget:.2f} {adjective} budget; it resets at "
                        f"{when}. Raise budget.usd_per_{period} in {lockfile} or wait.\n"
                        f"Tried {len(attempts)}:\n{lines}")
        Exception.__init__(self, self.message)

    def __reduce__(self) -> tuple:
        return type(self), (self.target, self.attempts, self.spent, self.budget, self.period, self.resets_at,
                            self.lockfile), self.__dict__
