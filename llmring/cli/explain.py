"""`llmring explain ALIAS`: why an alias calls what it calls (llmring.explain renders the data)."""

from __future__ import annotations

from typing import Any, Optional

import click

from .common import echo_json, file_option, json_option, profile_option, ring_for, usd

_LABELS = {"tools": "tools", "images": "images", "json_schema": "a JSON schema"}


@click.command()
@click.argument("alias")
@profile_option
@file_option
@json_option
def explain(alias: str, profile: Optional[str], file: Optional[str], as_json: bool) -> None:
    """Explain ALIAS: its models in the order they are tried, where its binding comes from, and
    for each model the provider and key (whether set, never the value), capabilities, context
    window, prices, pin, limits, and which requests would skip it. Exit 1 if ALIAS is unbound."""
    ex = ring_for(file).explain(alias, profile)
    if as_json:
        echo_json(ex.to_dict())
        return
    for line in render(ex):
        click.echo(line)


def render(ex: Any) -> list:
    """The explanation as lines of text."""
    from ..limits import settings, table_name

    lines = [f"{ex.alias}{_origin(ex)}", f"  lockfile: {ex.lockfile} ({ex.lockfile_source})"]
    for label, value in (("description", ex.description), ("requires", ", ".join(ex.requires)),
                         ("params", ", ".join(f"{k}={v}" for k, v in ex.params.items())),
                         ("budget", _budget(ex.budget))):
        if value:
            lines.append(f"  {label}: {value}")
    for i, m in enumerate(ex.models, 1):
        lines.append(f"{i}. {m.ref}")
        lines.append(f"     provider: {_provider(m)}")
        lines.append(f"     registry: {_registry(m)}")
        if m.pinned and m.pinned != m.ref:  # a dated id is pinned to itself: nothing to say
            lines.append(f"     pinned:   calls {m.pinned}")
        for key, values in m.limits.items():
            lines.append(f"     limits:   {table_name(key)} {settings(values)}")
        if m.lacks_required:
            lines.append(f"     skipped:  always, it lacks {m.lacks_required}, which the binding requires")
    for kind, refs in ex.skips().items():
        lines.append(f"A request needing {_LABELS[kind]} would skip: {', '.join(refs) or 'none'}")
    return lines


def _budget(budget: Any) -> str:
    if budget is None:
        return ""
    spans = (("a day", budget.usd_per_day), ("a month", budget.usd_per_month))
    return ", ".join(f"{usd(amount)} {span}" for span, amount in spans if amount is not None)


def _origin(ex: Any) -> str:
    if not ex.chain:
        return "  (a provider:model reference, not an alias)"
    where = f"profile {ex.profile}"
    if ex.origin != ex.profile:
        where += f", from {ex.origin}"
    looked = f"; looked up in {' → '.join(ex.chain)}" if len(ex.chain) > 1 else ""
    return f"  ({where}{looked})"


def _provider(m: Any) -> str:
    if not m.installed:
        return f"NOT INSTALLED: {m.problem}"
    if not m.key_env:
        key = "no key needed"
    else:
        key = f"key {' or '.join(m.key_env)} {'is set' if m.key_set else 'is NOT set'}"
    return f"{m.provider} ({m.package}), installed, {key}"


def _registry(m: Any) -> str:
    if not m.known:
        return "not in the registry (capabilities unknown: tried for every request; cost unknown)"
    parts = []
    if m.context_window:
        parts.append(f"context {m.context_window:,} tokens")
    if m.max_output:
        parts.append(f"max output {m.max_output:,}")
    if m.input_price is not None or m.output_price is not None:
        parts.append(f"{usd(m.input_price)} in / {usd(m.output_price)} out per 1M tokens")
    if m.deprecated:
        parts.append(f"DEPRECATED since {m.deprecated}")
    elif not m.active:
        parts.append("NO LONGER ACTIVE")
    parts.append(f"capabilities: {', '.join(m.capabilities) or 'none listed'}")
    return "; ".join(parts)


COMMANDS = [explain]
