"""Many processes: a Ring made before fork works in the children and the parent, each on its own
connections; a Ring pickles as its settings and works where it lands (spawn, ProcessPoolExecutor,
a Dask cluster). Every process talks to a real server on 127.0.0.1 that echoes what it was sent,
so an answer read off another process's connection shows up as the wrong text."""

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import pickle
import select
import signal
import threading
import weakref
from concurrent.futures import ProcessPoolExecutor

import pytest
from httpfake import openai_answer

from llmring import Ring
from llmring.aio import AsyncRing
from llmring.failover import CircuitBreaker, RetryPolicy
from llmring.state import MemoryState, State

KEY = "sk-local-very-secret-key-987654"
# A child that never answers is a failure (a deadlock or a garbled connection), found out here;
# a healthy child on a loaded machine answers in well under a second.
CHILD_GIVES_UP = 60


def echo(rec):
    text = rec.json()["messages"][-1]["content"]
    return openai_answer(f"echo {text}", 1, 1, model="m")


@pytest.fixture
def lock(tmp_path, server, monkeypatch):
    server.add("POST", "/v1/chat/completions", echo)
    monkeypatch.setenv("LOCAL_KEY", KEY)
    path = tmp_path / "llmring.lock"
    path.write_text(f'version = "1.0"\ndefault_profile = "default"\n\n'
                    f'[providers.local]\ntype = "openai"\nbase_url = "{server.url}/v1"\napi_key_env = "LOCAL_KEY"\n\n'
                    '[profiles.default]\nname = "default"\n\n'
                    '[[profiles.default.bindings]]\nalias = "ask"\nmodels = ["local:m"]\n')
    return path


def ask(ring, text):
    """What a worker does with the Ring it was given (module level: other processes import it)."""
    return ring.chat("ask", text).content


def ask_async(ring, text):
    async def go():
        return (await ring.chat("ask", text)).content

    return asyncio.run(go())


