"""The failover walk on a fake clock: retries, Retry-After, deadlines and the circuit breaker,
with no real waiting. (Ring-level behaviour over real HTTP is in test_failover.py.)"""

import pytest
from fakeclock import Clock
from httpfake import Reply

from llmring import Ring
from llmring.exceptions import AllModelsFailedError, ProviderError, error_for_kind
from llmring.failover import CircuitBreaker, RetryPolicy
from llmring.state import MemoryState
from llmring.walker import Walker


class Scripted:
    """A provider whose tries take `takes` seconds of fake time (None: the whole budget, as the
    HTTP layer enforces it) and fail as scripted."""

    def __init__(self, clock, failures=(), takes=0.0):
        self.clock, self.failures, self.takes = clock, list(failures), takes
        self.budgets = []

    def error(self, kind, message):
        return error_for_kind(kind, message, provider="fake")

    def call(self, model, timeout):
        self.budgets.append((model, timeout.budget, tuple(timeout)))
        self.clock.now += timeout.budget if self.takes is None else self.takes
        if self.failures:
            failure = self.failures.pop(0)
            raise failure if isinstance(failure, ProviderError) else self.error(failure, "scripted")
        return f"answer from {model}"


def walker(clock, provider, retry=None, breaker=None):
    return Walker(lambda prefix: provider, lambda ref: (None, None), retry=retry or RetryPolicy(),
                  breaker=breaker or CircuitBreaker(state=MemoryState(clock)), connect_timeout=10.0,
                  read_timeout=120.0, clock=clock, sleep=clock.sleep)


def walk(w, provider, models, timeout=None):
    return w.walk("alias", models, [], timeout, lambda p, model, t: provider.call(model, t))


def test_backoff_between_retries_uses_the_injected_sleep():
    clock = Clock()
    provider = Scripted(clock, ["server", "server"])
    done = walk(walker(clock, provider), provider, ["f:a", "f:b"])
    assert done.ref == "f:a" and done.result == "answer from a"
    assert [a.kind for a in done.attempts] == ["server", "server", None]
    assert len(clock.slept) == 2 and all(0 <= s <= 0.5 for s in clock.slept)  # base 0.25 s, doubled, jittered


def test_a_short_retry_after_is_waited_on_the_same_model():
    clock = Clock()
    provider = Scripted(clock, [error_for_kind("rate_limit", "slow down", retry_after=1.5)])
    done = walk(walker(clock, provider), provider, ["f:a", "f:b"])
    assert done.ref == "f:a" and clock.slept == [1.5]


def test_a_long_retry_after_moves_on_without_waiting():
    clock = Clock()
    provider = Scripted(clock, [error_for_kind("rate_limit", "slow down", retry_after=30)])
    done = walk(walker(clock, provider), provider, ["f:a", "f:b"])
    assert done.ref == "f:b" and clock.slept == []


def test_a_model_with_fallbacks_gets_half_the_time_left_and_the_last_gets_all():
    clock = Clock()
    provider = Scripted(clock, ["timeout"], takes=5.0)
    done = walk(walker(clock, provider, RetryPolicy(max_retries=0)), provider, ["f:a", "f:b"], timeout=20.0)
    assert done.ref == "f:b"
    (_, first, first_tuple), (_, second, second_tuple) = provider.budgets
    assert first == 10.0 and first_tuple == (10.0, 10.0)  # connect and read capped by the budget
    assert second == 15.0 and second_tuple == (10.0, 15.0)


def test_without_a_deadline_a_try_is_bounded_as_a_whole_by_the_read_timeout():
    # A try is a chat, or a stream up to its first chunk: a server dripping bytes or sending
    # only keep-alive comments cannot hold it past the read timeout.
    clock = Clock()
    provider = Scripted(clock)
    done = walk(walker(clock, provider), provider, ["f:a"])
    assert provider.budgets == [("a", 120.0, (10.0, 120.0))]
    assert done.left is None  # nothing to hand on to the rest of a stream


def test_the_answer_says_how_much_of_the_deadline_is_left_for_the_rest_of_a_stream():
    clock = Clock()
    provider = Scripted(clock, ["server"], takes=4.0)
    done = walk(walker(clock, provider, RetryPolicy(max_retries=0)), provider, ["f:a", "f:b"], timeout=20.0)
    assert done.ref == "f:b" and done.left == 12.0  # 20 s less two tries of 4 s


