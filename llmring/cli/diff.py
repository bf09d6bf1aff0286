"""`llmring diff`: what changed between two profiles, or two versions of a lockfile
(llmring.lockdiff computes it). Exit codes as diff's: 0 equal, 1 different, 2 an error."""

from __future__ import annotations

from typing import Any, Optional

import click

from .common import echo_json, json_option, usd


@click.command()
@click.argument("files", nargs=-1, metavar="[OLD NEW]")
@click.option("--profile", "-p", "profiles", multiple=True,
              help="Twice (--profile staging --profile prod): compare two profiles of one lockfile. "
                   "Once with OLD NEW: compare only that profile.")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="The lockfile whose two profiles are compared (default: $LLMRING_LOCKFILE_PATH, then "
                   "./llmring.lock).")
@json_option
def diff(files: tuple, profiles: tuple, file: Optional[str], as_json: bool) -> None:
    """Show what changed: between two profiles (--profile A --profile B), or between two
    lockfiles OLD and NEW ("-" reads one from stdin, e.g. `git show HEAD~1:llmring.lock |
    llmring diff - llmring.lock`). Per alias: models added, removed or reordered, changed
    params, requires, description (and any other binding field), the primary model's price
    per 1M tokens, and the profile each binding comes from. Exit 0 equal, 1 different, 2 error."""
    result = _compare(files, profiles, file)
    if as_json:
        echo_json(result.to_dict())
    else:
        for line in render(result):
            click.echo(line)
    raise SystemExit(0 if result.equal else 1)


def _compare(files: tuple, profiles: tuple, file: Optional[str]) -> Any:
    from .. import lockdiff

    if not files and len(profiles) == 2:
        from ..store import LockfileStore

        store = LockfileStore(file)
        store.own()
        return lockdiff.compare_profiles(store.current(), *profiles)
    if len(files) == 2 and len(profiles) <= 1 and files != ("-", "-") and not file:
        import sys

        old, new = (lockdiff.read_side(f, sys.stdin.buffer) for f in files)
        return lockdiff.compare_files(old, new, *files, profile=profiles[0] if profiles else None)
    raise click.UsageError("give two profiles (--profile A --profile B) or two lockfiles (OLD NEW, one of "
                           "them - for stdin), e.g. llmring diff --profile staging --profile prod")


def render(d: Any) -> list:
    """The diff as lines of text: a line per alias (+ added, - removed, ~ changed) and the
    details of a change under it."""
    if d.equal:
        return [f"No differences between {d.old} and {d.new}."]
    lines = [f"--- {d.old}", f"+++ {d.new}"]
    if d.default_profile:
        lines.append(f"default_profile: {d.default_profile[0]} → {d.default_profile[1]}")
    for p in d.profiles:
        lines.append(f"profile {p.new}:" if p.old == p.new else f"profiles {p.old} → {p.new}:")
        if p.status != "changed":
            lines.append(f"  (the profile is {p.status})")
        if p.extends:
            lines.append(f"  extends: {p.extends[0] or '(nothing)'} → {p.extends[1] or '(nothing)'}")
        for c in p.aliases:
            lines += _alias_lines(c)
    return lines


def _alias_lines(c: Any) -> list:
    if c.status == "added":
        return [f"+ {c.alias} → {', '.join(c.new_models)}{_from(c.new_origin)}{_price_note(c.new_price)}"]
    if c.status == "removed":
        return [f"- {c.alias} (was {', '.join(c.old_models)}){_from(c.old_origin)}{_price_note(c.old_price)}"]
    lines = [f"~ {c.alias}"]
    if c.old_models != c.new_models:
        lines.append(f"    models: {', '.join(c.old_models)} → {', '.join(c.new_models)}")
    lines += [f"    + {m}" for m in c.added] + [f"    - {m}" for m in c.removed]
    if c.reordered:
        lines.append("    reordered: the models both have are tried in another order")
    lines += [f"    {name}: {_pin(old, new) if name == 'pin' else _show(old) + ' → ' + _show(new)}"
              for name, (old, new) in c.fields.items()]
    if c.old_price or c.new_price:
        lines.append(f"    price per 1M tokens (in/out): {_price(c.old_price)} → {_price(c.new_price)}")
    if c.old_origin != c.new_origin:
        lines.append(f"    comes from: profile {c.old_origin} → profile {c.new_origin}")
    return lines


def _from(origin: Optional[str]) -> str:
    return f"  [from {origin}]" if origin else ""


def _price_note(p: Any) -> str:
    return f"  ({_price(p)} per 1M tokens in/out)" if p else ""


def _price(p: Any) -> str:
    if p is None:
        return "unknown"
    return f"{p.model} {usd(p.input)}/{usd(p.output)}"


def _pin(old: Any, new: Any) -> str:
    """A pin change in brief (--json has it all): its hash and registry on each side."""
    def brief(pin: Any) -> str:
        return "(not pinned)" if not pin else f"{pin['hash']} (registry {pin['registry']}, {pin['pinned_at']})"

    return f"{brief(old)} → {brief(new)}"


def _show(value: Any) -> str:
    import json

    return "(none)" if value in (None, "", [], {}) else json.dumps(value, ensure_ascii=False, default=str)


diff.error_exit = 2  # type: ignore[attr-defined]  # like diff(1): 1 means the two differ

COMMANDS = [diff]
