"""Client-side limits ([limits.*] in the lockfile): the in-process state's sliding windows on a
fake clock, the walk waiting for room within the deadline (or skipping as rate_limit), shared
cool-downs after a 429, and a real Ring against a FakeServer."""

import threading

import pytest

from llmring.state import Limit, MemoryState


class Clock:
    """A fake monotonic clock; `sleep` advances it and records the delay."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


# -- MemoryState -----------------------------------------------------------------------------
def test_rpm_is_a_sliding_window_not_a_bucket():
    clock = Clock()
    state = MemoryState(clock)
    limit = Limit(rpm=3)
    for step in (0, 10, 20):
        clock.now = 1000 + step
        assert state.admit("k", limit, 1, 30)[0] == 0
    clock.now = 1030
    wait, ticket = state.admit("k", limit, 1, 30)
    assert ticket is None and wait == pytest.approx(30)  # the call at 1000 leaves the window at 1060
    clock.now = 1060
    assert state.admit("k", limit, 1, 30)[0] == 0
    wait, _ = state.admit("k", limit, 1, 30)  # the window now holds 1010, 1020, 1060
    assert wait == pytest.approx(10)


def test_tpm_counts_estimates_and_corrects_them_with_usage():
    clock = Clock()
    state = MemoryState(clock)
    limit = Limit(tpm=1000)
    _, first = state.admit("k", limit, 600, 30)
    wait, ticket = state.admit("k", limit, 600, 30)
    assert ticket is None and wait == pytest.approx(60)
    state.release("k", first, 100)  # the provider said it used 100
    wait, second = state.admit("k", limit, 600, 30)
    assert wait == 0 and second is not None


def test_a_call_bigger_than_tpm_waits_for_an_empty_window_not_forever():
    clock = Clock()
    state = MemoryState(clock)
    limit = Limit(tpm=100)
    state.admit("k", limit, 10, 30)
    clock.now += 5
    wait, _ = state.admit("k", limit, 5000, 30)
    assert wait == pytest.approx(55)
    clock.now += 55
    assert state.admit("k", limit, 5000, 30)[0] == 0


def test_concurrency_slots_are_released_and_leases_expire():
    clock = Clock()
    state = MemoryState(clock)
    limit = Limit(concurrency=2)
    _, a = state.admit("k", limit, 1, 30)
    _, b = state.admit("k", limit, 1, 30)
    wait, none = state.admit("k", limit, 1, 30)
    assert none is None and 0 < wait <= 30
    state.release("k", a, None)
    _, c = state.admit("k", limit, 1, 30)
    assert c is not None
    assert state.admit("k", limit, 1, 30)[1] is None
    clock.now += 30  # b and c were never released: a crashed worker frees its slots
    assert state.admit("k", limit, 1, 30)[1] is not None


def test_release_with_zero_forgets_a_call_that_was_never_made():
    clock = Clock()
    state = MemoryState(clock)
    limit = Limit(rpm=1, concurrency=1)
    _, ticket = state.admit("k", limit, 50, 30)
    state.release("k", ticket, 0)
    assert state.admit("k", limit, 50, 30)[1] is not None


def test_cool_down_holds_a_key_and_a_shorter_one_does_not_cut_it():
    clock = Clock()
    state = MemoryState(clock)
    assert state.cooling("k") == 0
    state.cool("k", 30)
    state.cool("k", 5)
    assert state.cooling("k") == pytest.approx(30)
    assert state.cooling("other") == 0
    clock.now += 30
    assert state.cooling("k") == 0


def test_keys_are_independent():
    state = MemoryState(Clock())
    assert state.admit("openai", Limit(rpm=1), 1, 30)[1] is not None
    assert state.admit("openai", Limit(rpm=1), 1, 30)[1] is None
    assert state.admit("openai:gpt-4o", Limit(rpm=1), 1, 30)[1] is not None


def test_two_threads_never_both_take_the_last_room():
    state = MemoryState()
    limit = Limit(rpm=50)
    taken = []
    start = threading.Barrier(8)

    def grab():
        start.wait()
        for _ in range(20):
            if state.admit("k", limit, 1, 30)[1] is not None:
                taken.append(1)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 50


# -- the lockfile's [limits.*] tables ------------------------------------------------------------
LIMITED = '''\
version = "1.0"
default_profile = "default"

# what our OpenAI org is allowed
[limits.openai]   # all openai: models together
rpm = 500
tpm = 200000
concurrency = 32

[limits."openai:gpt-4o-mini"]
rpm = 100  # its own, tighter

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]
'''


def test_limits_are_read_per_provider_and_per_model():
    from llmring.lockfile import parse

    lf = parse(LIMITED)
    assert lf.limits == {"openai": Limit(500, 200000, 32), "openai:gpt-4o-mini": Limit(rpm=100)}
    assert parse(lf.to_toml()).limits == lf.limits
    assert lf.to_dict()["limits"] == {"openai": {"rpm": 500, "tpm": 200000, "concurrency": 32},
                                      "openai:gpt-4o-mini": {"rpm": 100}}


@pytest.mark.parametrize("table, body, line, words", [
    ("openai", "rpm = 0", 2, "limits.openai.rpm must be a whole number more than 0"),
    ("openai", "tpm = 1.5", 2, "tpm must be a whole number"),
    ("openai", 'concurrency = "4"', 2, "concurrency must be a whole number"),
    ("openai", "rpm = true", 2, "rpm must be a whole number"),
    ("openai", "rqm = 5", 2, "did you mean 'rpm'"),
    ('"Open AI"', "rpm = 5", 1, "must name a provider"),
    ('"openai:"', "rpm = 5", 1, "must name a provider"),
])
def test_a_bad_limit_is_an_error_with_its_line(table, body, line, words):
    from llmring.exceptions import LockfileError
    from llmring.lockfile import parse

    text = f'version = "1.0"\n\n[limits.{table}]\n{body}\n'
    with pytest.raises(LockfileError) as e:
        parse(text, "x.lock")
    assert words in str(e.value)
    assert e.value.line == line + 2


def test_editing_the_lockfile_keeps_the_limits_and_their_comments(tmp_path):
    from llmring import Ring

    path = tmp_path / "llmring.lock"
    path.write_text(LIMITED)
    Ring(path).bind_alias("fast", "openai:gpt-4o")
    text = path.read_text()
    for line in ("# what our OpenAI org is allowed", "[limits.openai]   # all openai: models together",
                 "rpm = 100  # its own, tighter", '[limits."openai:gpt-4o-mini"]'):
        assert line in text
    assert Ring(path).lockfile.limits["openai"] == Limit(500, 200000, 32)


def test_limits_written_inline_survive_an_edit_in_the_normal_form(tmp_path):
    from llmring import Ring

    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\nlimits = { openai = { rpm = 5 } }\n\n[profiles.default]\nname = "default"\n')
    Ring(path).bind_alias("fast", "openai:gpt-4o")
    assert Ring(path).lockfile.limits == {"openai": Limit(rpm=5)}
