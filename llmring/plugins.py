"""Provider plugins: the plugin manager, loading the `llmring` entry-point group on first use.

A plugin is a module (or object) with a hook implementation (the hooks: llmring.hookspecs):

    from llmring.plugins import hookimpl

    @hookimpl
    def register_providers(register):
        register("foo", FooProvider)   # FooProvider(settings) -> Provider

Built-in providers register through the same entry points; the core names none of them.
pluggy imports and registers the entry points (and names each one's package); each plugin is
then checked and asked for its providers inside its own guard: a plugin that fails any step
is listed in `broken` and the others work. `serving` is the one rule for which installed
provider serves a prefix, with or without a lockfile `[providers.NAME]` table.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional

import attrs
import pluggy

from . import hookspecs
from .exceptions import ProviderNotFoundError
from .hookspecs import PROJECT, hookimpl, hookspec
from .refs import ref_problem

__all__ = ["PROJECT", "BrokenPlugin", "PluginRegistry", "ProviderInfo", "hookimpl", "hookspec",
           "registry"]


@attrs.define
class ProviderInfo:
    prefix: str
    factory: Callable
    package: str  # the distribution (or module) that registered it

    def make(self, prefix: str, endpoint: Any = None, **settings: Any) -> Any:
        """The provider for `prefix`, set up from its lockfile `endpoint` when it has one;
        `settings` are ProviderSettings fields (env, session)."""
        from .provider import ProviderSettings

        return self.factory(ProviderSettings.of(prefix, endpoint, **settings))


@attrs.define
class BrokenPlugin:
    name: str  # the entry point's name (or the in-process plugin's)
    package: str
    error: str


class PluginError(Exception):
    """A plugin that loaded but cannot be used; the message says why, in one sentence."""


class PluginRegistry:
    """The installed providers, loaded once per process on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.providers: dict = {}
        self.broken: list = []
        self._extra: list = []

    def forked(self) -> None:
        """In a child after fork: a thread loading plugins in the parent does not exist here,
        so its lock is made anew, and a half-done load is started again from the beginning."""
        self._lock = threading.Lock()
        if not self._loaded:
            extra = self._extra
            self.__init__()  # type: ignore[misc]
            self._extra = extra

    def register(self, plugin: Any, name: Optional[str] = None) -> None:
        """Add an in-process plugin (a module or object with hook implementations)."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        with self._lock:
            self._extra.append((plugin, name))
            if self._loaded:
                self._add(name, name, lambda: plugin)
        from . import observe

        observe.reset()  # the plugin may observe calls

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._load_entry_points()
            for plugin, name in self._extra:
                self._add(name, name, lambda p=plugin: p)
            self._loaded = True

    def _load_entry_points(self) -> None:
        """pluggy imports and registers the entry points and says which package each came from
        (`list_plugin_distinfo`). Its loader stops at the first that fails to import or that it
        refuses, so after a failure the rest are loaded one name per call, each in its own
        guard (a failed module is imported a second time then, to find which one it was)."""
        found = _entry_points()
        try:
            self.pm.load_setuptools_entrypoints(PROJECT)  # the usual case: one walk of the packages
        except Exception:  # noqa: BLE001 - charged to its plugin below
            self._load_one_by_one(found)
        for plugin, dist in self.pm.list_plugin_distinfo():
            name, package = self.pm.get_name(plugin), dist.project_name
            # pluggy loads the first entry point of a name and skips the rest: say so.
            for other in found.get(name, [])[1:]:
                if _package(other) != package:  # (Python 3.9 lists a shadowed copy of one package too)
                    self._broken(name, _package(other), PluginError(
                        f"its entry point is named {name!r}, as {package}'s is, and only the first of a name "
                        "is loaded; uninstall one of the two."))
            self._add(name, package, lambda p=plugin: p)

    def _load_one_by_one(self, found: dict) -> None:
        done = {self.pm.get_name(p) for p, _ in self.pm.list_plugin_distinfo()}
        modules = {found[name][0].value for name in done if name in found}
        for name, eps in found.items():
            if name in done or eps[0].value in modules:
                continue  # loaded, or the same module under a second name: its providers come in once
            modules.add(eps[0].value)
            try:
                self._forget(name)  # the one the first walk failed on, if pluggy kept it half way
                self.pm.load_setuptools_entrypoints(PROJECT, name=name)
            except Exception as e:  # noqa: BLE001 - one broken plugin must not break the others
                self._forget(name)
                self._broken(name, _package(eps[0]), e)

    def _forget(self, name: str) -> None:
        """Unregister `name` if registered: pluggy before 1.6 could leave a plugin it refused
        registered half way."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    def _add(self, name: str, package: str, load: Callable[[], Any]) -> None:
        """Register (unless pluggy did), check and collect one plugin; any failure makes it a
        BrokenPlugin and unregisters it."""
        plugin = None
        try:
            plugin = load()
            if self.pm.get_plugin(name) is not plugin:
                if self.pm.is_registered(plugin):
                    return  # the same object under a second name: its providers are in already
                self.pm.register(plugin, name=name)
            self._check_hooks(plugin)
            found = self._collect(plugin, package)
            taken = {prefix: self.providers[prefix].package for prefix in found if prefix in self.providers}
            if taken:  # first come, first served: a second plugin never silently takes a prefix over
                raise PluginError("it registers " + ", ".join(f"{p!r}, which {pkg} provides already"
                                                               for p, pkg in sorted(taken.items()))
                                  + "; uninstall one of the two.")
            self.providers.update(found)
        except Exception as e:  # noqa: BLE001 - one broken plugin must not break the others
            if plugin is not None and self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._broken(name, package, e)

    def _broken(self, name: str, package: str, e: Exception) -> None:
        error = str(e) if isinstance(e, PluginError) else f"{type(e).__name__}: {e}"
        error = " ".join(error.split())
        self.broken.append(BrokenPlugin(name, package, error if error.endswith(".") else error + "."))

    def _check_hooks(self, plugin: Any) -> None:
        callers = self.pm.get_hookcallers(plugin) or []
        unknown = sorted(c.name for c in callers if not c.has_spec())
        if unknown:
            raise PluginError(f"it implements {', '.join(unknown)}, which is not an llmring hook "
                              f"(known: {', '.join(self.hook_names())}).")
        if not callers:
            marker = ("its register_providers is not marked with @hookimpl (from llmring.plugins import hookimpl)"
                      if callable(getattr(plugin, "register_providers", None)) else "it implements no llmring hook")
            raise PluginError(f"{marker}, so it adds no provider.")

    def hook_names(self) -> list:
        return sorted(name for name, caller in vars(self.pm.hook).items() if caller.has_spec())

    def _collect(self, plugin: Any, package: str) -> dict:
        """The providers `plugin` registers, asked through pluggy's hook (this plugin's
        implementation only, so a failure is charged to the right plugin)."""
        found: dict = {}

        def register(prefix: str, factory: Callable) -> None:
            if not isinstance(prefix, str) or ":" in prefix or ref_problem(f"{prefix}:m") or not callable(factory):
                raise PluginError(f"it called register({prefix!r}, {factory!r}); register needs a prefix of "
                                  "lower-case letters, digits, '-' or '_' and a callable that makes the provider.")
            found[prefix] = ProviderInfo(prefix, factory, package)

        others = [p for p in self.pm.get_plugins() if p is not plugin]
        self.pm.subset_hook_caller("register_providers", remove_plugins=others)(register=register)
        return found

    def get(self, prefix: str) -> ProviderInfo:
        """The installed provider named `prefix`; ProviderNotFoundError saying why not."""
        info, _ = self.serving(prefix, {})
        if info is None:
            raise self.not_found(prefix)
        return info

    def serving(self, prefix: str, endpoints: Mapping) -> tuple:
        """(info, endpoint) for calls to `prefix`, the one place this rule is written: a lockfile's
        `[providers.X]` table (in `endpoints`) is served by the installed provider of its type;
        without one, X is the installed provider named X. info is None when that provider is
        not installed (`missing` says why); endpoint is None when the lockfile declares none."""
        self.load()
        endpoint = endpoints.get(prefix)
        return self.providers.get(prefix if endpoint is None else endpoint.type), endpoint

    def missing(self, prefix: str, endpoint: Any = None, where: Any = None) -> str:
        """Why no installed provider serves `prefix` (whose lockfile endpoint, if any, is in
        `where`) and what to do, as a clause for a table or a finding: the plugin that failed to
        load, or what is installed and what to pip install."""
        self.load()
        name = prefix if endpoint is None else endpoint.type
        what = (f"provider {prefix!r}" if endpoint is None else
                f"type {name!r} of [providers.{prefix}]" + (f" in {where}" if where else ""))
        installed = ", ".join(sorted(self.providers)) or "none"
        failed = [b for b in self.broken if b.name == name]
        if failed:
            return (f"the plugin for {what} ({failed[0].package}) failed to load ({failed[0].error.rstrip('.')}); "
                    f"fix or reinstall it (installed: {installed})")
        fix = f"pip install its plugin (e.g. llmring-{name})"
        fix += f" or declare [providers.{prefix}] in the lockfile" if endpoint is None else ""
        others = "".join(f"; plugin {b.name!r} ({b.package}) failed to load and may be the one "
                         f"({b.error.rstrip('.')})" for b in self.broken)
        return f"{what} is not installed (installed: {installed}); {fix}{others}"

    def not_found(self, prefix: str, endpoint: Any = None, where: Any = None) -> ProviderNotFoundError:
        """`missing` as the error a call raises."""
        text = self.missing(prefix, endpoint, where)
        return ProviderNotFoundError(text[0].upper() + text[1:] + ".")


def _entry_points() -> dict:
    """The `llmring` group's entry points by name, each name's in sys.path order (the order
    pluggy loads them in; a package found twice on sys.path counts once from Python 3.10)."""
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group=PROJECT)
    except TypeError:  # Python 3.9: a dict of every group
        eps = entry_points().get(PROJECT, ())
    found: dict = {}
    for ep in eps:
        found.setdefault(ep.name, []).append(ep)
    return found


def _package(ep: Any) -> str:
    """The distribution an entry point comes from (on Python 3.9, where an entry point does not
    know it, the top-level module it names)."""
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"] if dist is not None else None) or ep.value.split(":")[0].split(".")[0]


registry = PluginRegistry()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: registry.forked())
