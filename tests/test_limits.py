"""Client-side limits ([limits.*] in the lockfile): the in-process state's sliding windows on a
fake clock, the walk waiting for room within the deadline (or skipping as rate_limit), shared
cool-downs after a 429, and a real Ring against a FakeServer."""

import threading

import pytest
from fakeclock import Clock
from httpfake import openai_answer
from lockfiles import one_alias

from llmring import Ring
from llmring.state import Limit, MemoryState


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
    state = MemoryState(pace=False)  # the minute's window alone, hammered
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
    path = tmp_path / "llmring.lock"
    path.write_text(LIMITED)
    Ring(path).bind_alias("fast", "openai:gpt-4o")
    text = path.read_text()
    for line in ("# what our OpenAI org is allowed", "[limits.openai]   # all openai: models together",
                 "rpm = 100  # its own, tighter", '[limits."openai:gpt-4o-mini"]'):
        assert line in text
    assert Ring(path).lockfile.limits["openai"] == Limit(500, 200000, 32)


def test_limits_written_inline_survive_an_edit_in_the_normal_form(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\nlimits = { openai = { rpm = 5 } }\n\n[profiles.default]\nname = "default"\n')
    Ring(path).bind_alias("fast", "openai:gpt-4o")
    assert Ring(path).lockfile.limits == {"openai": Limit(rpm=5)}


# -- the walk, on a fake clock -----------------------------------------------------------------
class Answer:
    def __init__(self, text, total):
        self.text = text
        self.usage = type("U", (), {"total_tokens": total})()


class Scripted:
    """A provider whose tries fail as scripted (a kind, an exception, or an error object) and
    otherwise answer with `usage` tokens; records the models it was asked."""

    def __init__(self, failures=(), usage=None):
        self.failures, self.usage, self.calls = list(failures), usage, []

    def error(self, kind, message):
        from llmring.exceptions import error_for_kind

        return error_for_kind(kind, message, provider="fake")

    def call(self, model, timeout):
        self.calls.append(model)
        if self.failures:
            failure = self.failures.pop(0)
            raise failure if isinstance(failure, BaseException) else self.error(failure, "scripted")
        return Answer(f"answer from {model}", self.usage)


def walker(clock, limits, state=None):
    from llmring.failover import CircuitBreaker, RetryPolicy
    from llmring.walker import Walker

    state = state or MemoryState(clock)
    return Walker(lambda prefix: Scripted(), lambda ref: (None, None), retry=RetryPolicy(),
                  breaker=CircuitBreaker(state=state), connect_timeout=10.0, read_timeout=120.0,
                  clock=clock, sleep=clock.sleep, limits=lambda: limits)


def walk(w, provider, models, timeout=None, tokens=10):
    return w.walk("alias", models, [], timeout, lambda p, model, t: provider.call(model, t), tokens)


def test_without_a_deadline_a_call_waits_for_room():
    clock = Clock()
    w, p = walker(clock, {"a": Limit(rpm=1)}), Scripted()
    walk(w, p, ["a:x", "b:y"])
    done = walk(w, p, ["a:x", "b:y"])
    assert done.ref == "a:x" and sum(clock.slept) == pytest.approx(60)
    assert p.calls == ["x", "x"]


def test_a_wait_longer_than_the_tries_share_of_the_deadline_skips_as_rate_limit():
    clock = Clock()
    w, p = walker(clock, {"a:x": Limit(rpm=1)}), Scripted()
    walk(w, p, ["a:x", "b:y"], timeout=30)
    done = walk(w, p, ["a:x", "b:y"], timeout=30)
    assert done.ref == "b:y" and clock.slept == [] and p.calls == ["x", "y"]  # no network call to a:x
    skip = done.attempts[0]
    assert (skip.model, skip.kind, skip.skipped) == ("a:x", "rate_limit", True)
    assert '[limits."a:x"]' in skip.message and "rpm = 1" in skip.message


def test_the_last_model_waits_within_the_whole_deadline_else_the_walk_fails_as_rate_limit():
    from llmring.exceptions import AllModelsFailedError

    clock = Clock()
    w, p = walker(clock, {"a": Limit(rpm=1)}), Scripted()
    walk(w, p, ["a:x"])
    clock.now += 30
    assert walk(w, p, ["a:x"], timeout=40).ref == "a:x"  # room in 30 s, within the 40 s deadline
    with pytest.raises(AllModelsFailedError) as e:
        walk(w, p, ["a:x"], timeout=40)  # room in 60 s
    assert e.value.kind == "rate_limit" and p.calls == ["x", "x"]


def test_both_keys_must_admit_and_a_refusal_gives_the_other_keys_room_back():
    clock = Clock()
    w, p = walker(clock, {"a": Limit(rpm=2), "a:x": Limit(rpm=1)}), Scripted()
    walk(w, p, ["a:x", "a:y"], timeout=10)
    done = walk(w, p, ["a:x", "a:y"], timeout=10)  # a:x refuses; a has room for one more
    assert done.ref == "a:y" and done.attempts[0].kind == "rate_limit"
    done = walk(w, p, ["a:y", "b:z"], timeout=10)  # now a (the provider) is full
    assert done.ref == "b:z" and "[limits.a]" in done.attempts[0].message


def test_usage_corrects_the_token_estimate():
    clock = Clock()
    w = walker(clock, {"a": Limit(tpm=1000)})
    walk(w, Scripted(usage=10), ["a:x"], tokens=600)
    assert walk(w, Scripted(usage=10), ["a:x"], tokens=600, timeout=5).ref == "a:x"  # 10 + 600 fit


@pytest.mark.parametrize("failure", ["server", ValueError("a provider bug")])
def test_concurrency_slots_are_freed_when_a_try_fails(failure):
    clock = Clock()
    w = walker(clock, {"a": Limit(concurrency=1)})
    walk(w, Scripted([failure]), ["a:x", "b:y"])
    assert walk(w, Scripted(), ["a:x"], timeout=5).ref == "a:x"


def test_a_slot_is_freed_when_the_call_is_interrupted():
    clock = Clock()
    w = walker(clock, {"a": Limit(concurrency=1)})
    with pytest.raises(KeyboardInterrupt):
        walk(w, Scripted([KeyboardInterrupt()]), ["a:x"])
    assert walk(w, Scripted(), ["a:x"], timeout=5).ref == "a:x"


def test_a_429_with_retry_after_cools_the_model_for_every_walk_sharing_the_state():
    from llmring.exceptions import ProviderRateLimitError

    clock = Clock()
    state = MemoryState(clock)
    first, second = walker(clock, {}, state), walker(clock, {}, state)  # two workers, one state
    p = Scripted([ProviderRateLimitError("slow down", provider="fake", retry_after=30)])
    assert walk(first, p, ["a:x", "b:y"]).ref == "b:y"
    done = walk(second, p, ["a:x", "b:y"])
    assert done.ref == "b:y" and p.calls == ["x", "y", "y"]  # a:x not called again while cooling
    assert done.attempts[0].kind == "rate_limit" and "Retry-After" in done.attempts[0].message
    done = walk(second, p, ["b:y", "a:x"][1:])  # the last model left waits the cool-down out
    assert done.ref == "a:x" and clock.slept == [pytest.approx(30)]
    assert state.cooling("a:y") == 0  # per model: a's other models are not held


def test_a_model_without_limits_is_not_slowed():
    clock = Clock()
    w = walker(clock, {"other": Limit(rpm=1)})
    for _ in range(5):
        walk(w, Scripted(), ["a:x"], timeout=1)
    assert clock.slept == []


# -- a real Ring against a FakeServer --------------------------------------------------------------
KEY = "sk-test-very-secret-key-123456"


def openai_ok(text="hi"):
    return openai_answer(text)


def limited_lockfile(tmp_path, models, limits):
    return one_alias(tmp_path, models, head=limits)


@pytest.fixture
def openai_env(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return server


def test_threads_never_have_more_calls_in_flight_at_the_server_than_the_limit(tmp_path, openai_env):
    import time

    flying, peak, lock = [0], [0], threading.Lock()

    def counted(request):
        with lock:
            flying[0] += 1
            peak[0] = max(peak[0], flying[0])
        time.sleep(0.02)  # the server is busy: without the limit, calls would pile up here
        with lock:
            flying[0] -= 1
        return openai_ok()

    openai_env.add("POST", "/v1/chat/completions", counted)
    path = limited_lockfile(tmp_path, ["openai:gpt-4o-mini"], "[limits.openai]\nconcurrency = 2\n")
    errors = []
    with Ring(path) as ring:
        def work():
            for _ in range(3):
                try:
                    ring.chat("a", "hi")
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(openai_env.requests) == 24
    assert peak[0] <= 2


def test_a_429_with_retry_after_cools_the_model_for_the_next_call(tmp_path, openai_env):
    from httpfake import Reply

    openai_env.add("POST", "/v1/chat/completions",
                   Reply(status=429, headers={"retry-after": "30"},
                         json={"error": {"message": "Rate limit reached", "type": "requests",
                                         "param": None, "code": "rate_limit_exceeded"}}),
                   openai_ok())
    path = limited_lockfile(tmp_path, ["openai:gpt-4o-mini", "mock:echo"], "")
    with Ring(path) as ring:
        assert ring.chat("a", "hi").model == "mock:echo"
        second = ring.chat("a", "hi")
    assert second.model == "mock:echo" and len(openai_env.requests) == 1  # no second request while cooling
    skip = second.attempts[0]
    assert (skip.model, skip.kind, skip.skipped) == ("openai:gpt-4o-mini", "rate_limit", True)


def test_a_clock_and_sleep_set_on_the_rings_walker_after_it_is_made_reach_its_limits(tmp_path):
    """Tests replace `ring.walker.clock` and `.sleep` after construction: the limits must wait on
    them too. The second call within the minute waits its 60 s on the fake clock (on the real
    sleep it would wait a real minute, then give up as the fake state never moves on)."""
    from llmring.failover import CircuitBreaker

    clock = Clock()
    path = limited_lockfile(tmp_path, ["mock:echo"], "[limits.mock]\nrpm = 1\n")
    with Ring(path, breaker=CircuitBreaker(state=MemoryState(clock))) as ring:
        ring.walker.clock, ring.walker.sleep = clock, clock.sleep
        ring.chat("a", "hi", timeout=90)
        second = ring.chat("a", "hi", timeout=90)
    assert second.model == "mock:echo" and clock.slept == [pytest.approx(60)]


def test_a_stream_holds_its_slot_until_it_ends_or_is_closed(tmp_path):
    path = limited_lockfile(tmp_path, ["mock:echo"], "[limits.mock]\nconcurrency = 1\n")
    with Ring(path) as ring:
        stream = ring.stream("a", "hello there, a few words")
        next(stream)
        with pytest.raises(Exception) as e:  # the slot is taken while the stream is open
            ring.chat("a", "hi", timeout=0.3)
        assert e.value.kind == "rate_limit"
        stream.close()
        assert ring.chat("a", "hi", timeout=5).content  # closed: the slot is free
        assert "".join(c.delta for c in ring.stream("a", "to the end"))
        assert ring.chat("a", "hi", timeout=5).content  # ended: free again


# -- lock validate and aliases --verbose ------------------------------------------------------------
CHECKED = '''\
version = "1.0"
default_profile = "default"

[limits.openai]
rpm = 500
tpm = 2000

[limits."openai:gpt-4o-mini"]
rpm = 1000
tpm = 100

[limits.antropic]
rpm = 5

[limits.mock]

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini", "mock:echo"]
params = { max_tokens = 4000 }
'''


def test_validate_warns_about_limits_that_cannot_do_what_they_say(tmp_path):
    from llmring.checks import limit_findings
    from llmring.lockfile import parse

    messages = [str(f) for f in limit_findings(parse(CHECKED))]
    assert "warning: [limits.antropic] limits a provider no alias uses; check its spelling (providers in use: " \
           "mock, openai)" in messages
    assert any('[limits."openai:gpt-4o-mini"] rpm = 1000 has no effect: [limits.openai] rpm = 500' in m
               for m in messages)
    assert not any("tpm = 100 has no effect" in m for m in messages)  # tighter than the provider's: useful
    assert any("[limits.mock] sets no limit" in m for m in messages)
    assert any("default/summarizer: [limits.openai] tpm = 2000 is less than one call (max_tokens = 4000)" in m
               for m in messages)
    assert any('[limits."openai:gpt-4o-mini"] tpm = 100 is less than one call' in m for m in messages)
    assert len(messages) == 5


def test_validate_is_quiet_about_limits_that_apply(tmp_path):
    from llmring.checks import limit_findings
    from llmring.lockfile import parse

    assert limit_findings(parse(LIMITED)) == []


def test_lock_validate_shows_limit_findings(tmp_path):
    from clitools import runner

    from llmring.cli import cli

    path = tmp_path / "llmring.lock"
    path.write_text(CHECKED)
    result = runner().invoke(cli, ["lock", "validate", "--file", str(path)])
    assert "[limits.antropic] limits a provider no alias uses" in result.stderr


def test_aliases_verbose_shows_the_limits_each_alias_counts_against(tmp_path):
    import json

    from clitools import runner

    from llmring.cli import cli

    path = tmp_path / "llmring.lock"
    path.write_text(LIMITED)
    out = runner().invoke(cli, ["aliases", "--verbose", "--file", str(path)]).stdout
    assert ('limits: [limits."openai:gpt-4o-mini"] rpm = 100; [limits.openai] rpm = 500, tpm = 200000, '
            'concurrency = 32') in out
    data = json.loads(runner().invoke(cli, ["aliases", "--json", "--file", str(path)]).stdout)
    assert data["aliases"][0]["limits"] == {"openai:gpt-4o-mini": {"rpm": 100},
                                            "openai": {"rpm": 500, "tpm": 200000, "concurrency": 32}}
    assert "limits" not in runner().invoke(cli, ["aliases", "--file", str(path)]).stdout


def test_an_async_stream_left_early_frees_its_slot(tmp_path):
    import asyncio

    from llmring import AsyncRing

    path = limited_lockfile(tmp_path, ["mock:echo"], "[limits.mock]\nconcurrency = 1\n")

    async def main():
        async with AsyncRing(path) as ring:
            async for _ in ring.stream("a", "several words to stream one by one"):
                break  # leave after the first chunk
            return (await ring.chat("a", "hi", timeout=5)).content

    assert asyncio.run(main())


def test_changing_one_limit_rewrites_only_its_table(tmp_path):
    from llmring.lockfile import edit

    path = tmp_path / "llmring.lock"
    path.write_text(LIMITED)

    def change(lf):
        lf.limits["openai:gpt-4o-mini"] = Limit(rpm=50)
        lf.limits["anthropic"] = Limit(concurrency=4)

    edit(path, change)
    text = path.read_text()
    assert "# what our OpenAI org is allowed\n[limits.openai]   # all openai: models together\n" in text
    assert '[limits."openai:gpt-4o-mini"]\nrpm = 50\n' in text and "[limits.anthropic]\nconcurrency = 4\n" in text
    edit(path, lambda lf: lf.limits.pop("openai"))
    text = path.read_text()
    assert "[limits.openai]" not in text and '[limits."openai:gpt-4o-mini"]' in text


def test_the_token_estimate_counts_text_tools_and_the_answer():
    from llmring import LLMRequest
    from llmring.limits import DEFAULT_OUTPUT_TOKENS, estimate

    assert estimate(LLMRequest(messages=["x" * 400], max_tokens=50)) == 101 + 50
    assert estimate(LLMRequest(messages=["x" * 400])) == 101 + DEFAULT_OUTPUT_TOKENS
    with_tools = LLMRequest(messages=["x" * 400], max_tokens=50, tools=[{"name": "f" * 400}])
    assert estimate(with_tools) > 200


def test_a_streams_usage_corrects_the_estimate_when_it_ends(tmp_path):
    path = limited_lockfile(tmp_path, ["mock:echo"], "[limits.mock]\ntpm = 1000\n")
    with Ring(path) as ring:
        for _ in range(5):  # estimated at 900 each, about 10 used: without the correction the second waits
            assert "".join(c.delta for c in ring.stream("a", "hi", max_tokens=899, timeout=5))


def test_aliases_shows_the_limits_a_pinned_binding_counts_against(tmp_path):
    # What aliases --json lists is what the walker takes: the snapshot a pin calls counts against
    # the table written for it and the one written for the id the binding names.
    import json

    from clitools import runner
    from lockfiles import one_alias

    from llmring import Ring
    from llmring.cli import cli

    path = one_alias(tmp_path, ["openai:gpt-4o"], head='[limits."openai:gpt-4o"]\nrpm = 1\n\n'
                     '[limits."openai:gpt-4o-2024-08-06"]\nrpm = 2\n')
    Ring(path).pin()
    data = json.loads(runner().invoke(cli, ["aliases", "--json", "--file", str(path)]).stdout)
    assert data["aliases"][0]["limits"] == {"openai:gpt-4o": {"rpm": 1}, "openai:gpt-4o-2024-08-06": {"rpm": 2}}
