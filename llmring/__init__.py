"""llmring: name what you need from an LLM; a lockfile maps it to models with failover.

    from llmring import Ring
    with Ring() as ring:
        print(ring.chat("summarizer", "Summarise: ...").content)

`import llmring` loads nothing else: each name below is imported on first use (attrs for
the types; requests, plugins and the rest only when a call needs them).
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (3 ms) at start-up
__version__ = "0.1.0"

__all__ = ["AliasNotFoundError", "AllModelsFailedError", "AsyncRing", "Attempt", "BadRequestError",
           "BudgetExceededError", "CircuitBreaker", "ConfigurationError", "ContentFilterError", "ContextLengthError",
           "InvalidOutputError", "LLMRequest", "LLMResponse", "LLMRing", "LLMRingError", "LockfileError",
           "Message", "MissingAliasesError", "ModelNotFoundError", "NoModelAvailableError",
           "ProviderAuthenticationError", "ProviderConnectionError", "ProviderError",
           "ProviderModelNotFoundError", "ProviderNotConfiguredError", "ProviderNotFoundError",
           "ProviderOverloadedError", "ProviderRateLimitError", "ProviderResponseError",
           "ProviderServerError", "ProviderTimeoutError", "RetryPolicy", "Ring", "Stream", "StreamChunk",
           "StreamInterruptedError", "ToolCall", "UnsupportedFeatureError", "Usage", "__version__"]

# name -> module it is imported from on first use; every *Error is in exceptions.
_LAZY = {
    "Ring": "ring", "Stream": "stream", "AsyncRing": "aio", "LLMRing": "aio",
    "RetryPolicy": "failover", "CircuitBreaker": "failover",
    "Attempt": "types", "LLMRequest": "types", "LLMResponse": "types", "Message": "types",
    "StreamChunk": "types", "ToolCall": "types", "Usage": "types",
    **{name: "exceptions" for name in __all__ if name.endswith("Error")},
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these load lazily
    from .aio import AsyncRing, LLMRing
    from .exceptions import (
        AliasNotFoundError,
        AllModelsFailedError,
        BadRequestError,
        BudgetExceededError,
        ConfigurationError,
        ContentFilterError,
        ContextLengthError,
        InvalidOutputError,
        LLMRingError,
        LockfileError,
        MissingAliasesError,
        ModelNotFoundError,
        NoModelAvailableError,
        ProviderAuthenticationError,
        ProviderConnectionError,
        ProviderError,
        ProviderModelNotFoundError,
        ProviderNotConfiguredError,
        ProviderNotFoundError,
        ProviderOverloadedError,
        ProviderRateLimitError,
        ProviderResponseError,
        ProviderServerError,
        ProviderTimeoutError,
        StreamInterruptedError,
        UnsupportedFeatureError,
    )
    from .failover import CircuitBreaker, RetryPolicy
    from .ring import Ring
    from .stream import Stream
    from .types import Attempt, LLMRequest, LLMResponse, Message, StreamChunk, ToolCall, Usage


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmring' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
