"""`provider:model` references and alias names."""

from __future__ import annotations

import re

import attrs

# Used with fullmatch: a "$" anchor would let a trailing newline through.
_PROVIDER = re.compile(r"[a-z][a-z0-9_-]*")
ALIAS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


@attrs.frozen
class ModelRef:
    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Split at the FIRST colon: `ollama:llama3:8b` is provider `ollama`, model `llama3:8b`."""
        problem = ref_problem(text)
        if problem:
            raise ValueError(problem)
        provider, _, model = text.strip().partition(":")
        return cls(provider, model)

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


# The common case at once: a lockfile of thousands of bindings checks every reference.
PLAIN_REF = re.compile(r"[a-z][a-z0-9_-]*:\S+")


def ref_problem(text: object) -> str:
    """Why `text` is not a valid model reference, or "" when it is."""
    if isinstance(text, str) and PLAIN_REF.fullmatch(text):
        return ""
    if not isinstance(text, str):
        return f"a model reference must be a string like openai:gpt-4o-mini, not {type(text).__name__}"
    text = text.strip()
    if ":" not in text:
        hint = f"e.g. openai:{text}" if text else "e.g. openai:gpt-4o-mini"
        return f"model reference {text!r} has no provider; use provider:model, {hint}"
    provider, _, model = text.partition(":")
    if not _PROVIDER.fullmatch(provider):
        return (f"model reference {text!r} has an invalid provider {provider!r}; "
                "a provider is lower-case letters, digits, '-' or '_'")
    if not model or any(c.isspace() for c in model):
        return f"model reference {text!r} needs a model name without spaces after the colon"
    return ""


def alias_problem(name: object) -> str:
    """Why `name` is not a valid alias, or "" when it is."""
    if not isinstance(name, str) or not name:
        shown = "an empty string" if name == "" else f"{type(name).__name__} {name!r}"[:60]
        return f"an alias must be a non-empty string such as summarizer, not {shown}"
    if ":" in name:
        return f"alias {name!r} contains a colon; aliases name a task (e.g. summarizer), models are provider:model"
    if not ALIAS_NAME.fullmatch(name):
        return (f"alias {name!r} is not a valid name; use letters, digits, '-', '_', '.' or '/' "
                "with no spaces (e.g. code-reviewer)")
    return ""


def is_ref(text: str) -> bool:
    """A string with a colon is a model reference; without one, an alias."""
    return ":" in text


def split_refs(value: object) -> list:
    """"a:b,c:d", ["a:b", "c:d"] or "a:b" -> ["a:b", "c:d"] (not validated)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    raise TypeError(f"models must be a string or a list of strings, not {type(value).__name__}")
