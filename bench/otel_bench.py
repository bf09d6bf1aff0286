"""otel: what the OpenTelemetry observer (llmring/otel.py) costs a call. Run alone; needs the
SDK (`pip install -e ".[test]"`):

    python bench/otel_bench.py [--quick]

Ring.chat on the loopback bench server, interleaved in one process: with the application's
tracer provider set (an SDK TracerProvider whose processor drops the spans: what is measured
is llmring making them), against the same Ring with no provider set (the API's default, where
the observer stops at one isinstance check). Then the observer alone, per record, both ways."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from server import serve
from timing import ALIAS, PROMPT, Scale, interleaved, median, openai_env, write_bench_lockfile


def main(scale: Scale) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from llmring import Ring, observe

    sdk = TracerProvider()
    sdk.add_span_processor(SpanProcessor())  # the base class: every span made, then dropped
    heard = []
    with serve() as url, openai_env(url), tempfile.TemporaryDirectory() as folder:
        ring = Ring(write_bench_lockfile(Path(folder)))
        for _ in range(scale(100, 10)):
            ring.chat(ALIAS, PROMPT)
        (name, sink), = [s for s in observe._sinks if s[0] == "llmring.otel:sink"]
        observe._sinks.append(("keep", heard.append))

        def traced() -> None:
            trace._TRACER_PROVIDER = sdk  # what set_tracer_provider sets (once per process)
            ring.chat(ALIAS, PROMPT)

        def untraced() -> None:
            trace._TRACER_PROVIDER = None
            ring.chat(ALIAS, PROMPT)

        on, off, cpu_on, cpu_off, per_block = interleaved(traced, untraced, scale(2000, 100), 20)
        print(f"Ring.chat, tracer provider set vs none: {median(on) / per_block * 1e6:.0f} vs "
              f"{median(off) / per_block * 1e6:.0f} us/call wall, ratio {median(on) / median(off):.3f}; "
              f"cpu ratio {median(cpu_on) / median(cpu_off):.3f}")
        record, n = heard[-1], scale(20000, 1000)
        for label, provider in (("provider set", sdk), ("no provider", None)):
            trace._TRACER_PROVIDER = provider
            start = time.perf_counter()
            for _ in range(n):
                sink(record)
            print(f"the observer alone, {label}: {(time.perf_counter() - start) / n * 1e6:.2f} us per record "
                  f"({len(record.attempts)} attempt)")


if __name__ == "__main__":
    main(Scale(0.1 if "--quick" in sys.argv else 1.0))