def test_under_a_deadline_a_chat_try_gets_at_most_the_read_timeout():
    clock = Clock()
    provider = Scripted(clock)
    w = walker(clock, provider)
    w.read_timeout = 2.0  # LLMRING_PROVIDER_TIMEOUT_S=2
    walk(w, provider, ["f:a"], timeout=30.0)
    assert provider.budgets == [("a", 2.0, (2.0, 2.0))]


def test_tries_that_use_their_budget_end_the_walk_as_a_timeout():
    clock = Clock()
    provider = Scripted(clock, ["timeout", "timeout"], takes=None)
    with pytest.raises(AllModelsFailedError) as info:
        walk(walker(clock, provider, RetryPolicy(max_retries=0)), provider, ["f:a", "f:b"], timeout=10.0)
    assert info.value.kind == "timeout" and [b[1] for b in provider.budgets] == [5.0, 5.0]


def test_a_try_that_overruns_the_deadline_ends_the_walk_without_trying_the_rest():
    clock = Clock()
    provider = Scripted(clock, ["server"], takes=12.0)  # a plugin that ignores its budget
    with pytest.raises(AllModelsFailedError) as info:
        walk(walker(clock, provider), provider, ["f:a", "f:b"], timeout=10.0)
    assert info.value.kind == "timeout" and [b[0] for b in provider.budgets] == ["a"]
    assert info.value.attempts[-1].model == "f:b"
    assert info.value.attempts[-1].message == "the request's deadline passed"


def test_no_retry_sleep_crosses_the_deadline():
    clock = Clock()
    provider = Scripted(clock, [error_for_kind("server", "down", retry_after=1.9)] * 3, takes=0.5)
    with pytest.raises(AllModelsFailedError):
        walk(walker(clock, provider), provider, ["f:a"], timeout=2.0)
    assert clock.slept == []  # 0.5 s spent + 1.9 s wait would pass the 2 s deadline
    assert len(provider.budgets) == 1


def test_the_breaker_rests_a_model_then_lets_one_call_probe_it():
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown=30, state=MemoryState(clock))
    for _ in range(2):
        breaker.record("f:a", "server")
    assert breaker.is_open("f:a") and breaker.remaining("f:a") == 30
    clock.now += 30
    assert not breaker.is_open("f:a")  # the rest is over: the next call probes it
    breaker.record("f:a", "timeout")
    assert breaker.is_open("f:a")  # one more failure rests it again at once
    clock.now += 31
    breaker.record("f:a", None)
    breaker.record("f:a", "server")
    assert not breaker.is_open("f:a")  # a success cleared the count


def test_failures_that_are_not_about_availability_do_not_count():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, state=MemoryState(clock))
    for kind in ("auth", "not_found", "unsupported", "invalid_output", "bad_request"):
        breaker.record("f:a", kind)
    assert not breaker.is_open("f:a")


def test_a_resting_model_is_skipped_unless_it_is_the_last(tmp_path):
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=60, state=MemoryState(clock))
    breaker.record("f:a", "server")
    provider = Scripted(clock)
    w = walker(clock, provider, breaker=breaker)
    done = walk(w, provider, ["f:a", "f:b"])
    assert done.ref == "f:b" and done.attempts[0].skipped
    assert walk(w, provider, ["f:a"]).ref == "f:a"


def test_the_ring_sleeps_through_its_walker(tmp_path, server, monkeypatch):
    """Retry-After over real HTTP, without the real wait: the Ring's walker sleeps on a fake clock."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.add("POST", "/v1/chat/completions",
               Reply(status=429, headers={"retry-after": "2"}, json={"error": {"message": "slow", "type": "requests"}}),
               Reply(json={"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                        "finish_reason": "stop"}]}))
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\n\n[profiles.default]\n\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["openai:gpt-4o-mini", "mock:echo"]\n')
    clock = Clock()
    # The 429 also sets a cool-down in the state; on the same fake clock it ends with the wait
    # (on the real clock it would still be running, since the fake wait takes no time).
    with Ring(path, breaker=CircuitBreaker(state=MemoryState(clock))) as ring:
        ring.walker.clock, ring.walker.sleep = clock, clock.sleep
        r = ring.chat("a", "hi")
    assert r.model == "openai:gpt-4o-mini" and r.content == "ok"
    assert clock.slept == [2.0] and len(server.requests) == 2
