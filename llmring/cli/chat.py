"""`llmring chat`: ask an alias from the shell."""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from .common import echo_json, file_option, json_option, profile_option, ring_for

DEFAULT_ALIAS_ENV = "LLMRING_DEFAULT_ALIAS"


@click.command()
@click.argument("prompt")
@click.option("--model", "-m", default=None,
              help="Alias or provider:model to ask (default: $LLMRING_DEFAULT_ALIAS, else 'assistant').")
@profile_option
@file_option
@click.option("--system", "-s", default=None, help="A system prompt.")
@click.option("--temperature", "-t", type=float, default=None, help="Sampling temperature (not sent unless given).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap on the answer's length in tokens.")
@click.option("--stream/--no-stream", default=True, help="Print the answer as it arrives (default) or all at once.")
@click.option("--verbose", "-v", is_flag=True, help="Also print the model that answered, tokens and every attempt.")
@json_option
def chat(prompt: str, model: Optional[str], profile: Optional[str], file: Optional[str], system: Optional[str],
         temperature: Optional[float], max_tokens: Optional[int], stream: bool, verbose: bool,
         as_json: bool) -> None:
    """Send PROMPT (or - to read it from stdin) to an alias and print the answer."""
    from ..exceptions import AllModelsFailedError
    from ..types import Message

    if prompt == "-":
        prompt = sys.stdin.read()
    target = model or os.environ.get(DEFAULT_ALIAS_ENV) or "assistant"
    messages = ([Message(role="system", content=system)] if system else []) + [Message(role="user", content=prompt)]
    params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}
    ring = ring_for(file)
    try:
        if as_json or not stream:
            response = ring.chat(target, messages, profile=profile, **params)
            if as_json:
                echo_json(_response_json(response))
                return
            click.echo(response.content)
            final: Any = response
        else:
            final = _print_stream(ring.stream(target, messages, profile=profile, **params))
    except AllModelsFailedError as e:
        click.echo(f"Error: no model could answer for {target!r}:", err=True)
        for a in e.attempts:
            click.echo(f"  - {a.describe()}", err=True)
        sys.exit(1)
    finally:
        ring.close()
    if verbose:
        _print_details(final)


def _print_stream(chunks: Any) -> Any:
    final = None
    ended_with_newline = True
    for chunk in chunks:
        if chunk.delta:
            click.echo(chunk.delta, nl=False)
            ended_with_newline = chunk.delta.endswith("\n")
        if chunk.finish_reason is not None:
            final = chunk
    if not ended_with_newline:
        click.echo()
    return final


def _print_details(final: Any) -> None:
    if final is None:
        return
    usage = final.usage
    tokens = f"{usage.input_tokens} in, {usage.output_tokens} out" if usage else "tokens unknown"
    cost = f", ${final.cost:.6f}" if getattr(final, "cost", None) is not None else ""
    click.echo(f"[{final.model} · {tokens}{cost} · {final.finish_reason}]", err=True)
    for a in final.attempts or []:
        click.echo(f"  - {a.describe()}", err=True)


def _response_json(r: Any) -> dict:
    return {
        "content": r.content, "model": r.model, "alias": r.alias, "profile": r.profile,
        "finish_reason": r.finish_reason, "parsed": r.parsed, "cost": r.cost,
        "usage": None if r.usage is None else {"input_tokens": r.usage.input_tokens,
                                                "output_tokens": r.usage.output_tokens,
                                                "total_tokens": r.usage.total_tokens},
        "tool_calls": [c.to_dict() for c in r.tool_calls or []],
        "attempts": [{"model": a.model, "ok": a.ok, "kind": a.kind, "status": a.status, "message": a.message,
                      "elapsed": round(a.elapsed, 4), "skipped": a.skipped} for a in r.attempts],
        "latency": round(r.latency, 4),
    }


COMMANDS = [chat]
