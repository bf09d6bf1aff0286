"""Ring.map and AsyncRing.map: many calls at once, results in input order, one failure per item."""

import asyncio
import itertools
import pickle
import threading

import pytest
from httpfake import openai_answer, wait_for
from lockfiles import one_alias
from test_workers import in_child

from llmring import AsyncRing, LLMRequest, LLMResponse, Ring, batch
from llmring.exceptions import AliasNotFoundError, AllModelsFailedError, ConfigurationError


def write_lock(tmp_path, models, alias="a"):
    return one_alias(tmp_path, models, alias=alias)


def openai_reply(text):
    return openai_answer(text, 3, 1)


@pytest.fixture
def openai_ring(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with Ring(write_lock(tmp_path, ["openai:gpt-4o-mini"])) as ring:
        yield ring


def prompt_of(rec):
    return rec.json()["messages"][-1]["content"]


def map_threads(ring):
    return batch.workers(ring).threads()


def idle(ring):
    """No map worker of the Ring is running a call."""
    return batch.workers(ring).busy() == 0


def test_results_come_in_input_order_even_when_answers_arrive_out_of_order(openai_ring, server):
    last_answered = threading.Event()

    def reply(rec):
        prompt = prompt_of(rec)
        if prompt == "p0":  # the first item waits until the last one was answered
            assert last_answered.wait(30)
        if prompt == "p4":
            last_answered.set()
        return openai_reply(prompt.upper())

    server.add("POST", "/v1/chat/completions", reply)
    results = list(openai_ring.map("a", [f"p{i}" for i in range(5)], concurrency=5))
    assert [r.content for r in results] == ["P0", "P1", "P2", "P3", "P4"]
    assert all(r.model == "openai:gpt-4o-mini" and r.alias == "a" for r in results)


def test_one_failure_is_that_items_exception_and_the_batch_goes_on(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    inputs = ["one", LLMRequest(model="mock:fail-auth", messages="two"), 3, "four"]
    results = list(ring.map("a", inputs, concurrency=2))
    assert isinstance(results[0], LLMResponse) and results[0].content == "one"
    assert isinstance(results[1], AllModelsFailedError) and results[1].kind == "auth"
    assert isinstance(results[2], TypeError) and "not int" in str(results[2])
    assert results[3].content == "four"


def test_every_input_shape(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    inputs = ["a prompt",
              [{"role": "system", "content": "be brief"}, {"role": "user", "content": "messages"}],
              {"messages": "a dict", "max_tokens": 5},
              LLMRequest(messages="a request")]
    assert [r.content for r in ring.map("a", inputs, temperature=0.2)] == [
        "a prompt", "messages", "a dict", "a request"]


def test_shared_and_per_item_params_reach_the_request(openai_ring, server):
    server.add("POST", "/v1/chat/completions", lambda rec: openai_reply(str(rec.json().get("max_tokens"))))
    results = list(openai_ring.map("a", ["x", {"messages": "y", "max_tokens": 7}], max_tokens=3, temperature=0.5))
    assert [r.content for r in results] == ["3", "7"]  # the item's own value wins
    assert [rec.json()["temperature"] for rec in server.requests] == [0.5, 0.5]


def test_mistakes_common_to_every_item_raise_at_once_before_any_call(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    pulled = []

    def inputs():
        pulled.append(1)
        yield "x"

    with pytest.raises(AliasNotFoundError):
        ring.map("typo", inputs())
    with pytest.raises(TypeError, match="unknown parameter"):
        ring.map("a", inputs(), temprature=0.2)
    with pytest.raises(ConfigurationError, match="concurrency"):
        ring.map("a", inputs(), concurrency=0)
    assert pulled == []


def test_inputs_are_read_lazily_and_leaving_the_loop_stops_the_calls(openai_ring, server):
    server.add("POST", "/v1/chat/completions", lambda rec: openai_reply(prompt_of(rec)))
    pulled = []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield f"p{i}"

    results = openai_ring.map("a", endless(), concurrency=3)
    first = [next(results).content for _ in range(10)]
    assert first == [f"p{i}" for i in range(10)]
    assert len(pulled) <= 10 + 2 * 3  # never more than the window ahead of the consumer
    results.close()
    assert wait_for(lambda: idle(openai_ring), 30)  # every worker finished its call
    taken = len(pulled)
    assert len(server.requests) <= taken  # nothing dispatched after leaving, nothing queued is sent


def test_never_more_threads_than_the_concurrency(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    seen = []
    for _ in ring.map("a", (f"p{i}" for i in range(40)), concurrency=3):
        seen.append(len(map_threads(ring)))
    assert max(seen) <= 3


def test_a_few_items_start_only_a_few_threads(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    results = ring.map("a", ["x", "y"], concurrency=500)
    assert next(results).content == "x"
    assert len(map_threads(ring)) <= 2
    assert next(results).content == "y"


def test_an_error_of_the_inputs_comes_after_the_items_before_it(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))

    def inputs():
        yield "x"
        yield "y"
        raise ValueError("the input file is broken")

    out = []
    with pytest.raises(ValueError, match="broken"):
        for r in ring.map("a", inputs()):
            out.append(r.content)
    assert out == ["x", "y"]


def test_async_map_in_order_from_an_async_iterable(tmp_path):
    path = write_lock(tmp_path, ["mock:echo"])

    async def inputs():
        for i in range(20):
            yield f"p{i}"

    async def main():
        async with AsyncRing(path) as ring:
            return [r.content async for r in ring.map("a", inputs(), concurrency=4)]

    assert asyncio.run(main()) == [f"p{i}" for i in range(20)]


def test_async_map_keeps_failures_per_item_and_stops_when_left(tmp_path):
    path = write_lock(tmp_path, ["mock:echo"])
    pulled = []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield LLMRequest(model="mock:fail-server", messages="x") if i == 1 else f"p{i}"

    async def main():
        async with AsyncRing(path) as ring:
            results = ring.map("a", endless(), concurrency=2)
            out = []
            async for r in results:
                out.append(r)
                if len(out) == 5:
                    break
            await results.aclose()
            return out

    out = asyncio.run(main())
    assert out[0].content == "p0" and isinstance(out[1], AllModelsFailedError) and out[4].content == "p4"
    assert len(pulled) <= 5 + 2 * 2


def test_async_map_outside_an_event_loop_is_a_plain_iterator(tmp_path):
    with AsyncRing(write_lock(tmp_path, ["mock:echo"])) as ring:
        assert [r.content for r in ring.map("a", ["x", "y"])] == ["x", "y"]


def test_breaking_out_of_a_for_loop_ends_the_workers(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    for i, _ in enumerate(ring.map("a", itertools.repeat("x"), concurrency=4)):
        if i == 3:
            break  # the iterator is dropped here, not closed by hand
    assert wait_for(lambda: idle(ring), 30)


def test_async_map_left_by_break_alone_ends_its_workers(tmp_path):
    path = write_lock(tmp_path, ["mock:echo"])

    async def main():
        async with AsyncRing(path) as ring:
            async for _ in ring.map("a", itertools.repeat("x"), concurrency=4):
                break  # no aclose(): the event loop finalises the abandoned generator
            for _ in range(1500):  # up to 30 s, without blocking the loop that must close it
                if idle(ring.ring):
                    return True
                await asyncio.sleep(0.02)
            return False

    assert asyncio.run(main())


# -- the Ring's map threads, kept between map calls ---------------------------------------------

def test_leaving_the_loop_cancels_the_items_not_yet_started(openai_ring, server):
    release = threading.Event()

    def reply(rec):
        if prompt_of(rec) != "p0":  # every call after the first waits in the server
            assert release.wait(30)
        return openai_reply(prompt_of(rec))

    server.add("POST", "/v1/chat/completions", reply)
    results = openai_ring.map("a", (f"p{i}" for i in itertools.count()), concurrency=2)
    assert next(results).content == "p0"  # p1..p4 handed over by now, two of them in flight
    results.close()
    release.set()
    assert wait_for(lambda: idle(openai_ring), 30)
    assert len(server.requests) <= 1 + 2  # p0 and the two in flight: the queued ones never went


def test_a_second_map_reuses_the_threads_of_the_first(openai_ring, server):
    all_in_flight = threading.Barrier(3)  # each answer waits until 3 calls are in flight at once
    server.add("POST", "/v1/chat/completions",
               lambda rec: (all_in_flight.wait(30), openai_reply(prompt_of(rec)))[1])
    assert [r.content for r in openai_ring.map("a", ["x", "y", "z"], concurrency=3)] == ["x", "y", "z"]
    assert wait_for(lambda: idle(openai_ring), 30)
    first = set(map_threads(openai_ring))
    assert [r.content for r in openai_ring.map("a", ["u", "v", "w"], concurrency=3)] == ["u", "v", "w"]
    assert len(first) == 3 and set(map_threads(openai_ring)) == first


def test_idle_threads_exit_and_the_next_map_starts_new_ones(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    batch.workers(ring).idle_seconds = 0.01
    assert [r.content for r in ring.map("a", ["x", "y"], concurrency=2)] == ["x", "y"]
    assert wait_for(lambda: not map_threads(ring), 30)
    assert [r.content for r in ring.map("a", ["z"], concurrency=2)] == ["z"]


def test_close_lets_the_threads_go_and_the_ring_still_maps(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    assert [r.content for r in ring.map("a", ["x", "y"], concurrency=2)] == ["x", "y"]
    workers = batch.workers(ring)
    assert workers.threads()
    ring.close()
    assert wait_for(lambda: not workers.threads(), 30)
    assert [r.content for r in ring.map("a", ["z"])] == ["z"]
    assert batch.workers(ring) is not workers


def test_maps_running_at_once_on_one_ring_each_keep_their_own_concurrency(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    go = threading.Event()
    lock = threading.Lock()
    in_flight, most = {"A": 0, "B": 0}, {"A": 0, "B": 0}

    def call(item):
        name = item[0]
        with lock:
            in_flight[name] += 1
            most[name] = max(most[name], in_flight[name])
        assert go.wait(30)
        with lock:
            in_flight[name] -= 1
        return item

    out = {}

    def one_map(name):
        out[name] = list(batch.run(call, [(name, i) for i in range(10)], 2, workers=batch.workers(ring)))

    threads = [threading.Thread(target=one_map, args=(name,)) for name in "AB"]
    for t in threads:
        t.start()
    assert wait_for(lambda: in_flight == {"A": 2, "B": 2}, 30)
    go.set()
    for t in threads:
        t.join(30)
    assert out == {name: [(name, i) for i in range(10)] for name in "AB"}
    assert most == {"A": 2, "B": 2}
    assert len(map_threads(ring)) <= 4


def test_a_ring_that_mapped_before_fork_maps_in_the_child_on_threads_of_its_own(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    assert [r.content for r in ring.map("a", ["x", "y"], concurrency=2)] == ["x", "y"]
    assert wait_for(lambda: idle(ring), 30)  # the parent's threads are idle, waiting for work

    def child():
        before = len(map_threads(ring))
        return before, [r.content for r in ring.map("a", ["c1", "c2", "c3"], concurrency=2)]

    assert in_child(child) == [0, ["c1", "c2", "c3"]]
    parents = set(map_threads(ring))
    assert [r.content for r in ring.map("a", ["p"], concurrency=2)] == ["p"]
    assert set(map_threads(ring)) == parents


def test_a_ring_that_mapped_pickles_as_its_settings(tmp_path):
    ring = Ring(write_lock(tmp_path, ["mock:echo"]))
    assert [r.content for r in ring.map("a", ["x"])] == ["x"]
    copy = pickle.loads(pickle.dumps(ring))  # no thread or lock inside
    assert [r.content for r in copy.map("a", ["y"])] == ["y"]


def test_async_map_runs_on_the_rings_map_threads(tmp_path):
    with AsyncRing(write_lock(tmp_path, ["mock:echo"])) as ring:
        async def main():
            return [r.content async for r in ring.map("a", ["x", "y"], concurrency=2)]

        assert asyncio.run(main()) == ["x", "y"]
        assert map_threads(ring.ring)  # still there for the next map, sync or async


def test_a_task_beyond_the_reserved_concurrency_waits_for_a_busy_thread_instead_of_a_new_one():
    workers = batch.Workers()
    workers.reserve(1)
    go, ran = threading.Event(), []

    def first():
        assert go.wait(30)
        ran.append(threading.get_ident())

    workers.run(first)
    workers.run(lambda: ran.append(threading.get_ident()))
    assert len(workers.threads()) == 1  # the second task is owed to the busy thread
    go.set()
    assert wait_for(lambda: len(ran) == 2, 30)
    assert ran[0] == ran[1]
    workers.close()
    assert wait_for(lambda: not workers.threads(), 30)
