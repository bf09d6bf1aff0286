"""`llmring lock ...`: creating, checking and (with an advisor) configuring lockfiles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click

from .common import json_option, style


@click.group()
def lock() -> None:
    """Create, check and configure llmring.lock."""


@lock.command()
@click.option("--force", is_flag=True, help="Overwrite an existing lockfile.")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Where to write it (default: $LLMRING_LOCKFILE_PATH, then ./llmring.lock).")
def init(force: bool, file: Optional[str]) -> None:
    """Create a lockfile with a default profile."""
    from ..init import create
    from ..store import write_target

    path = write_target(file)
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
@click.option("--frozen", is_flag=True,
              help="Also exit 1 when a binding no longer resolves to what `llmring lock pin` recorded "
                   "(edited since, price, context window or snapshot changed, model deprecated, not pinned).")
@click.option("--profile", "-p", default=None, help="With --frozen, check this profile's pins only (default: all).")
@json_option
def validate(file: Optional[str], strict: bool, frozen: bool, profile: Optional[str], as_json: bool) -> None:
    """Check a lockfile's structure and bindings: unknown, deprecated or inactive models,
    providers not installed, missing keys, aliases without fallbacks, required capabilities;
    with --frozen, its pins against the registry in use. Exit 1 on errors (with --strict, on
    warnings too; with --frozen, on anything changed since pinned)."""
    from .. import registry
    from ..checks import check
    from ..pins import drift
    from ..store import LockfileStore
    from .common import echo_json

    store = LockfileStore(file)
    path = store.own()
    lf = store.current()
    findings = check(lf)
    reg = registry.load()
    drifts = drift(lf, reg, profile) if frozen else []
    errors = [f for f in findings if f.level == "error" or strict]
    aliases = sum(len(p.bindings) for p in lf.profiles.values())
    if as_json:
        echo_json({"lockfile": str(path), "valid": not errors and not drifts, "profiles": sorted(lf.profiles),
                   "aliases": aliases, "findings": [
                       {"level": f.level, "profile": f.profile, "alias": f.alias, "model": f.model,
                        "message": f.message} for f in findings],
                   **({"registry": reg.version, "frozen": [attrs_dict(d) for d in drifts]} if frozen else {})})
    else:
        for f in findings:
            click.echo(str(f), err=True)
        for d in drifts:
            click.echo(str(d), err=True)
        verdict = "is valid"
        if errors:
            verdict = "has errors" if any(f.level == "error" for f in findings) else "fails --strict"
        elif drifts:
            verdict = f"fails --frozen (registry {reg.version})"
        counts = [(len(lf.profiles), "profile"), (aliases, "binding"),
                  (sum(f.level == "error" for f in findings), "error"),
                  (sum(f.level == "warning" for f in findings), "warning")]
        counts += [(len(drifts), "pin problem")] if frozen else []
        click.echo(f"{'✗' if errors or drifts else '✓'} {path} {verdict}: "
                   f"{', '.join(_count(n, word) for n, word in counts)}.")
    if errors or drifts:
        raise SystemExit(1)


def attrs_dict(value: Any) -> dict:
    import attrs

    return attrs.asdict(value)


@lock.command()
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Lockfile to pin (default: $LLMRING_LOCKFILE_PATH, then ./llmring.lock).")
@click.option("--profile", "-p", default=None, help="Pin this profile's bindings only (default: every profile).")
@json_option
def pin(file: Optional[str], profile: Optional[str], as_json: bool) -> None:
    """Record in the lockfile, for every model of every binding, what the registry in use says
    now: the dated snapshot a floating id stands for (which calls then use), prices, context
    window, the registry version, and a hash of the binding. `lock validate --frozen` checks them."""
    from .. import registry
    from ..pins import drift
    from ..pins import pin as pin_lockfile
    from ..store import LockfileStore
    from .common import echo_json

    store = LockfileStore(file)
    path = store.own()
    reg = registry.load()
    changed = store.edit(lambda lf: pin_lockfile(lf, reg, profile), create=False)
    lf = store.current()
    pinned = [(p, lf.profiles[p].get(a)) for p, a in changed]
    warnings = drift(lf, reg, profile)
    if as_json:
        echo_json({"lockfile": str(path), "registry": reg.version,
                   "pinned": [{"profile": p, "alias": b.alias, **attrs_dict(b.pin)} for p, b in pinned],
                   "warnings": [attrs_dict(d) for d in warnings]})
        return
    total = sum(len(lf.profile(p).bindings) for p in ([profile] if profile else lf.profiles))
    if not pinned:
        click.echo(f"All {_count(total, 'binding')} already pinned to registry {reg.version}; nothing changed.")
    else:
        click.echo(f"Pinned {_count(len(pinned), 'binding')} in {path} to registry {reg.version}:")
    for p, b in pinned:
        click.echo(f"  {p}/{b.alias}  {b.pin.hash}")
        for m in b.pin.models:
            click.echo(f"    {_pinned_model(m)}")
    for d in warnings:
        click.echo(f"warning: {d}; `lock validate --frozen` fails until that is resolved", err=True)


def _pinned_model(m: Any) -> str:
    from ..pins import tokens, usd

    if m.input is None and m.output is None and m.context_window is None:
        return f"{m.model}  (not in the registry: called as written)"
    called = f"{m.model} → {m.snapshot}" if m.snapshot and m.snapshot != m.model else m.model
    return f"{called}  {usd(m.input)} / {usd(m.output)} per 1M in/out, {tokens(m.context_window)} tokens"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@lock.command()
@click.option("--model", "-m", default=None,
              help="Alias or provider:model for the advisor (default: llmring's bundled `advisor` alias); "
                   "your lockfile's aliases and endpoints are tried first.")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Lockfile to configure (default: $LLMRING_LOCKFILE_PATH, then ./llmring.lock); "
                   "created when the first change is applied.")
def chat(model: Optional[str], file: Optional[str]) -> None:
    """Configure your lockfile by talking to an advisor: it looks up current models and prices in
    the registry, explains cost trade-offs, and proposes changes that you confirm (shown as a diff).
    Type exit or quit (or Ctrl-D) to leave. With stdin not a terminal, reads one turn (and each
    confirmation answer) per line; an empty line ends."""
    from ..advisor import Advisor, advisor_ring, lockfile_target, preflight, unavailable_message
    from ..exceptions import AllModelsFailedError

    path = lockfile_target(file)
    ring, target = advisor_ring(model, path)
    lines = _Lines(sys.stdin.isatty())
    try:
        preflight(ring, target)
        advisor = Advisor(ring, target, path, _ConsoleUI(lines))
        _banner(ring, target, path)
        while True:
            text = lines.read("You: ")
            if text is None or text.strip().lower() in ("exit", "quit"):
                break
            if text.strip():
                advisor.ask(text)
            elif not lines.interactive:
                break
    except AllModelsFailedError as e:
        click.echo(f"Error: {unavailable_message(e)}", err=True)
        sys.exit(1)
    finally:
        ring.close()


def _banner(ring: Any, target: str, path: Path) -> None:
    models = ring.resolve(target).models
    shown = target if models == [target] else f"{target} → {', '.join(models)}"
    click.echo(f"llmring lock chat · advisor: {shown}", err=True)
    if path.exists():
        click.echo(f"Configuring {path}. Type exit to leave.", err=True)
    else:
        click.echo(f"No lockfile at {path} yet: the advisor creates it when you apply its first change. "
                   "Type exit to leave.", err=True)


class _Lines:
    """User input: the terminal (with line editing), or stdin one line at a time when piped,
    echoed so that a transcript reads like the conversation."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def read(self, prompt: str) -> Optional[str]:
        """The next line without its newline, or None at end of input."""
        if self.interactive:
            try:
                return input(prompt)
            except EOFError:
                click.echo()
                return None
        line = sys.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\r\n")
        click.echo(f"{prompt}{line}")
        return line


class _ConsoleUI:
    """The advisor's side of the terminal: streamed replies, tool notices, proposals."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self._at_line_start = True
        self._ends_with_newline = True

    def text(self, delta: str) -> None:
        if self._at_line_start:
            click.echo(style("Advisor: ", bold=True), nl=False)
            self._at_line_start = False
        click.echo(delta, nl=False)
        self._ends_with_newline = delta.endswith("\n")

    def end_reply(self) -> None:
        if not self._ends_with_newline:
            click.echo()
        self._at_line_start = True

    def notice(self, line: str) -> None:
        click.echo(style(f"  · {line}", dim=True), err=True)

    def confirm(self, plan: Any) -> bool:
        click.echo(plan.summary())
        for line in plan.diff.splitlines():
            click.echo(_diff_line(line))
        answer = self.lines.read("Apply these changes? [y/N] ")
        return answer is not None and answer.strip().lower() in ("y", "yes")


def _diff_line(line: str) -> str:
    if line.startswith(("+++", "---")):
        return style(line, bold=True)
    if line.startswith(("+", "-", "@@")):
        return style(line, fg={"+": "green", "-": "red"}.get(line[0], "cyan"))
    return line


COMMANDS = [lock]
