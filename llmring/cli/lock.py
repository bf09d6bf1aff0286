"""`llmring lock ...`: creating and checking lockfiles."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .common import json_option


@click.group()
def lock() -> None:
    """Create and check llmring.lock."""


@lock.command()
@click.option("--force", is_flag=True, help="Overwrite an existing lockfile.")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Where to write it (default: ./llmring.lock).")
def init(force: bool, file: Optional[str]) -> None:
    """Create a lockfile with a default profile."""
    from ..init import create
    from ..lockfile import FILENAME

    path = Path(file) if file else Path.cwd() / FILENAME
    lf = create(path, force)
    count = sum(len(p.bindings) for p in lf.profiles.values())
    click.echo(f"Created {path} with {count} alias{'es' if count != 1 else ''}:")
    for b in lf.profiles[lf.default_profile].bindings:
        click.echo(f"  {b.alias} → {', '.join(b.models)}")
    click.echo('Bind your own: llmring bind summarizer "openai:gpt-4o-mini,anthropic:claude-3-5-haiku-20241022"')


@lock.command()
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Lockfile to check (default: $LLMRING_LOCKFILE_PATH, then ./llmring.lock).")
@json_option
def validate(file: Optional[str], as_json: bool) -> None:
    """Check a lockfile's structure and bindings."""
    from ..exceptions import LockfileError
    from ..lockfile import locate, read
    from .common import echo_json

    located = locate(file)
    if located.source == "bundled":
        raise LockfileError("no lockfile found here; create one with `llmring lock init` or pass --file",
                            path=str(Path.cwd() / "llmring.lock"))
    lf = read(located.path)
    aliases = sum(len(p.bindings) for p in lf.profiles.values())
    if as_json:
        echo_json({"lockfile": str(located.path), "valid": True, "profiles": sorted(lf.profiles),
                   "aliases": aliases})
        return
    click.echo(f"✓ {located.path} is valid: {len(lf.profiles)} profile{'s' if len(lf.profiles) != 1 else ''}, "
               f"{aliases} binding{'s' if aliases != 1 else ''}.")


COMMANDS = [lock]
