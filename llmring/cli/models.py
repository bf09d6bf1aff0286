"""`llmring list` and `llmring registry ...`: what models there are, at what price."""

from __future__ import annotations

from typing import Any, Optional

import click

from .common import echo_json, json_option


def _money(value: Optional[float]) -> str:
    return "-" if value is None else f"${value:g}"


def _tokens(value: Optional[int]) -> str:
    if not value:
        return "-"
    return f"{value // 1000}k" if value < 1_000_000 else f"{value / 1_000_000:g}M"


def _status(m: Any) -> str:
    if m.deprecated():
        return f"deprecated {m.deprecation_date}" + (f" → {m.successor}" if m.successor else "")
    return "active" if m.active else "inactive"


@click.command("list")
@click.option("--provider", "-P", default=None, help="Only this provider's models (e.g. openai).")
@click.option("--all", "show_all", is_flag=True, help="Include embedding, audio, realtime and image models.")
@click.option("--live", is_flag=True, help="Ask the provider's own models endpoint (uses your API key).")
@json_option
def list_models(provider: Optional[str], show_all: bool, live: bool, as_json: bool) -> None:
    """Models with prices (USD per million tokens), context window and capabilities; active first."""
    from .. import registry

    reg = registry.load()
    if live:
        return _live(provider, reg, as_json)
    if provider and provider not in reg.providers():
        raise click.UsageError(f"The registry knows no provider {provider!r}; it has {', '.join(reg.providers())}.")
    models = [m for m in reg.for_provider(provider) if show_all or m.mode == "chat"]
    if as_json:
        echo_json({"registry": reg.version, "source": reg.source,
                   "models": [{**_fields(m), "ref": m.ref, "deprecated": m.deprecated()} for m in models]})
        return
    click.echo(f"{'model':<44} {'input':>8} {'output':>8} {'context':>8}  capabilities / status")
    for m in models:
        caps = ",".join(c for c in m.capabilities if c in ("tools", "vision", "json_schema", "reasoning"))
        click.echo(f"{m.ref:<44} {_money(m.input_price):>8} {_money(m.output_price):>8} "
                   f"{_tokens(m.context_window):>8}  {caps or '-'}  {_status(m)}")
    click.echo(f"\nregistry {reg.version} ({reg.source}); prices in USD per million tokens", err=True)


def _fields(m: Any) -> dict:
    import attrs

    return attrs.asdict(m)


def _live(provider: Optional[str], reg: Any, as_json: bool) -> None:
    from ..ring import Ring

    if not provider:
        raise click.UsageError("--live needs --provider (e.g. --provider openai).")
    with Ring() as ring:
        try:
            names = sorted(ring.provider(provider).list_models((10.0, 30.0)))
        except NotImplementedError as e:  # the base class's answer for a provider without a models endpoint
            raise click.ClickException(
                f"{e}; `llmring list --provider {provider}` shows what the registry knows.") from None
    if as_json:
        echo_json({"provider": provider, "models": [
            {"ref": f"{provider}:{n}", "in_registry": reg.find(f"{provider}:{n}") is not None} for n in names]})
        return
    for n in names:
        known = reg.find(f"{provider}:{n}")
        click.echo(f"{provider}:{n}" + ("" if known else "  (not in the registry: no price)"))


@click.group()
def registry() -> None:
    """The model registry: show which one is in use, fetch a newer one."""


@registry.command()
@click.option("--url", default=None,
              help="https:// or file:// URL of a registry JSON (default: $LLMRING_REGISTRY_URL).")
def update(url: Optional[str]) -> None:
    """Fetch a newer registry into the user cache (validated; the old one stays on failure)."""
    from .. import registry as reg_mod

    reg = reg_mod.update(url)
    click.echo(f"Registry {reg.version} with {len(reg.models)} models saved to {reg_mod.cache_path()}.")


@registry.command()
@json_option
def info(as_json: bool) -> None:
    """Which registry is in use, its version and size."""
    from .. import registry as reg_mod

    reg = reg_mod.load()
    if as_json:
        echo_json({"version": reg.version, "source": reg.source, "models": len(reg.models),
                   "providers": reg.providers()})
        return
    click.echo(f"registry {reg.version}: {len(reg.models)} models from {reg.source}")


COMMANDS = [list_models, registry]
