"""A fake monotonic clock for tests of anything with an injectable clock and sleep (the
walker, the limiter, the in-process state): nothing ever really waits."""


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
