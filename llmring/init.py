"""What `llmring lock init` writes."""

from __future__ import annotations

from .lockfile import Binding, Lockfile


def new_lockfile() -> Lockfile:
    """A starter lockfile. Its `assistant` alias answers offline through the mock provider,
    so a fresh project works at once; bind real models with `llmring bind`."""
    lf = Lockfile.new()
    lf.profiles["default"].bindings.append(
        Binding("assistant", ["mock:echo"],
                description="Offline placeholder: replace with `llmring bind assistant provider:model`."))
    return lf
