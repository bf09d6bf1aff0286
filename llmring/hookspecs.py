"""The hooks a plugin may implement (pluggy project and entry-point group `llmring`).

```python
from llmring.plugins import hookimpl   # (or llmring.hookspecs)

@hookimpl
def register_providers(register):
    register("foo", FooProvider)       # FooProvider(settings) -> Provider
```
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "llmring"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""The decorator for a plugin's hook functions, e.g. `@hookimpl def register_providers(register)`."""


@hookspec
def register_providers(register: Callable[[str, Callable], None]) -> None:
    """Call `register(prefix, factory)` for each provider prefix this plugin adds. `factory`
    is called with a `ProviderSettings` and returns a `Provider` (usually the class itself)."""


@hookspec
def call_finished(record: Any) -> None:
    """Called once per finished chat or stream (answered or failed) with a
    `llmring.record.CallRecord`: the same record the usage log stores. Called after the call,
    off its result: an exception here is logged once and never reaches the caller. Keep it
    quick (hand slow work to a thread)."""
