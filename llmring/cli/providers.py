"""`llmring providers`: what is installed, and what is ready to use."""

from __future__ import annotations

from typing import Optional

import click

from .common import echo_json, file_option, json_option


@click.command()
@file_option
@json_option
def providers(file: Optional[str], as_json: bool) -> None:
    """List provider prefixes, the package of each, and whether it is configured."""
    from ..lockfile import locate, read
    from ..plugins import registry
    from ..provider import ProviderSettings

    registry.load()
    rows = []
    for prefix, info in sorted(registry.providers.items()):
        problem = info.factory(ProviderSettings.of(prefix)).configuration_problem()
        rows.append({"prefix": prefix, "package": info.package, "ready": problem is None, "problem": problem})
    located = locate(file)
    if located.source != "bundled":
        for name, e in sorted(read(located.path).providers.items()):
            info = registry.providers.get(e.type)
            problem = None if info else f"type {e.type!r} is not an installed provider"
            if info:
                problem = info.factory(ProviderSettings.of(name, e)).configuration_problem()
            rows.append({"prefix": name, "package": f"{located.path.name} ({e.type} endpoint {e.base_url})",
                         "ready": problem is None, "problem": problem})
    broken = [{"name": b.name, "package": b.package, "error": b.error} for b in registry.broken]
    if as_json:
        echo_json({"providers": rows, "broken": broken})
        return
    width = max((len(r["prefix"]) for r in rows), default=0)
    for r in rows:
        state = "ready" if r["ready"] else f"not configured: {r['problem']}"
        click.echo(f"{r['prefix'].ljust(width)}  {r['package']}  {state}")
    for b in broken:
        click.echo(f"{b['name'].ljust(width)}  {b['package']}  BROKEN: {b['error']}")


COMMANDS = [providers]
