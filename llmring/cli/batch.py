"""`llmring batch`: answer every line of a JSONL file through an alias, resumably.

Each finished row is appended whole with one unbuffered write, so a crash or Ctrl-C never
leaves half a row behind except from kill -9 in the middle of that one write; the next run
drops such an unfinished last line and skips every id already in the output."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Optional

import click

from .common import file_option, profile_option

EXIT_SOME_FAILED = 3  # the run finished, but some items failed or some input lines were skipped
PROGRESS_EVERY = 0.2  # seconds between progress-bar redraws


@click.command()
@click.argument("alias")
@click.argument("source", metavar="IN.jsonl", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="JSONL file the answers are appended to; ids already in it are skipped (resume).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=16, show_default=True,
              help="Calls in flight at once.")
@click.option("--retry-failed", is_flag=True,
              help="Ask the items whose rows in --output are errors again (their rows are replaced).")
@profile_option
@file_option
def batch(alias: str, source: str, output: str, concurrency: int, retry_failed: bool, profile: Optional[str],
          file: Optional[str]) -> None:
    """Answer each line of IN.jsonl through ALIAS: {"id": ..., "prompt": "..."} or {"id": ...,
    "messages": [...], ...chat parameters}. Writes one line per item to --output: id, content,
    model, usage, cost, error. Run it again to resume (--retry-failed: also ask the failed
    items again). Exit codes: 0 all answered, 1 could not
    start, 2 bad usage, 3 some items failed or input lines were skipped, 130 interrupted."""
    if source != "-" and os.path.abspath(source) == os.path.abspath(output):
        raise click.UsageError("-o must be another file than IN.jsonl.")
    from ..ring import Ring

    ring = Ring(lockfile_path=file, pool_size=max(64, concurrency))  # a kept-alive connection per call in flight
    try:
        ring.resolve(alias, profile)  # a typo in the alias fails here, before the output is touched
        if retry_failed and os.path.exists(output):
            dropped = _drop_failed(output)
            click.echo(f"Asking {dropped} failed item{'s' if dropped != 1 else ''} again.", err=True)
        done = _resume(output)
        job = _Job(source, output, len(done))
        sys.exit(_run(ring, alias, profile, concurrency, job, done))
    finally:
        ring.close()


def _run(ring: Any, alias: str, profile: Optional[str], concurrency: int, job: _Job, done: set) -> int:
    from .. import batch as engine

    ask = engine.call_for(ring, alias, profile, {})

    def answer(item: tuple) -> tuple:  # the id travels with its answer, whatever order they finish in
        try:
            return item[0], ask(item[1])
        except Exception as e:  # noqa: BLE001 - that item's error row
            return item[0], e

    lines = _lines(sys.stdin.buffer if job.source == "-" else open(job.source, "rb"))  # noqa: SIM115
    unread: list = []  # on Ctrl-C: answers that came before their turn, still to be written
    results = engine.run(answer, _requests(alias, lines, done, job), concurrency, unread)
    with open(job.output, "ab", buffering=0) as out:  # unbuffered: one write per row, nothing held back
        try:
            for item_id, result in results:
                out.write(_row(item_id, result))
                job.count(result)
        except KeyboardInterrupt:
            results.close()
            for item_id, result in unread:
                out.write(_row(item_id, result))
                job.count(result)
            job.finish("Interrupted")
            return 130
        finally:
            lines.close()
    job.finish("Done")
    return EXIT_SOME_FAILED if job.failed or job.bad else 0


def _lines(f: Any) -> Any:
    with f:
        yield from enumerate(f, 1)


def _requests(alias: str, lines: Any, done: set, job: _Job) -> Any:
    """(id, request) to send, in file order; bad lines reported, lines already done skipped."""
    first_seen: dict = {}
    for number, raw in lines:
        if not raw.strip():
            continue
        job.progress.tick(job)
        item_id, request = _parse(alias, raw)
        if request is None:
            job.bad_line(number, item_id)
            continue
        key = json.dumps(item_id)
        if key in first_seen:
            job.bad_line(number, f"id {key} is already on line {first_seen[key]}")
            continue
        first_seen[key] = number
        if key in done:
            continue
        yield item_id, request


def _parse(alias: str, raw: bytes) -> tuple:
    """(id, LLMRequest) for a good line, else (what is wrong, None)."""
    from .. import prepare
    from ..exceptions import LLMRingError

    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        return "it is not UTF-8 text", None
    except ValueError as e:
        return f"it is not JSON ({e})", None
    if not isinstance(data, dict):
        return "it is not a JSON object", None
    item_id = data.pop("id", None)
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        return 'it needs an "id": a string or a whole number', None
    prompt, messages = data.pop("prompt", None), data.pop("messages", None)
    if (prompt is None) == (messages is None):
        return 'give either "prompt" (a string) or "messages" (a list)', None
    if prompt is not None and not isinstance(prompt, str):
        return '"prompt" must be a string', None
    fixed = sorted({"model", "profile"} & set(data))
    if fixed:
        return f'"{fixed[0]}" cannot be set per line: ALIAS and --profile choose the models', None
    try:
        return item_id, prepare.build(alias, prompt if prompt is not None else messages, data)
    except (TypeError, ValueError, LLMRingError) as e:
        return str(e).rstrip("."), None


def _row(item_id: Any, result: Any) -> bytes:
    from ..types import LLMResponse

    row: dict = {"id": item_id, "content": None, "model": None, "usage": None, "cost": None, "error": None}
    if isinstance(result, LLMResponse):
        u = result.usage
        row.update(content=result.content, model=result.model, cost=result.cost, usage=None if u is None else {
            "input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens})
    else:
        message = " ".join(str(result).split())
        row["error"] = {"kind": getattr(result, "kind", None) or type(result).__name__, "message": message}
    return json.dumps(row, ensure_ascii=False).encode() + b"\n"


def _resume(path: str) -> set:
    """The ids (as JSON text) already in the output. An unfinished last line (a run killed in
    the middle of a write) is cut off; any other line that is not a row is an error."""
    if not os.path.exists(path):
        return set()
    done: set = set()
    with open(path, "r+b") as f:
        good_end = 0
        for number, raw in enumerate(f, 1):
            key = _row_id(raw)
            if key is None and raw.endswith(b"\n"):
                raise click.ClickException(f"{path} line {number} is not a row llmring batch wrote; fix or "
                                           "remove it, or write to another file with -o.")
            if key is None:
                f.truncate(good_end)
                click.echo(f"Dropped an unfinished last line of {path} (an interrupted run); "
                           "its item is asked again.", err=True)
                break
            done.add(key)
            good_end += len(raw)
            if not raw.endswith(b"\n"):  # a whole row whose newline was lost
                f.write(b"\n")
    return done


def _drop_failed(path: str) -> int:
    """Remove the rows of failed items from the output, atomically (a copy replaces it, so a
    crash leaves the old file); how many were removed."""
    import shutil
    import tempfile

    dropped = 0
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".llmring-batch-")
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            for raw in src:
                try:
                    failed = json.loads(raw).get("error") is not None
                except (ValueError, AttributeError):  # not a row: _resume reports it
                    failed = False
                dropped += failed
                if not failed:
                    dst.write(raw)
        if dropped:
            shutil.copymode(path, tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dropped


def _row_id(raw: bytes) -> Optional[str]:
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    return json.dumps(row["id"]) if isinstance(row, dict) and "id" in row else None


class _Job:
    """Counts, the progress bar and the final summary line, all on stderr."""

    def __init__(self, source: str, output: str, before: int) -> None:
        self.source, self.output, self.before = source, output, before
        self.answered = self.failed = self.bad = self.unpriced = 0
        self.spent = 0.0
        self.started = time.monotonic()
        self.progress = _Progress(source)

    def count(self, result: Any) -> None:
        from ..types import LLMResponse

        if isinstance(result, LLMResponse):
            self.answered += 1
            if result.cost is None:
                self.unpriced += 1
            else:
                self.spent += result.cost
        else:
            self.failed += 1
        self.progress.tick(self)

    def bad_line(self, number: int, problem: str) -> None:
        self.bad += 1
        self.progress.clear()
        click.echo(f"{self.source} line {number}: {problem}; skipped.", err=True)

    def finish(self, how: str) -> None:
        self.progress.clear()
        parts = [f"{self.answered} answered", f"{self.failed} failed"]
        if self.bad:
            parts.append(f"{self.bad} bad input line{'s' if self.bad != 1 else ''} skipped")
        if self.before:
            parts.append(f"{self.before} already in {self.output}")
        cost = f"${self.spent:.4f}" + (f" (+{self.unpriced} without a price)" if self.unpriced else "")
        tail = "; run the same command again to resume." if how == "Interrupted" else "."
        click.echo(f"{how}: {', '.join(parts)}; {cost} in {time.monotonic() - self.started:.1f} s{tail}", err=True)


class _Progress:
    """done, failed, spent, rate and ETA on one redrawn stderr line; nothing unless a terminal."""

    def __init__(self, source: str) -> None:
        self.enabled = sys.stderr.isatty()
        self.total = _count_lines(source) if self.enabled else None
        self.shown = False
        self.last = 0.0

    def tick(self, job: _Job) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        finished = job.answered + job.failed
        rate = finished / max(now - job.started, 1e-9)
        total = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and rate > 0:
            left = max(self.total - job.before - job.bad - finished, 0) / rate
            eta = f" · ETA {int(left // 60)}m{int(left % 60):02d}s"
        line = (f"{finished + job.before}{total} done · {job.failed} failed · ${job.spent:.4f} · "
                f"{rate:.1f}/s{eta}")
        click.echo(f"\r{line}\x1b[K", err=True, nl=False)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)
            self.shown = False


def _count_lines(source: str) -> Optional[int]:
    if source == "-":
        return None
    with open(source, "rb") as f:
        return sum(1 for line in f if line.strip())


COMMANDS = [batch]
