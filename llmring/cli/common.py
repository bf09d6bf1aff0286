"""Options and helpers every command shares."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import click

file_option = click.option(
    "--file", "file", type=click.Path(dir_okay=False), default=None,
    help="Lockfile to use (default: $LLMRING_LOCKFILE_PATH, then ./llmring.lock).")
profile_option = click.option(
    "--profile", "-p", default=None,
    help="Profile to use (default: $LLMRING_PROFILE, then the file's default_profile).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def ring_for(file: Any) -> Any:
    from ..ring import Ring

    return Ring(lockfile_path=file)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fallbacks(models: list) -> str:
    """"a:b (+ 2 fallbacks)", as the seed prints an alias."""
    extra = len(models) - 1
    if extra <= 0:
        return models[0]
    return f"{models[0]} (+ {extra} fallback{'s' if extra > 1 else ''})"


def usd(price: Optional[float]) -> str:
    """A price (USD per million tokens, or a budget) as explain and diff print it; "?" unknown."""
    return "?" if price is None else f"${price:,.2f}"


def style(text: str, **styles: Any) -> str:
    """click.style, unless NO_COLOR is set (https://no-color.org): every styled word goes
    through here, so that one switch turns all colour and bold off."""
    return text if os.environ.get("NO_COLOR") else click.style(text, **styles)
