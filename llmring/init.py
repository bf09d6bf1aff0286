"""What `llmring lock init` writes."""

from __future__ import annotations

from pathlib import Path

from . import lockfile as lf_mod
from .exceptions import LockfileError
from .lockfile import Binding, Lockfile


def new_lockfile() -> Lockfile:
    """A starter lockfile. Its `assistant` alias answers offline through the mock provider,
    so a fresh project works at once; bind real models with `llmring bind`."""
    lf = Lockfile.new()
    lf.profiles["default"].bindings.append(
        Binding("assistant", ["mock:echo"],
                description="Offline placeholder: replace with `llmring bind assistant provider:model`."))
    return lf


def create(path: Path, force: bool = False) -> Lockfile:
    """Write a new lockfile at `path`; an existing file is kept unless `force`."""
    lf = new_lockfile()
    with lf_mod.locked(path):
        if path.exists() and not force:
            raise LockfileError("already exists; pass --force (force=True) to overwrite it", path=str(path))
        lf_mod.write(lf, path)
    return lf
