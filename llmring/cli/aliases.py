"""bind, unbind, aliases, resolve: reading and editing an alias's models."""

from __future__ import annotations

from typing import Any, Optional

import click

from .common import echo_json, fallbacks, file_option, json_option, profile_option, ring_for


@click.command()
@click.argument("alias")
@click.argument("models")
@profile_option
@file_option
@click.option("--description", "-d", default=None, help="What the alias is for (kept in the lockfile).")
def bind(alias: str, models: str, profile: Optional[str], file: Optional[str], description: Optional[str]) -> None:
    """Bind ALIAS to MODELS: provider:model, or several comma-separated (primary first)."""
    ring = ring_for(file)
    binding = ring.bind_alias(alias, models, profile=profile, description=description)
    from .. import registry
    from ..checks import check_model

    reg = registry.load()
    for ref in binding.models:
        for finding in check_model(ref, reg):
            click.echo(f"Warning: {finding.message}", err=True)
    name = ring.active_profile(profile)
    click.echo(f"{alias} → {fallbacks(binding.models)}  (profile {name}, {ring.lockfile_path})")


@click.command()
@click.argument("alias")
@profile_option
@file_option
def unbind(alias: str, profile: Optional[str], file: Optional[str]) -> None:
    """Remove ALIAS from a profile."""
    ring = ring_for(file)
    ring.unbind_alias(alias, profile=profile)
    click.echo(f"Removed {alias} from profile {ring.active_profile(profile)} ({ring.lockfile_path})")


def _rows(ring: Any, profile: Optional[str]) -> tuple:
    return ring.active_profile(profile), list(ring.resolver.view(profile).values())


@click.command()
@profile_option
@file_option
@click.option("--verbose", "-v", is_flag=True, help="Show every model, the profile each alias comes from, and details.")
@json_option
def aliases(profile: Optional[str], file: Optional[str], verbose: bool, as_json: bool) -> None:
    """List the aliases of a profile (with those it inherits from the profiles it extends and
    from the default profile; --verbose says which)."""
    from ..limits import settings, table_name

    ring = ring_for(file)
    name, rows = _rows(ring, profile)
    if as_json:
        echo_json({"lockfile": str(ring.lockfile_path), "profile": name,
                   "aliases": [_binding_json(b, source, ring.lockfile.limits) for b, source in rows]})
        return
    if not rows:
        click.echo(f"No aliases in profile {name} ({ring.lockfile_path}). "
                   "Add one with: llmring bind ALIAS provider:model", err=True)
        return
    width = max(len(b.alias) for b, _ in rows)
    for b, source in rows:
        if not verbose:
            click.echo(f"{b.alias} → {fallbacks(b.models)}")
            continue
        inherited = f"  [from {source}]" if source != name else ""
        click.echo(f"{b.alias.ljust(width)} → {', '.join(b.models)}{inherited}")
        limits = "; ".join(f"{table_name(k)} {settings(d) or 'sets none'}"
                           for k, d in _limits(b, ring.lockfile.limits).items())
        for label, value in (("description", b.description), ("requires", ", ".join(b.requires)),
                             ("params", ", ".join(f"{k}={v}" for k, v in b.params.items())), ("limits", limits)):
            if value:
                click.echo(f"{' ' * width}   {label}: {value}")
    if verbose:
        click.echo(f"\nprofile {name} · {ring.lockfile_path} ({ring.lockfile_source})")


def _binding_json(b: Any, source: str, limits: dict) -> dict:
    from ..lockfile import converter

    return {**converter().unstructure(b), "profile": source, "limits": _limits(b, limits)}


def _limits(b: Any, limits: dict) -> dict:
    """The [limits.*] tables a call to this binding counts against (its pinned snapshots too)."""
    from ..limits import limits_of
    from ..pins import called_models, written_as

    return limits_of(called_models(b), limits, written_as(b))


@click.command()
@click.argument("alias")
@profile_option
@file_option
@json_option
def resolve(alias: str, profile: Optional[str], file: Optional[str], as_json: bool) -> None:
    """Show which model ALIAS resolves to, and from which profile and file."""
    ring = ring_for(file)
    res = ring.resolve(alias, profile)
    if as_json:
        echo_json({"alias": alias, "model": res.models[0], "models": res.models, "profile": res.profile,
                   "lockfile": str(ring.lockfile_path), "lockfile_source": ring.lockfile_source})
        return
    click.echo(f"{alias} → {fallbacks(res.models)}")
    if len(res.models) > 1:
        click.echo(f"  fallbacks: {', '.join(res.models[1:])}")
    if res.profile:
        click.echo(f"  profile:   {res.profile}")
        click.echo(f"  lockfile:  {ring.lockfile_path} ({ring.lockfile_source})")


COMMANDS = [bind, unbind, aliases, resolve]
