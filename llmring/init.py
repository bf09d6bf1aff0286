"""What `llmring lock init` writes: task-named aliases bound to the registry's current models
for the providers whose keys are set, with fallbacks across providers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from . import lockfile as lf_mod
from .exceptions import LockfileError
from .lockfile import Binding, Lockfile

# Task -> (description, requires, candidates per provider, newest first). Candidates are checked
# against the registry at init time: unknown, inactive or deprecated ones are passed over.
ROLES = {
    "assistant": ("General conversation and questions.", [], {
        "anthropic": ["claude-sonnet-5", "claude-sonnet-4-6", "claude-sonnet-4-5-20250929"],
        "openai": ["gpt-5.6-terra", "gpt-5.4", "gpt-4.1"],
        "google": ["gemini-2.5-pro", "gemini-2.5-flash"],
    }),
    "summarizer": ("Short summaries of long text; cheap and quick.", [], {
        "anthropic": ["claude-haiku-4-5-20251001", "claude-sonnet-5"],
        "openai": ["gpt-5.6-luna", "gpt-5.4-mini", "gpt-4.1-mini"],
        "google": ["gemini-2.5-flash-lite", "gemini-2.5-flash"],
    }),
    "extractor": ("Structured data out of text (JSON schema output).", ["json_schema"], {
        "openai": ["gpt-5.6-luna", "gpt-4.1-mini"],
        "google": ["gemini-2.5-flash", "gemini-2.5-flash-lite"],
        "anthropic": ["claude-haiku-4-5-20251001", "claude-sonnet-5"],
    }),
    "code-reviewer": ("Careful reading of code; the strongest models.", [], {
        "anthropic": ["claude-opus-5", "claude-opus-4-5-20251101"],
        "openai": ["gpt-5.6-sol", "gpt-5"],
        "google": ["gemini-2.5-pro"],
    }),
}
# Google's newer generations are still previews in the registry; defaults stay on the stable ones.
KEYS = {"openai": ("OPENAI_API_KEY",), "anthropic": ("ANTHROPIC_API_KEY",),
        "google": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}


def providers_with_keys(env: Optional[Mapping] = None) -> list:
    environ = os.environ if env is None else env
    return [p for p, names in KEYS.items() if any(environ.get(n) for n in names)]


def new_lockfile(env: Optional[Mapping] = None) -> Lockfile:
    """A starter lockfile for the providers whose keys are set; with none, an offline
    `assistant` on the mock provider so a fresh project works at once."""
    from . import registry

    reg = registry.load()
    available = providers_with_keys(env)
    lf = Lockfile.new()
    profile = lf.profiles["default"]
    if not available:
        profile.bindings.append(Binding("assistant", ["mock:echo"], description=(
            "Offline placeholder (no provider key was set): `llmring bind assistant provider:model`.")))
        return lf
    for alias, (description, requires, candidates) in ROLES.items():
        models = []
        for provider in sorted(available, key=list(candidates).index):
            usable = [f"{provider}:{m}" for m in candidates[provider] if _usable(reg.find(f"{provider}:{m}"))]
            models += usable[:1] if len(available) > 1 else usable  # one provider: fall back within it
        if models:
            profile.bindings.append(Binding(alias, models, description, {}, list(requires)))
    profile.registry_versions = {p: reg.version for p in available}
    return lf


def _usable(info: object) -> bool:
    return info is not None and info.active and not info.deprecated()


def create(path: Path, force: bool = False, env: Optional[Mapping] = None) -> Lockfile:
    """Write a new lockfile at `path`; an existing file is kept unless `force`."""
    lf = new_lockfile(env)
    with lf_mod.locked(path):
        if path.exists() and not force:
            raise LockfileError("already exists; pass --force (force=True) to overwrite it", path=str(path))
        lf_mod.write(lf, path)
    return lf
