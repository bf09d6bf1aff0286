"""The State contract on a real redis-server (tests/redisfix.py), the fallback to in-process
state when Redis dies mid-run, and how a Ring picks its state."""

import logging
import pickle
import subprocess
import sys
import threading

import pytest
from fakeclock import Clock
from httpfake import closed_port, wait_for
from lockfiles import one_alias
from redisfix import RedisServer

from llmring import Ring
from llmring.exceptions import ConfigurationError
from llmring.redis_state import FAILURES_TTL, RedisState
from llmring.state import Limit, MemoryState
from llmring.state_select import FallbackState, state_for

REF = "openai:gpt-4o-mini"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    s = RedisServer(tmp_path_factory.mktemp("redis"))
    yield s
    s.close()


@pytest.fixture
def redis_state(redis_server):
    s = RedisState(redis_server.fresh_url())
    yield s
    s.close()


def backend(name, redis_server):
    if name == "memory":
        yield MemoryState(Clock())
        return
    s = RedisState(redis_server.fresh_url())
    yield s
    s.close()


# The State contract, on each backend: the breaker's storage...
@pytest.fixture(params=["memory", "redis"])
def state(request, redis_server):
    yield from backend(request.param, redis_server)


# ...and limits and cool-downs: the in-process and the shared backend keep the same contract.
LIMIT_BACKENDS = ["memory", "redis"]


@pytest.fixture(params=LIMIT_BACKENDS)
def limits(request, redis_server):
    yield from backend(request.param, redis_server)


def age(s, key, seconds):
    """Move everything `key` took `seconds` into the past (the 60 s window cannot be waited for):
    MemoryState's clock moves on; in Redis, the times the scripts recorded move back."""
    if isinstance(s, MemoryState):
        s.clock.now += seconds
        return
    for kind in ("window", "inflight", "second"):
        k = s._key(kind, key)
        for member, score in s.client.zrange(k, 0, -1, withscores=True):
            s.client.zadd(k, {member: score - seconds * 1000})


def lockfile(tmp_path, models):
    return one_alias(tmp_path, models)


# -- the circuit breaker's storage -----------------------------------------------------------------
def test_failures_count_up_and_a_success_forgets_them_and_the_rest(state):
    assert [state.failure(REF) for _ in range(3)] == [1, 2, 3]
    state.rest(REF, 30)
    assert 0 < state.resting(REF) <= 30
    state.success(REF)
    assert state.resting(REF) == 0
    assert state.failure(REF) == 1


def test_a_rest_of_nothing_is_no_rest_and_models_are_separate(state):
    state.rest(REF, 0)
    assert state.resting(REF) == 0
    state.rest(REF, 30)
    assert state.resting("anthropic:claude") == 0
    assert state.failure("anthropic:claude") == 1


def test_rests_and_failure_counts_expire_in_redis(redis_state):
    redis_state.failure(REF)
    assert 0 < redis_state.client.ttl(redis_state._key("failures", REF)) <= FAILURES_TTL
    redis_state.rest(REF, 2)
    assert redis_state.resting(REF) > 0
    assert wait_for(lambda: redis_state.resting(REF) == 0, 30)


def commands(redis_state):
    """How many commands the server has run (INFO itself left out): grows with every round trip."""
    stats = redis_state.client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def test_a_healthy_model_called_again_soon_costs_no_round_trip(redis_server):
    clock = Clock()
    s = RedisState(redis_server.fresh_url(), clock=clock)
    assert s.resting(REF) == 0 and s.cooling(REF) == 0  # asks Redis: one round trip for both
    before = commands(s)
    for _ in range(5):  # what a call asks before its try and says after it
        assert s.resting(REF) == 0 and s.cooling(REF) == 0
        s.success(REF)
        clock.now += s.fresh / 10
    assert commands(s) == before
    clock.now += s.fresh  # the word from Redis is old now: ask again
    assert s.resting(REF) == 0
    assert commands(s) > before


