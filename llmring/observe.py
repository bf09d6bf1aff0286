"""Observers: who hears of each finished call (a record.CallRecord).

The built-in sinks (named in BUILTIN, each a module's `sink()` returning a callable or None
when it is off) and every plugin implementing the `call_finished` hook. Each is called in its
own guard: an observer that raises is logged once and never fails or changes the call. The
sinks are found on the first finished call, so `import llmring` pays nothing for them."""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any, Callable, Optional

# "module:function" of the built-in sinks; each returns a callable(record) or None when off.
BUILTIN: tuple = (
    "llmring.usage:sink",
    "llmring.otel:sink",
)

ENV_TEXT = "LLMRING_USAGE_TEXT"

_lock = threading.Lock()
_sinks: Optional[list] = None
_complained: set = set()


def keep_text() -> bool:
    """Whether the user opted in to recording prompt and answer text (LLMRING_USAGE_TEXT=on)."""
    return os.environ.get(ENV_TEXT, "").strip().lower() in ("1", "on", "true", "yes")


def call_finished(*args: Any, **kwargs: Any) -> None:
    """Make a finished call's record (record.make's arguments) and tell every observer. The
    record module loads on the first finished call, not at `import llmring`."""
    from .record import make

    finished(make(*args, **kwargs))


def finished(record: Any) -> None:
    """Tell every observer about a finished call."""
    for name, sink in _sinks if _sinks is not None else _load():
        try:
            sink(record)
        except Exception as e:  # noqa: BLE001 - an observer must never fail the call it observes
            _complain(name, e)


def flush() -> None:
    """Ask the sinks that buffer (the usage log) to write what they hold; Ring.close calls it."""
    for _name, sink in _sinks or ():
        flush_sink = getattr(sink, "flush", None)
        if flush_sink is not None:
            try:
                flush_sink()
            except Exception as e:  # noqa: BLE001
                _complain(_name, e)


def reset() -> None:
    """Find the sinks again on the next call (after the environment or the plugins changed)."""
    global _sinks
    with _lock:
        _sinks = None
        _complained.clear()


def _load() -> list:
    global _sinks
    with _lock:
        if _sinks is None:
            _sinks = _builtin() + _plugin_sinks()
        return _sinks


def _builtin() -> list:
    found = []
    for spec in BUILTIN:
        module, _, function = spec.partition(":")
        try:
            sink = getattr(importlib.import_module(module), function)()
        except Exception as e:  # noqa: BLE001
            _complain(spec, e)
            continue
        if sink is not None:
            found.append((spec, sink))
    return found


def _plugin_sinks() -> list:
    """Each plugin's `call_finished`, called on its own (pluggy would stop at the first raise)."""
    from .plugins import registry

    registry.load()
    return [(impl.plugin_name, _caller(impl)) for impl in registry.pm.hook.call_finished.get_hookimpls()]


def _caller(impl: Any) -> Callable:
    function, wants = impl.function, bool(impl.argnames)  # pluggy lets an impl take fewer arguments
    return lambda record: function(record=record) if wants else function()


def _complain(name: str, error: BaseException) -> None:
    if name in _complained:
        return
    _complained.add(name)
    from .walker import _log

    _log("llmring.observe").warning("llmring: the call observer %s failed (%s: %s); calls go on, "
                                    "and this is said once.", name, type(error).__name__, error)
