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
    click.echo('Bind your own: llmring bind summarizer "anthropic:claude-haiku-4-5-20251001,openai:gpt-4.1-mini"')


@lock.command()
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Lockfile to check (default: $LLMRING_LOCKFILE_PATH, then ./llmring.lock).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1), e.g. in CI.")
@json_option
def validate(file: Optional[str], strict: bool, as_json: bool) -> None:
    """Check a lockfile's structure and bindings: unknown, deprecated or inactive models,
    providers not installed, missing keys, aliases without fallbacks, required capabilities.
    Exit 1 on errors (and, with --strict, on warnings)."""
    from ..checks import check
    from ..exceptions import LockfileError
    from ..lockfile import locate, read
    from .common import echo_json

    located = locate(file)
    if located.source == "bundled":
        raise LockfileError("no lockfile found here; create one with `llmring lock init` or pass --file",
                            path=str(Path.cwd() / "llmring.lock"))
    lf = read(located.path)
    findings = check(lf)
    errors = [f for f in findings if f.level == "error" or strict]
    aliases = sum(len(p.bindings) for p in lf.profiles.values())
    if as_json:
        echo_json({"lockfile": str(located.path), "valid": not errors, "profiles": sorted(lf.profiles),
                   "aliases": aliases, "findings": [
                       {"level": f.level, "profile": f.profile, "alias": f.alias, "model": f.model,
                        "message": f.message} for f in findings]})
    else:
        for f in findings:
            click.echo(str(f), err=True)
        verdict = "has errors" if errors else "is valid"
        click.echo(f"{'✗' if errors else '✓'} {located.path} {verdict}: {len(lf.profiles)} "
                   f"profile{'s' if len(lf.profiles) != 1 else ''}, {aliases} binding{'s' if aliases != 1 else ''}, "
                   f"{sum(f.level == 'error' for f in findings)} errors, "
                   f"{sum(f.level == 'warning' for f in findings)} warnings.")
    if errors:
        raise SystemExit(1)


COMMANDS = [lock]