def test_another_workers_rest_and_cool_down_are_seen_within_fresh_and_ones_own_at_once(redis_server):
    url, clock = redis_server.fresh_url(), Clock()
    mine, other = RedisState(url, clock=clock), RedisState(url)
    assert mine.resting(REF) == 0 and mine.cooling(REF) == 0
    other.rest(REF, 30)
    other.cool(REF, 20)
    assert mine.resting(REF) == 0  # trusted for `fresh` seconds: the documented lag
    clock.now += mine.fresh + 0.001
    assert 0 < mine.resting(REF) <= 30 and 0 < mine.cooling(REF) <= 20
    mine.success(REF)  # it answered here: rest over for everyone, the cool-down is the provider's
    assert mine.resting(REF) == 0 and other.resting(REF) == 0 and mine.cooling(REF) > 0
    mine.rest("b:m", 30)
    mine.cool("c:m", 10)
    assert mine.resting("b:m") > 0 and mine.cooling("c:m") > 0  # no clock moved: its own, at once


def test_a_success_clears_failures_another_worker_counted_once_the_word_is_old(redis_server):
    url, clock = redis_server.fresh_url(), Clock()
    mine, other = RedisState(url, clock=clock), RedisState(url)
    assert mine.resting(REF) == 0
    other.failure(REF)
    other.failure(REF)
    clock.now += mine.fresh + 0.001
    mine.success(REF)
    assert other.failure(REF) == 1  # the two before were forgotten
    mine.failure(REF)  # its own failure: the next success must reach Redis, however soon
    mine.success(REF)
    assert other.failure(REF) == 1


# -- limits ---------------------------------------------------------------------------------------
def test_rpm_admits_up_to_the_limit_then_says_how_long_until_room(limits):
    limit = Limit(rpm=3)
    assert all(limits.admit("openai", limit, 10, 30)[0] == 0 for _ in range(3))  # a small rpm is not paced
    wait, ticket = limits.admit("openai", limit, 10, 30)
    assert ticket is None and 55 < wait <= 60
    age(limits, "openai", 61)  # the window slides: the three calls are more than a minute old
    wait, ticket = limits.admit("openai", limit, 10, 30)
    assert wait == 0 and ticket


def test_rpm_room_comes_when_the_oldest_call_leaves_the_window(limits):
    limit = Limit(rpm=2)
    limits.admit("k", limit, 1, 30)
    age(limits, "k", 40)
    limits.admit("k", limit, 1, 30)
    wait, _ = limits.admit("k", limit, 1, 30)
    assert 15 < wait <= 20  # the first call leaves the window in 20 s, not the second in 60


def test_an_rpm_is_paced_its_60th_part_a_second_and_a_call_never_made_frees_its_place(limits):
    limit = Limit(rpm=60 * 12)  # twelve a second
    for _ in range(11):
        assert limits.admit("k", limit, 1, 30)[0] == 0
    _, ticket = limits.admit("k", limit, 1, 30)
    wait, refused = limits.admit("k", limit, 1, 30)
    assert refused is None and 0 < wait <= 1
    limits.release("k", ticket, 0)  # never made
    assert limits.admit("k", limit, 1, 30)[0] == 0
    assert limits.admit("k", limit, 1, 30)[1] is None
    age(limits, "k", 1)
    assert limits.admit("k", limit, 1, 30)[0] == 0


def test_without_pacing_a_whole_rpm_is_admitted_at_once(redis_server):
    for s in (MemoryState(Clock(), pace=False), RedisState(redis_server.fresh_url(), pace=False)):
        assert all(s.admit("k", Limit(rpm=30), 1, 30)[0] == 0 for _ in range(30))
        assert s.admit("k", Limit(rpm=30), 1, 30)[1] is None


def test_tpm_counts_the_estimate_and_the_usage_reported_replaces_it(limits):
    limit = Limit(tpm=100)
    wait, ticket = limits.admit("k", limit, 60, 30)
    assert wait == 0
    assert limits.admit("k", limit, 50, 30)[1] is None  # 60 + 50 > 100
    limits.release("k", ticket, 30)  # it really used 30
    assert limits.admit("k", limit, 50, 30)[0] == 0  # 30 + 50 <= 100
    assert limits.admit("k", limit, 50, 30)[1] is None


def test_a_finished_call_counts_in_the_window_from_its_end(limits):
    # The provider counts a call when it arrives, a little after llmring let it go: counted
    # from its admission, it would leave llmring's window first and the next call meet a 429
    # (seen in bench/fleet_bench.py: 4 to 7 429s in 75 s at rpm = 600, none after this).
    limit = Limit(rpm=1)
    _, ticket = limits.admit("k", limit, 1, 30)
    age(limits, "k", 5)  # the call took 5 s
    limits.release("k", ticket, None)
    wait, _ = limits.admit("k", limit, 1, 30)
    assert 55 < wait <= 60  # a minute from its end, not 55 s from now


