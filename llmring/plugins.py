"""Provider plugins: a pluggy hook, loaded from the `llmring` entry-point group on first use.

A plugin is a module (or object) with a hook implementation:

    from llmring.plugins import hookimpl

    @hookimpl
    def register_providers(register):
        register("foo", FooProvider)   # FooProvider(settings) -> Provider

Built-in providers register through the same entry points; the core names none of them.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import attrs
import pluggy

from .exceptions import ProviderNotFoundError

PROJECT = "llmring"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class _Spec:
    @hookspec
    def register_providers(self, register: Callable[[str, Callable], None]) -> None:
        """Call `register(prefix, factory)` for each provider this plugin adds."""


@attrs.define
class ProviderInfo:
    prefix: str
    factory: Callable
    package: str  # the distribution (or module) that registered it


@attrs.define
class BrokenPlugin:
    name: str
    package: str
    error: str


class PluginRegistry:
    """The installed providers, loaded once per process on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(_Spec)
        self.providers: dict = {}
        self.broken: list = []
        self._extra: list = []

    def register(self, plugin: Any, name: Optional[str] = None) -> None:
        """Add an in-process plugin (a module or object with hook implementations)."""
        with self._lock:
            self._extra.append((plugin, name))
            if self._loaded:
                self._collect(plugin, name or getattr(plugin, "__name__", repr(plugin)))

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            for ep, package in _llmring_entry_points():
                try:
                    plugin = ep.load()
                except Exception as e:  # noqa: BLE001 - one broken plugin must not break the others
                    self.broken.append(BrokenPlugin(ep.name, package, f"{type(e).__name__}: {e}"))
                    continue
                self._collect(plugin, package)
            for plugin, name in self._extra:
                self._collect(plugin, name or getattr(plugin, "__name__", repr(plugin)))
            self._loaded = True

    def _collect(self, plugin: Any, package: str) -> None:
        if self.pm.is_registered(plugin):
            return
        self.pm.register(plugin)
        impl = getattr(plugin, "register_providers", None)
        if impl is None:
            return

        def register(prefix: str, factory: Callable) -> None:
            self.providers[prefix] = ProviderInfo(prefix, factory, package)

        try:
            impl(register=register)
        except Exception as e:  # noqa: BLE001
            self.broken.append(BrokenPlugin(getattr(plugin, "__name__", package), package,
                                            f"{type(e).__name__}: {e}"))

    def get(self, prefix: str) -> ProviderInfo:
        self.load()
        info = self.providers.get(prefix)
        if info is not None:
            return info
        installed = ", ".join(sorted(self.providers)) or "none"
        broken = [b for b in self.broken if b.name == prefix]
        if broken:
            raise ProviderNotFoundError(
                f"The plugin for provider {prefix!r} ({broken[0].package}) failed to load: {broken[0].error}; "
                f"reinstall it. Installed providers: {installed}.")
        raise ProviderNotFoundError(
            f"No provider {prefix!r} is installed (installed: {installed}); "
            f"pip install its plugin (e.g. llmring-{prefix}) or declare [providers.{prefix}] in the lockfile.")


def _llmring_entry_points() -> list:
    """(entry point, distribution name) for the `llmring` group. Walking distributions gives
    the package's name on every Python (EntryPoint.dist is 3.10+); the first of a name on
    sys.path wins, as importlib.metadata.entry_points() does."""
    from importlib.metadata import distributions

    found, seen = [], set()
    for dist in distributions():
        eps = [ep for ep in dist.entry_points if ep.group == PROJECT]
        if not eps:
            continue
        name = dist.metadata["Name"] or "?"  # read only for the few distributions that matter
        key = name.lower().replace("_", "-")
        if key not in seen:
            seen.add(key)
            found += [(ep, name) for ep in eps]
    return found


registry = PluginRegistry()
