"""llmring: name what you need from an LLM; a lockfile maps it to models with failover.

    from llmring import Ring
    with Ring() as ring:
        print(ring.chat("summarizer", "Summarise: ...").content)

Only attrs loads at import; requests, plugins and the rest load on first use.
"""

from __future__ import annotations

from typing import Any

from .types import Attempt, LLMRequest, LLMResponse, Message, StreamChunk, ToolCall, Usage

__version__ = "0.1.0"

__all__ = [
    "AsyncRing", "Attempt", "LLMRequest", "LLMResponse", "LLMRing", "Message", "Ring", "StreamChunk",
    "ToolCall", "Usage", "__version__",
]

_LAZY = {"Ring": "ring", "AsyncRing": "aio", "LLMRing": "aio"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmring' has no attribute {name!r}")