def test_a_call_never_made_is_forgotten_request_and_tokens(limits):
    limit = Limit(rpm=1, tpm=100)
    _, ticket = limits.admit("k", limit, 90, 30)
    limits.release("k", ticket, 0)
    wait, again = limits.admit("k", limit, 90, 30)
    assert wait == 0 and again


def test_tpm_says_when_enough_tokens_leave_the_window(limits):
    limit = Limit(tpm=100)
    limits.admit("k", limit, 60, 30)
    age(limits, "k", 30)
    limits.admit("k", limit, 30, 30)
    wait, _ = limits.admit("k", limit, 50, 30)
    assert 25 < wait <= 30  # room when the 60 leave, 30 s from now


def test_the_running_token_total_matches_the_window(redis_state):
    limit, total = Limit(tpm=10_000), redis_state._key("tokens", "k")
    tickets = [redis_state.admit("k", limit, 100, 30)[1] for _ in range(5)]
    redis_state.release("k", tickets[0], 30)
    redis_state.release("k", tickets[1], 250)
    assert int(redis_state.client.get(total)) == 30 + 250 + 300
    age(redis_state, "k", 61)
    redis_state.admit("k", limit, 7, 30)
    redis_state.release("k", tickets[2], 1)  # it left the window: nothing to correct
    assert int(redis_state.client.get(total)) == 7


def test_a_release_without_usage_keeps_the_estimate(limits):
    limit = Limit(tpm=100)
    _, ticket = limits.admit("k", limit, 80, 30)
    limits.release("k", ticket, None)
    assert limits.admit("k", limit, 30, 30)[1] is None


def test_a_call_larger_than_the_whole_tpm_goes_alone(limits):
    limit = Limit(tpm=100)
    assert limits.admit("k", limit, 500, 30)[0] == 0  # else it could never run
    assert limits.admit("k", limit, 1, 30)[1] is None


def test_concurrency_frees_a_slot_on_release(limits):
    limit = Limit(concurrency=2)
    tickets = [limits.admit("k", limit, 1, 30)[1] for _ in range(2)]
    wait, ticket = limits.admit("k", limit, 1, 30)
    assert ticket is None and 0 < wait <= 30
    limits.release("k", tickets[0], 5)
    assert limits.admit("k", limit, 1, 30)[0] == 0


def test_a_lease_not_released_frees_itself(limits):
    limit = Limit(concurrency=1)
    assert limits.admit("k", limit, 1, 20)[0] == 0  # a worker that dies mid-call
    assert limits.admit("k", limit, 1, 20)[1] is None
    age(limits, "k", 21)
    assert limits.admit("k", limit, 1, 20)[0] == 0


def test_all_limits_must_have_room_and_a_refusal_takes_nothing(limits):
    limit = Limit(rpm=5, tpm=1000, concurrency=1)
    _, ticket = limits.admit("k", limit, 10, 30)
    assert limits.admit("k", limit, 10, 30)[1] is None  # concurrency is full
    for _ in range(4):  # the refusal took none of the 5 requests of the minute
        limits.release("k", ticket, None)
        wait, ticket = limits.admit("k", limit, 10, 30)
        assert wait == 0
    limits.release("k", ticket, None)
    assert limits.admit("k", limit, 10, 30)[1] is None


def test_keys_are_prefixed_and_namespaces_are_separate(redis_server):
    a, b = RedisState(redis_server.fresh_url()), RedisState(redis_server.fresh_url())
    a.failure(REF)
    a.admit("openai", Limit(rpm=1, concurrency=1), 5, 30)
    a.cool("openai", 30)
    assert b.admit("openai", Limit(rpm=1), 5, 30)[0] == 0 and b.cooling("openai") == 0
    keys = a.client.keys(a.prefix + "*")
    assert len(keys) == 6 and all(k.startswith(b"llmring:t") for k in keys)
    assert all(a.client.pttl(k) > 0 for k in keys)  # nothing is left behind for ever


# -- cool-downs -----------------------------------------------------------------------------------
def test_a_cool_down_is_honoured_and_a_shorter_one_does_not_cut_it(limits):
    assert limits.cooling("openai") == 0
    limits.cool("openai", 30)
    limits.cool("openai", 1)
    assert 25 < limits.cooling("openai") <= 30
    assert limits.cooling("anthropic") == 0


