"""`llmring providers`: what is installed, where each prefix sends its key, and what is ready."""

from __future__ import annotations

from typing import Any, Optional

import click

from .common import echo_json, file_option, json_option


@click.command()
@file_option
@json_option
def providers(file: Optional[str], as_json: bool) -> None:
    """List provider prefixes: the package of each, the base URL its calls (and key) go to,
    the key variable it reads, and whether it is configured."""
    from ..plugins import registry
    from ..store import LockfileStore
    from ..trust import endpoint_warnings

    registry.load()
    store = LockfileStore(file)
    endpoints = store.current().providers if store.source != "bundled" else {}
    # A [providers.X] table replaces an installed X for every call: show only what calls use.
    rows = [_row(prefix, info, info.package) for prefix, info in sorted(registry.providers.items())
            if prefix not in endpoints]
    for name, e in sorted(endpoints.items()):
        info, _ = registry.serving(name, endpoints)
        row = _row(name, info, f"{store.path.name} ({e.type} endpoint)", e)
        rows.append({**row, "warnings": endpoint_warnings(name, e, registry.providers)})
    broken = [{"name": b.name, "package": b.package, "error": b.error} for b in registry.broken]
    if as_json:
        echo_json({"providers": rows, "broken": broken})
        return
    _print(rows, broken)


def _row(prefix: str, info: Any, package: str, endpoint: Any = None) -> dict:
    """One prefix: where its calls and key go, and whether it is ready (info None: the type of
    its endpoint is not installed)."""
    from ..plugins import registry

    row = {"prefix": prefix, "package": package, "base_url": endpoint.base_url if endpoint else None,
           "key_env": [endpoint.api_key_env] if endpoint and endpoint.api_key_env else [], "warnings": []}
    if info is None:
        return {**row, "ready": False, "problem": registry.missing(prefix, endpoint)}
    try:
        provider = info.make(prefix, endpoint)
        problem = provider.configuration_problem() if hasattr(provider, "configuration_problem") else None
        row.update(base_url=getattr(provider, "base_url", None) or None,
                   key_env=list(provider.key_env_names()) if hasattr(provider, "key_env_names") else [])
    except Exception as e:  # noqa: BLE001 - a plugin's bug is shown on its row, not as a traceback
        problem = f"its provider cannot be set up ({type(e).__name__}: {e})"
    return {**row, "ready": problem is None, "problem": problem}


def _print(rows: list, broken: list) -> None:
    cells = [(r["prefix"], r["package"], r["base_url"] or "-", " or ".join(r["key_env"]) or "(no key)",
              "ready" if r["ready"] else f"not configured: {r['problem']}") for r in rows]
    widths = [max((len(c[i]) for c in cells), default=0) for i in range(4)]
    for r, c in zip(rows, cells):
        click.echo("  ".join(text.ljust(w) for text, w in zip(c, widths)) + "  " + c[4])
        for warning in r["warnings"]:
            click.echo(f"  warning: {warning}")
    for b in broken:
        click.echo(f"{b['name'].ljust(widths[0])}  {b['package']}  BROKEN: {b['error']}")


COMMANDS = [providers]