def in_child(work):
    """os.fork(); the child runs `work()` and reports its result (or error) on a pipe. Returns
    what the child reported, once it has exited."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(r)
            out = {"ok": work()}
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out, code = {"error": repr(e)}, 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    return _collect(r, pid)


def _collect(r, pid):
    data = b""
    try:
        while True:
            ready, _, _ = select.select([r], [], [], CHILD_GIVES_UP)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child did not finish within {CHILD_GIVES_UP} s (deadlocked or hung)")
            part = os.read(r, 65536)
            if not part:
                break
            data += part
    finally:
        os.close(r)
    os.waitpid(pid, 0)
    out = json.loads(data)
    assert "error" not in out, out["error"]
    return out["ok"]


# -- fork --------------------------------------------------------------------------------------

def test_a_ring_used_before_fork_works_in_child_and_parent_on_separate_connections(lock, server):
    ring = Ring(lock)
    assert ask(ring, "before") == "echo before"
    assert server.connections == 1
    assert in_child(lambda: ask(ring, f"child {os.getpid()}")).startswith("echo child ")
    assert ask(ring, "parent after") == "echo parent after"
    # The parent kept its keep-alive connection; the child opened its own instead of writing
    # on the parent's socket.
    assert server.connections == 2
    assert len(server.requests) == 3


def test_a_call_in_flight_in_the_parent_at_fork_still_gets_its_answer(lock, server):
    arrived, release = threading.Event(), threading.Event()

    def slow_echo(rec):
        if rec.json()["messages"][-1]["content"] == "slow":
            arrived.set()
            release.wait()
        return echo(rec)

    server.routes.clear()
    server.add("POST", "/v1/chat/completions", slow_echo)
    ring = Ring(lock)
    answer = []
    t = threading.Thread(target=lambda: answer.append(ask(ring, "slow")))
    t.start()
    arrived.wait()
    try:  # the child inherits the socket of the parent's call, uses its own, and exits
        assert in_child(lambda: ask(ring, "child")) == "echo child"
    finally:
        release.set()
        t.join()
    assert answer == ["echo slow"]
    assert server.connections == 2


@contextlib.contextmanager
def held_by_another_thread(lock):
    """`lock` held by a thread of this process for the duration (as at a fork mid-update)."""
    taken, done = threading.Event(), threading.Event()

    def hold():
        with lock:
            taken.set()
            done.wait()

    t = threading.Thread(target=hold)
    t.start()
    taken.wait()
    try:
        yield
    finally:
        done.set()
        t.join()


@pytest.mark.parametrize("holder", ["store", "providers", "state"])  # the resolver takes no lock
def test_a_lock_held_by_another_thread_at_fork_does_not_hang_the_child(lock, holder):
    ring = Ring(lock)
    assert ask(ring, "warm") == "echo warm"
    lock_of = {"store": ring.store, "providers": ring.providers, "state": ring.breaker.state}[holder]._lock
    with held_by_another_thread(lock_of):  # the child has no such thread: the lock would never be released
        assert in_child(lambda: ask(ring, "child")) == "echo child"


@pytest.mark.parametrize("held", ["registry", "plugins"])
def test_a_process_wide_lock_held_at_fork_does_not_hang_the_child(lock, held):
    # The model registry and the plugin registry are loaded once per process, under a lock;
    # a fork while another thread holds it must not leave the child waiting forever.
    import llmring.plugins
    import llmring.registry

    lock_of = llmring.registry._lock if held == "registry" else llmring.plugins.registry._lock
    with held_by_another_thread(lock_of):
        assert in_child(lambda: [llmring.registry.load(refresh=True).version != "",
                                 ask(Ring(lock), "child")]) == [True, "echo child"]


def test_the_child_starts_with_an_empty_breaker(lock):
    ring = Ring(lock, breaker=CircuitBreaker(threshold=1, cooldown=300))
    ring.breaker.record("local:m", "server")
    assert ring.breaker.is_open("local:m")
    assert in_child(lambda: [ring.breaker.remaining("local:m"), ask(ring, "x")]) == [0.0, "echo x"]
    assert ring.breaker.is_open("local:m")  # the parent's is untouched


def test_an_async_ring_used_before_fork_works_in_the_child(lock, server):
    ring = AsyncRing(lock, max_concurrency=4)
    assert ask_async(ring, "before") == "echo before"  # the parent's pool thread exists now
    assert in_child(lambda: ask_async(ring, "child")) == "echo child"
    assert ask_async(ring, "after") == "echo after"
    assert server.connections == 2


def _child_asks(ring, text, results):
    results.put((text, ask(ring, text)))


def test_multiprocessing_fork_children_and_the_parent_share_a_ring(lock, server):
    ring = Ring(lock)
    assert ask(ring, "parent") == "echo parent"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_child_asks, args=(ring, f"child {i}", results)) for i in range(3)]
    for p in procs:
        p.start()
    assert ask(ring, "parent again") == "echo parent again"  # while the children work
    got = dict(results.get(timeout=CHILD_GIVES_UP) for _ in procs)
    for p in procs:
        p.join(CHILD_GIVES_UP)
        assert p.exitcode == 0
    assert got == {f"child {i}": f"echo child {i}" for i in range(3)}
    assert server.connections == 1 + len(procs)


# -- pickle ------------------------------------------------------------------------------------

def test_a_ring_pickles_as_its_settings(lock):
    retry = RetryPolicy(max_retries=5, base_delay=0.5)
    ring = Ring(lock, profile="default", timeout=33, connect_timeout=4, retry=retry,
                breaker=CircuitBreaker(threshold=7, cooldown=12), pool_size=9)
    assert ask(ring, "x") == "echo x"  # connected, key read, providers made
    ring.breaker.record("local:m", "server")
    data = pickle.dumps(ring)
    assert KEY.encode() not in data
    back = pickle.loads(data)
    assert type(back) is Ring and back is not ring
    assert (back.lockfile_path, back.lockfile_source, back.profile) == (lock, "explicit", "default")
    assert (back.walker.read_timeout, back.walker.connect_timeout, back.providers.pool_size) == (33, 4, 9)
    assert back.retry == retry
    assert (back.breaker.threshold, back.breaker.cooldown) == (7, 12)
    assert back.breaker.state.failure("local:m") == 1  # the counts stayed behind
    assert ask(back, "y") == "echo y"


def test_copies_of_one_ring_are_one_ring_in_a_process_until_one_changes(lock):
    ring = Ring(lock, breaker=CircuitBreaker(threshold=7))
    data = pickle.dumps(ring)
    copy = pickle.loads(data)
    assert pickle.loads(data) is copy
    assert pickle.loads(pickle.dumps(ring)) is copy  # pickled again, unchanged
    assert pickle.loads(pickle.dumps(copy)) is copy
    assert pickle.loads(pickle.dumps(Ring(lock, breaker=CircuitBreaker(threshold=7)))) is not copy
    ring.profile = "default"  # the original changed: a new copy, with the change
    changed = pickle.loads(pickle.dumps(ring))
    assert changed is not copy and changed.profile == "default"
    changed.profile = None  # the copy changed: it is not handed out for the original any more
    again = pickle.loads(pickle.dumps(ring))
    assert again is not changed and again.profile == "default"


def test_a_relative_lockfile_path_is_kept_as_the_same_file(lock, tmp_path, monkeypatch):
    ring = Ring("llmring.lock")  # the tests run in tmp_path
    data = pickle.dumps(ring)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert pickle.loads(data).lockfile_path == lock


def test_a_ring_on_the_bundled_lockfile_stays_on_it_and_never_edits_it():
    ring = pickle.loads(pickle.dumps(Ring()))
    assert ring.lockfile_source == "bundled"
    assert ring.store.edit_path() != ring.lockfile_path


class SharedState(State):
    """A stand-in for a state shared by many processes: it travels as itself."""

    def __init__(self, name):
        self.name = name


def test_a_shared_breaker_state_travels_and_an_in_process_one_does_not():
    assert type(pickle.loads(pickle.dumps(MemoryState()))) is MemoryState
    breaker = pickle.loads(pickle.dumps(CircuitBreaker(state=SharedState("redis://x"))))
    assert breaker.state.name == "redis://x"


def test_an_async_ring_pickles_with_its_concurrency(lock):
    ring = AsyncRing(lock, max_concurrency=3)
    assert ask_async(ring, "x") == "echo x"  # its thread pool exists now
    back = pickle.loads(pickle.dumps(ring))
    assert back.max_concurrency == 3 and back.ring.providers.pool_size == 3
    assert ask_async(back, "y") == "echo y"


def test_the_fork_registry_does_not_keep_rings_alive(lock):
    ring = Ring(lock)
    gone = weakref.ref(ring)
    del ring
    gc.collect()
    assert gone() is None


# -- real processes that receive a pickled Ring ----------------------------------------------------

@pytest.mark.slow
def test_spawned_processes_get_a_working_ring(lock, server):
    ring = Ring(lock)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_child_asks, args=(ring, f"spawned {i}", results)) for i in range(2)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=CHILD_GIVES_UP) for _ in procs)
    for p in procs:
        p.join(CHILD_GIVES_UP)
        assert p.exitcode == 0
    assert got == {f"spawned {i}": f"echo spawned {i}" for i in range(2)}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_process_pool_executor_ships_a_ring_to_its_workers(lock, server, method):
    ring = Ring(lock)
    assert ask(ring, "parent") == "echo parent"
    texts = [f"item {i}" for i in range(8)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        answers = list(pool.map(ask, [ring] * len(texts), texts, timeout=CHILD_GIVES_UP))
    assert answers == [f"echo {t}" for t in texts]
    assert len(server.requests) == 1 + len(texts)
    assert server.connections <= 1 + 2  # each worker made one copy of the Ring, and kept it


def ask_where(text, ring):
    return os.getpid(), ask(ring, text)


@pytest.mark.slow
def test_a_dask_cluster_of_worker_processes_runs_a_batch_with_a_pickled_ring(lock, server):
    from dask.distributed import Client, LocalCluster

    texts = [f"doc {i}" for i in range(24)]
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
        per_task = client.gather(client.map(ask_where, texts, ring=Ring(lock), pure=False))
        before = server.connections
        shipped_once = client.scatter(Ring(lock), broadcast=True)  # as docs/scaling.md shows
        once = client.gather(client.map(ask_where, texts, ring=shipped_once, pure=False))
    assert len(workers) == 2 and os.getpid() not in workers
    for done in per_task, once:
        assert [answer for _, answer in done] == [f"echo {t}" for t in texts]
        assert {pid for pid, _ in done} <= workers
    assert len(server.requests) == 2 * len(texts)
    # One Ring per worker process, either way: at most one connection per worker thread.
    assert before <= 4 and server.connections - before <= 4


_worker_ring = None


def _set_worker_ring(ring):
    global _worker_ring
    _worker_ring = ring


def _ask_worker_ring(text):
    return ask(_worker_ring, text)


@pytest.mark.slow
def test_a_ring_set_up_once_per_executor_worker_reuses_its_connections(lock, server):
    texts = [f"item {i}" for i in range(12)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=_set_worker_ring, initargs=(Ring(lock),)) as pool:
        answers = list(pool.map(_ask_worker_ring, texts, timeout=CHILD_GIVES_UP))
    assert answers == [f"echo {t}" for t in texts]
    assert server.connections <= 2