def test_a_cool_down_ends_by_itself(redis_state):
    redis_state.cool("k", 0.2)
    assert wait_for(lambda: redis_state.cooling("k") == 0, 30)


# -- atomicity ------------------------------------------------------------------------------------
HAMMER = """
import sys
from llmring.redis_state import RedisState
from llmring.state import Limit
s = RedisState(sys.argv[1], pace=False)
print(sum(s.admit("k", Limit(rpm=int(sys.argv[2])), 1, 30)[0] == 0 for _ in range(40)))
"""


def test_eight_threads_and_two_processes_never_take_more_than_the_rpm(redis_server):
    url, rpm = redis_server.fresh_url(), 25
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, url, str(rpm)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    admitted, start = [], threading.Barrier(8)

    def hammer():
        s = RedisState(url, pace=False)  # the minute's window alone, hammered
        start.wait()
        admitted.append(sum(s.admit("k", Limit(rpm=rpm), 1, 30)[0] == 0 for _ in range(40)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from_procs = [int(p.communicate()[0]) for p in procs]
    assert sum(admitted) + sum(from_procs) == rpm  # 400 tries: all the room is taken, never more


def test_concurrent_holders_never_exceed_the_concurrency(redis_server):
    url, lock, held, peak = redis_server.fresh_url(), threading.Lock(), [0], [0]

    def worker():
        s = RedisState(url)
        for _ in range(30):
            wait, ticket = s.admit("k", Limit(concurrency=3), 1, 30)
            if ticket is None:
                continue
            with lock:
                held[0] += 1
                peak[0] = max(peak[0], held[0])
            with lock:
                held[0] -= 1
            s.release("k", ticket, None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= 3


# -- fallback when Redis dies, and resuming ------------------------------------------------------
def test_a_dead_redis_falls_back_with_one_warning_and_sharing_resumes(tmp_path, caplog):
    server = RedisServer(tmp_path)
    try:
        state = FallbackState(RedisState(server.patient_url), server.url, retry_every=0.2)
        other = RedisState(server.patient_url)
        state.rest(REF, 30)
        assert other.resting(REF) > 0  # shared
        server.stop()
        with caplog.at_level(logging.WARNING, logger="llmring"):
            for _ in range(50):  # calls go on, with this process's own state
                state.failure("x")
                state.resting(REF)
            assert not state.sharing
            assert state.failure("x") == 51  # counted in process meanwhile
            down = [r for r in caplog.records if "failed" in r.getMessage()]
            assert len(down) == 1 and "ConnectionError" in down[0].getMessage()
            server.start()  # same port
            assert wait_for(lambda: state.resting("y") == 0 and state.sharing, 20)
            assert [r.getMessage() for r in caplog.records if "is back" in r.getMessage()]
        state.rest("y", 30)
        assert other.resting("y") > 0  # shared again
    finally:
        server.close()


def test_a_ticket_is_released_where_it_was_taken(tmp_path):
    server = RedisServer(tmp_path)
    try:
        state = FallbackState(RedisState(server.patient_url), server.url, retry_every=60)
        wait, ticket = state.admit("k", Limit(concurrency=1), 1, 30)
        assert ticket.startswith("s:")
        server.stop()
        state.release("k", ticket, 3)  # no exception: its lease frees the slot when it ends
        assert not state.sharing
    finally:
        server.close()


def test_a_ring_with_an_unreachable_redis_still_answers(tmp_path, caplog):
    ring = Ring(lockfile(tmp_path, ["mock:echo"]), state_url=f"redis://127.0.0.1:{closed_port()}/0")
    with caplog.at_level(logging.WARNING, logger="llmring"):
        for _ in range(3):
            assert ring.chat("a", "hello").content
    assert len([r for r in caplog.records if "shared state" in r.getMessage()]) == 1


def test_the_cli_says_once_that_the_shared_state_is_unreachable_and_answers(tmp_path, monkeypatch):
    from clitools import runner

    from llmring.cli import cli

    monkeypatch.chdir(tmp_path)
    lockfile(tmp_path, ["mock:echo"])
    env = {"LLMRING_STATE_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    for _ in range(2):  # the notice is set up once per process, whatever the number of commands
        result = runner().invoke(cli, ["chat", "hello", "--model", "a"], env=env)
        assert result.exit_code == 0 and result.stdout.strip() == "hello"
        notices = [line for line in result.stderr.splitlines() if "shared state" in line]
        assert len(notices) == 1 and "failed" in notices[0] and "Traceback" not in result.stderr


def test_rings_sharing_a_redis_share_the_circuit_breaker(tmp_path, redis_server):
    url = redis_server.fresh_url()
    path = lockfile(tmp_path, ["mock:fail-server", "mock:echo"])
    a, b = Ring(path, state_url=url), Ring(path, state_url=url)
    a.walker.sleep = b.walker.sleep = lambda s: None
    for _ in range(3):
        a.chat("a", "hi")
    assert b.breaker.is_open("mock:fail-server")
    r = b.chat("a", "hi")
    assert r.model == "mock:echo" and len(r.attempts) == 2 and r.attempts[0].skipped


# -- selection ------------------------------------------------------------------------------------
def test_no_url_keeps_state_in_the_process_and_never_loads_redis(tmp_path):
    assert type(state_for()) is MemoryState
    code = (f"import sys\nfrom llmring import Ring\nRing({str(lockfile(tmp_path, ['mock:echo']))!r}).chat('a', 'hi')\n"
            "print('redis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_env_url_is_used_and_an_explicit_empty_one_wins(monkeypatch, redis_server):
    monkeypatch.setenv("LLMRING_STATE_URL", redis_server.patient_url)
    s = state_for()
    assert isinstance(s, FallbackState) and isinstance(s.shared, RedisState)
    assert type(state_for("")) is MemoryState


def test_an_unknown_scheme_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LLMRING_STATE_URL", "memcached://u:s3cret@host/0")
    with pytest.raises(ConfigurationError) as e:
        state_for()
    assert "LLMRING_STATE_URL" in str(e.value) and "redis://" in str(e.value) and "s3cret" not in str(e.value)


@pytest.mark.parametrize("url", ["redis://:s3cret@h:abc/0", "redis://:s3cret@h:99999/0",
                                 "redis://:s3cret@h:6379/0?socket_timeout=soon"])
def test_a_malformed_redis_url_is_a_clear_error_without_the_password(url):
    with pytest.raises(ConfigurationError, match="not a valid Redis URL") as e:
        state_for(url)
    assert "s3cret" not in str(e.value)


def test_a_ring_refuses_a_state_url_it_cannot_use_when_it_is_made(tmp_path):
    with pytest.raises(ConfigurationError, match="state_url"):
        Ring(lockfile(tmp_path, ["mock:echo"]), state_url="http://127.0.0.1:6379/0")


def test_redis_py_url_options_are_kept(redis_server):
    s = RedisState(redis_server.fresh_url() + "&decode_responses=True")
    wait, ticket = s.admit("k", Limit(concurrency=1), 1, 30)
    assert wait == 0 and isinstance(ticket, str)
    s.release("k", ticket, 2)
    assert s.admit("k", Limit(concurrency=1), 1, 30)[0] == 0


def test_without_redis_py_the_error_says_what_to_install():
    code = ("import sys\nsys.modules['redis'] = None\nfrom llmring.state_select import state_for\n"
            "from llmring.exceptions import ConfigurationError\n"
            "try:\n    state_for('redis://127.0.0.1:1/0')\nexcept ConfigurationError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "llmring[redis]"' in out.stdout


def test_the_password_never_shows(caplog):
    url = f"redis://:s3cret-pw@127.0.0.1:{closed_port()}/0?namespace=app"
    state = state_for(url)
    with caplog.at_level(logging.WARNING, logger="llmring"):
        state.failure(REF)
    assert "s3cret" not in repr(state) + repr(state.shared) + caplog.text
    assert "127.0.0.1" in caplog.text


def test_states_pickle_as_their_url(redis_server):
    url = redis_server.fresh_url()
    state = state_for(url)
    state.rest(REF, 30)
    copy = pickle.loads(pickle.dumps(state))
    assert isinstance(copy, FallbackState) and copy.resting(REF) > 0
    assert copy.shared.prefix == state.shared.prefix


# -- fork -----------------------------------------------------------------------------------------
def test_a_forked_child_uses_the_shared_state_even_if_forked_mid_update(redis_server):
    import os
    import time

    state = state_for(redis_server.fresh_url())
    state.rest(REF, 30)  # the parent's connection is open
    with state._lock:  # as if another thread were inside an update when the process forked
        pid = os.fork()
        if pid == 0:
            try:
                state.rest("child", 30)
                os._exit(0 if state.resting(REF) > 0 and state.sharing else 1)
            finally:
                os._exit(2)
    give_up = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < give_up:
        time.sleep(0.02)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0
    assert state.resting("child") > 0  # written by the child, through its own connection


def test_a_stalled_redis_costs_a_call_one_short_timeout_and_is_retried_only_now_and_then(caplog):
    import socket
    import time

    silent = socket.socket()  # the handshake completes, nothing ever answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    tried, now = [], [0.0]

    class Counting(RedisState):
        def failure(self, ref):
            tried.append(ref)
            return super().failure(ref)

    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    state = FallbackState(Counting(url), url, retry_every=5, clock=lambda: now[0])
    try:
        with caplog.at_level(logging.WARNING, logger="llmring"):
            started = time.monotonic()
            assert [state.failure(REF) for _ in range(100)] == list(range(1, 101))
            assert time.monotonic() - started < 10  # the stall was bounded (0.5 s), not 100 times
            assert len(tried) == 1
            now[0] = 5.0
            state.failure(REF)
            assert len(tried) == 2  # tried again once the wait was over
        down = [r.getMessage() for r in caplog.records]
        assert len(down) == 1 and "Timeout" in down[0]
    finally:
        silent.close()


def test_a_probe_interrupted_by_ctrl_c_lets_a_later_call_probe():
    from llmring.state import State

    class Flaky(State):
        def __init__(self):
            self.answers = [ConnectionError("down"), KeyboardInterrupt(), 0.0]

        def resting(self, ref):
            answer = self.answers.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer

    now = [0.0]
    state = FallbackState(Flaky(), "flaky", retry_every=1, clock=lambda: now[0])
    assert state.resting(REF) == 0 and not state.sharing
    now[0] = 1.0
    with pytest.raises(KeyboardInterrupt):
        state.resting(REF)
    now[0] = 2.0
    state.resting(REF)
    assert state.sharing


def test_threads_of_a_ring_go_on_through_a_redis_crash_and_share_again_after(tmp_path, caplog):
    server = RedisServer(tmp_path)
    try:
        ring = Ring(lockfile(tmp_path, ["mock:fail-server", "mock:echo"]), state_url=server.patient_url)
        ring.breaker.state.retry_every = 0.2
        done, errors, stop = [0], [], threading.Event()

        def caller():
            while not stop.is_set():
                try:
                    ring.chat("a", "hi")
                    done[0] += 1
                except Exception as e:  # noqa: BLE001 - collected: the test fails on any
                    errors.append(e)

        threads = [threading.Thread(target=caller) for _ in range(6)]
        with caplog.at_level(logging.WARNING, logger="llmring"):
            for t in threads:
                t.start()
            assert wait_for(lambda: done[0] >= 50, 60)
            server.stop()
            assert wait_for(lambda: not ring.breaker.state.sharing, 60)
            mark = done[0]
            assert wait_for(lambda: done[0] >= mark + 50, 60)  # calls go on meanwhile
            server.start()
            assert wait_for(lambda: ring.breaker.state.sharing, 60)
            mark = done[0]
            assert wait_for(lambda: done[0] >= mark + 50, 60)
            stop.set()
            for t in threads:
                t.join()
        assert errors == []
        lines = [r.getMessage() for r in caplog.records if "shared state" in r.getMessage()]
        assert len(lines) == 2 and "failed" in lines[0] and "is back" in lines[1]
        assert RedisState(server.patient_url).resting("mock:fail-server") > 0  # shared again
    finally:
        server.close()


def test_a_call_begun_before_the_failure_does_not_say_it_is_back(caplog):
    from llmring.state import State

    entered, go_on = threading.Event(), threading.Event()

    class Slow(State):
        def resting(self, ref):  # began before the crash, answers after it
            entered.set()
            go_on.wait(30)
            return 0.0

        def failure(self, ref):
            raise ConnectionError("down")

    state = FallbackState(Slow(), "slow", retry_every=60)
    slow = threading.Thread(target=state.resting, args=(REF,))
    with caplog.at_level(logging.WARNING, logger="llmring"):
        slow.start()
        assert entered.wait(30)
        state.failure(REF)
        go_on.set()
        slow.join()
    assert not state.sharing
    assert len(caplog.records) == 1
