"""Fake clocks for tests of anything with an injectable clock and sleep (the walker, the
limiter, the in-process state): nothing ever really waits."""

import time


class Clock:
    """Starts at 1000.0; `sleep` advances it and records the delay in `slept`."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


class SkippingClock:
    """The real monotonic clock, except that `sleep` skips ahead instead of waiting (and records
    the delay in `slept`): for tests where real time passes too (a server that hangs, a deadline
    that cuts a try) but no wait should."""

    def __init__(self):
        self.skipped = 0.0
        self.slept = []

    def __call__(self):
        return time.monotonic() + self.skipped

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.skipped += seconds
