"""Beyond one machine: a Dask cluster of worker processes sharing one Redis never sends a
provider more than the lockfile's limits allow, summed over every worker (issue 11, item 5).

The workers are real processes (LocalCluster, processes=True); the Ring reaches them pickled,
as its lockfile and settings, with the shared state as its URL."""

import threading
import time

import pytest
from httpfake import openai_answer
from lockfiles import one_alias
from redisfix import RedisServer

from llmring import Ring
from llmring.exceptions import AllModelsFailedError

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    s = RedisServer(tmp_path_factory.mktemp("redis"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from dask.distributed import Client, LocalCluster

    # The workers start before any test's own environment is set: give them a usage log of
    # their own, never the real user's.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLMRING_USAGE_DB", str(tmp_path_factory.mktemp("usage") / "usage.db"))
        with LocalCluster(n_workers=2, threads_per_worker=4, processes=True, dashboard_address=None) as c, \
                Client(c) as client:
            yield client


def lockfile(tmp_path, server, limits):
    endpoint = f'[providers.x]\ntype = "openai"\nbase_url = "{server.url}/v1"\n'
    return one_alias(tmp_path, ["x:m"], head=limits, tail=endpoint)


def ask(text, ring, timeout=None):
    """One item of the batch, run on a worker: the answer, or the failure's kind."""
    try:
        return ring.chat("a", text, timeout=timeout).content
    except AllModelsFailedError as e:
        return e.kind


def test_calls_in_flight_never_exceed_the_concurrency_summed_over_the_cluster(tmp_path, server, redis_server,
                                                                              cluster):
    flying, peak, lock = [0], [0], threading.Lock()

    def counted(request):
        with lock:
            flying[0] += 1
            peak[0] = max(peak[0], flying[0])
        time.sleep(0.05)  # a busy provider: without the shared limit, 8 worker threads pile up here
        with lock:
            flying[0] -= 1
        return openai_answer()

    server.add("POST", "/v1/chat/completions", counted)
    ring = Ring(lockfile(tmp_path, server, "[limits.x]\nconcurrency = 3\n"), state_url=redis_server.fresh_url())
    texts = [f"doc {i}" for i in range(40)]
    results = cluster.gather(cluster.map(ask, texts, ring=ring, pure=False))
    assert results == ["ok"] * len(texts)
    assert len(server.requests) == len(texts)
    assert peak[0] <= 3


def test_requests_per_minute_hold_over_the_cluster_and_the_rest_is_skipped_without_a_call(tmp_path, server,
                                                                                          redis_server, cluster):
    server.add("POST", "/v1/chat/completions", openai_answer())
    ring = Ring(lockfile(tmp_path, server, '[limits."x:m"]\nrpm = 5\n'), state_url=redis_server.fresh_url())
    texts = [f"doc {i}" for i in range(12)]
    # A short deadline: a call that would wait for the next minute is skipped as rate_limit.
    results = cluster.gather(cluster.map(ask, texts, ring=ring, timeout=2, pure=False))
    assert sorted(results) == ["ok"] * 5 + ["rate_limit"] * 7
    assert len(server.requests) == 5
