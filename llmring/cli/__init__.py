"""The `llmring` command (also `llmring-cli`). Exit codes: 0 success, 1 a user error or a
failed call (one clear line on stderr, never a traceback), 2 bad usage, 130 interrupted."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..exceptions import LLMRingError


class _Group(click.Group):
    """Turns llmring's errors into one line on stderr and exit 1 (or the command's own
    `error_exit`: `diff` exits 2, as 1 means "different" there)."""

    def invoke(self, ctx: click.Context) -> Any:
        _show_notices()
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `llmring ... | head`: the reader left; nothing to report
            sys.stderr.close()
            ctx.exit(0)
        except (LLMRingError, ValueError, OSError) as e:
            click.echo(f"Error: {e}", err=True)
            command = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
            ctx.exit(getattr(command, "error_exit", 1))
        except KeyboardInterrupt:
            click.echo("", err=True)
            ctx.exit(130)


def _show_notices() -> None:
    """llmring's notices about its own machinery (a shared state that failed or came back, an
    unusable registry cache) reach the CLI's user as one line each on stderr. A library stays
    silent unless its application configures logging; the CLI is that application. (Failed
    attempts are the commands' own to report.)"""
    import logging

    class ToStderr(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # sys.stderr as it is now, not at set-up
            click.echo(self.format(record), err=True)

    for name in ("llmring.state", "llmring.registry"):
        logger = logging.getLogger(name)
        if not any(type(h).__name__ == "ToStderr" for h in logger.handlers):
            logger.addHandler(ToStderr())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmring")
def cli() -> None:
    """Name what you need from an LLM; llmring.lock maps each alias to models with failover."""


def _register() -> None:
    from . import aliases, batch, chat, diff, explain, lock, models, providers, usage

    for module in (aliases, batch, chat, diff, explain, lock, models, providers, usage):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    try:
        cli.main(prog_name="llmring")
    except KeyboardInterrupt:  # raised outside a command (e.g. while click parses)
        sys.exit(130)
