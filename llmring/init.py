"""What `llmring lock init` writes: task-named aliases bound to the registry's current models
for the providers whose keys are set, with fallbacks across providers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from . import lockfile as lf_mod
from .exceptions import LockfileError
from .lockfile import Binding, Lockfile

# Task -> (description, requires). The models come from each installed provider whose key is
# set: its class attribute `starter_models` = {task: [model, ...]} (newest first), checked
# against the registry at init time (unknown, inactive or deprecated ones, and ones lacking a
# capability the task requires, are passed over). The core names no provider or model.
ROLES = {
    "assistant": ("General conversation and questions.", []),
    "summarizer": ("Short summaries of long text; cheap and quick.", []),
    "extractor": ("Structured data out of text (JSON schema output).", ["json_schema"]),
    "code-reviewer": ("Careful reading of code; the strongest models.", []),
}


def _factories() -> dict:
    """prefix -> factory of every installed provider, in prefix order."""
    from .plugins import registry

    registry.load()
    return {prefix: info.factory for prefix, info in sorted(registry.providers.items())}


def providers_with_keys(env: Optional[Mapping] = None) -> list:
    """Installed providers that need an API key and have one set, in prefix order."""
    environ = os.environ if env is None else env
    return [prefix for prefix, factory in _factories().items()
            if any(environ.get(name) for name in getattr(factory, "key_envs", None) or ())]


def providers_without_keys() -> list:
    """Installed providers that need no API key but do reach a model (a local server such as
    Ollama's), in prefix order; not the offline stand-ins."""
    return [prefix for prefix, factory in _factories().items()
            if not (getattr(factory, "key_envs", None) or getattr(factory, "offline", False))]


def new_lockfile(env: Optional[Mapping] = None) -> Lockfile:
    """A starter lockfile for the providers whose keys are set. With several providers, each
    task gets the best usable model of each, primary first in prefix order (a stable order:
    reorder with `llmring bind`); with one, its usable models in turn. With no key set, the
    providers that answer offline (`offline = True`: the mock) stand in, so a new project runs
    at once, each binding saying how to bind a real model."""
    from . import registry

    reg = registry.load()
    factories = _factories()
    available = providers_with_keys(env)
    offline = not available
    if offline:
        available = [prefix for prefix, factory in factories.items() if getattr(factory, "offline", False)]
    lf = Lockfile.new()
    profile = lf.profiles["default"]
    for alias, (description, requires) in ROLES.items():
        pools = [pool for pool in (_starters(reg, p, factories[p], alias, requires) for p in available) if pool]
        models = [pool[0] for pool in pools] if len(pools) > 1 else [m for pool in pools for m in pool]
        if models:
            note = f"Offline placeholder (no provider key was set): `llmring bind {alias} provider:model`."
            profile.bindings.append(Binding(alias, models, note if offline else description, {}, list(requires)))
    if not offline:
        profile.registry_versions = {p: reg.version for p in available}
    return lf


def _starters(reg: Any, prefix: str, factory: Any, task: str, requires: list) -> list:
    """The provider's starter models for `task` that the registry says are usable."""
    starters = getattr(factory, "starter_models", None)
    names = starters.get(task, []) if isinstance(starters, Mapping) else []
    known = prefix in reg.providers()  # a plugin's models the registry has never heard of are taken as given
    refs = [f"{prefix}:{name}" for name in names]
    return [ref for ref in refs if not known or _usable(reg.find(ref), requires)]


def _usable(info: Any, requires: list) -> bool:
    return (info is not None and info.active and not info.deprecated()
            and not (info.capabilities and any(not info.has(cap) for cap in requires)))


def create(path: Path, force: bool = False, env: Optional[Mapping] = None) -> Lockfile:
    """Write a new lockfile at `path`; an existing file is kept unless `force`."""
    lf = new_lockfile(env)
    with lf_mod.locked(path):
        if path.exists() and not force:
            raise LockfileError("already exists; pass --force (force=True) to overwrite it", path=str(path))
        lf_mod.write(lf, path)
    return lf
