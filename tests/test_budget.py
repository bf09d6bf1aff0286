"""Budgets per alias (issue 12, part 3): `budget = { usd_per_day, usd_per_month }` in a binding,
read and validated with the lockfile, kept by edits; paid models held back once the alias has
spent its budget in the UTC day or month, free ones still tried; spend shared through a real
redis-server; BudgetExceededError that pickles. The provider is a real HTTP server whose model
costs $1.00 a call at the prices the lockfile gives it; time is a fake Unix clock."""

import calendar
import copy
import logging
import os
import pickle
import subprocess
import sys
import threading

import pytest
from clitools import runner
from fakeclock import Clock
from httpfake import FakeServer, openai_answer, sse
from lockfiles import one_alias
from redisfix import RedisServer

from llmring import AllModelsFailedError, BudgetExceededError, RetryPolicy, Ring
from llmring.budget import Budgets, bounds_of
from llmring.cli import cli
from llmring.exceptions import LockfileError
from llmring.lockfile import read
from llmring.state import MemoryState

# 5 input and 2 output tokens (openai_answer) at these prices (USD per million) cost $1.00.
PAID = ('[providers.x]\ntype = "openai"\nbase_url = "{url}/v1"\n'
        'prices = {{ m = {{ input = 100000, output = 250000 }} }}\n')
FREE = '[providers.free]\ntype = "openai"\nbase_url = "{url}/v1"\nprices = {{ m = {{ input = 0, output = 0 }} }}\n'
LOCAL = '[providers.local]\ntype = "openai"\nbase_url = "{url}/v1"\n'  # no price at all
NOON = calendar.timegm((2026, 12, 2, 12, 0, 0))


@pytest.fixture(autouse=True)
def no_usage_log(monkeypatch):
    # The log is the baseline (tested on its own below); here the counts start from nothing.
    monkeypatch.setenv("LLMRING_USAGE", "off")


@pytest.fixture
def server():
    """The provider; the Rings a test made close their connections to it before it stops."""
    s = FakeServer()
    yield s
    while MADE:
        MADE.pop().close()
    s.close()


MADE: list = []


@pytest.fixture
def paid(server):
    server.add("POST", "/v1/chat/completions", openai_answer("paid"))
    return server


def budget_lockfile(tmp_path, server, budget="budget = { usd_per_day = 2.0 }", models=("x:m",), tail=""):
    path = one_alias(tmp_path, list(models), alias="summarizer",
                     tail=(PAID + FREE + LOCAL).format(url=server.url) + tail)
    text = path.read_text().replace('models = [', f'{budget}\nmodels = [', 1) if budget else path.read_text()
    path.write_text(text)
    return path


def ring_at(path, when=NOON, **kw):
    ring = Ring(path, **kw)
    MADE.append(ring)
    clock = Clock()
    clock.now = when
    ring.budgets.clock = clock
    return ring, clock


def test_calls_answer_until_the_daily_budget_is_spent_then_the_paid_model_is_held_back(tmp_path, paid):
    ring, _ = ring_at(budget_lockfile(tmp_path, paid))
    assert [ring.chat("summarizer", "hi").cost for _ in range(2)] == [1.0, 1.0]
    with pytest.raises(BudgetExceededError) as info:
        ring.chat("summarizer", "hi")
    assert len(paid.requests) == 2  # the third call never reached the provider
    e = info.value
    assert str(e).splitlines()[0] == ("summarizer has spent $2.00 of its $2.00 daily budget; it resets at "
                                      "2026-12-03 00:00 UTC. Raise budget.usd_per_day in llmring.lock or wait.")
    assert (e.spent, e.budget, e.period, e.kind) == (2.0, 2.0, "day", "budget")
    assert e.resets_at.isoformat() == "2026-12-03T00:00:00+00:00"
    assert isinstance(e, AllModelsFailedError)
    [attempt] = e.attempts
    assert (attempt.model, attempt.kind, attempt.skipped) == ("x:m", "budget", True)
    assert "spent $2.00 of its $2.00 budget for the day; it resets at 2026-12-03 00:00 UTC" in attempt.message


def test_the_budget_resets_when_the_utc_day_ends(tmp_path, paid):
    ring, clock = ring_at(budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 1 }"),
                          when=calendar.timegm((2026, 12, 2, 23, 59, 59)))
    ring.chat("summarizer", "hi")
    with pytest.raises(BudgetExceededError):
        ring.chat("summarizer", "hi")
    clock.now += 1  # 00:00:00 UTC: a new day
    assert ring.chat("summarizer", "hi").model == "x:m"
    with pytest.raises(BudgetExceededError, match="resets at 2026-12-04 00:00 UTC"):
        ring.chat("summarizer", "hi")


def test_a_monthly_budget_runs_to_the_end_of_the_utc_calendar_month(tmp_path, paid):
    path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 10, usd_per_month = 3 }")
    ring, clock = ring_at(path, when=calendar.timegm((2026, 12, 30, 8, 0, 0)))
    ring.chat("summarizer", "hi")
    ring.chat("summarizer", "hi")
    clock.now += 86400  # the 31st: a new day, the same month
    ring.chat("summarizer", "hi")
    with pytest.raises(BudgetExceededError) as info:
        ring.chat("summarizer", "hi")
    assert str(info.value).startswith("summarizer has spent $3.00 of its $3.00 monthly budget; it resets at "
                                      "2027-01-01 00:00 UTC. Raise budget.usd_per_month in llmring.lock")
    clock.now = calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert ring.chat("summarizer", "hi").cost == 1.0


def test_free_and_unpriced_models_are_still_tried_when_the_budget_is_spent(tmp_path, paid):
    ring, _ = ring_at(budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 0 }",
                                      models=("x:m", "free:m", "local:m")))
    r = ring.chat("summarizer", "hi")
    assert (r.model, r.cost) == ("free:m", 0.0)
    assert [(a.model, a.kind, a.skipped) for a in r.attempts] == [("x:m", "budget", True), ("free:m", None, False)]
    ring2, _ = ring_at(budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 0 }", models=("x:m", "local:m")))
    assert ring2.chat("summarizer", "hi").model == "local:m"
    assert len(paid.requests) == 2  # the free and the unpriced model; never the paid one


def test_when_the_free_fallback_fails_too_the_error_is_the_budget_with_every_attempt(tmp_path, server):
    server.add("POST", "/v1/chat/completions", openai_answer())
    path = budget_lockfile(tmp_path, server, "budget = { usd_per_day = 0 }", models=("x:m", "dead:m"),
                           tail='[providers.dead]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    ring, _ = ring_at(path, retry=RetryPolicy(max_retries=0))
    with pytest.raises(BudgetExceededError) as info:
        ring.chat("summarizer", "hi")
    assert [(a.model, a.kind) for a in info.value.attempts] == [("x:m", "budget"), ("dead:m", "connection")]
    assert "dead:m: connection" in str(info.value)


def test_a_streamed_answer_counts_against_the_budget(tmp_path, server):
    usage = {"id": "c", "object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    text = {"id": "c", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    from httpfake import Reply

    server.add("POST", "/v1/chat/completions", Reply(chunks=sse(text, usage, "[DONE]"),
                                                     content_type="text/event-stream"))
    ring, _ = ring_at(budget_lockfile(tmp_path, server, "budget = { usd_per_day = 1 }"))
    assert "".join(c.delta for c in ring.stream("summarizer", "hi")) == "hi"
    with pytest.raises(BudgetExceededError, match=r"spent \$1.00 of its \$1.00 daily"):
        list(ring.stream("summarizer", "hi"))


def test_an_alias_without_a_budget_counts_nothing(tmp_path, paid):
    path = budget_lockfile(tmp_path, paid, budget="")
    ring, _ = ring_at(path)
    for _ in range(3):
        assert ring.chat("summarizer", "hi").cost == 1.0
    assert ring.breaker.state._spend == {}
    assert read(path).profiles["default"].get("summarizer").budget is None


def test_the_budget_is_per_profile(tmp_path, paid):
    path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 1 }")
    path.write_text(path.read_text() + '\n[profiles.dev]\nname = "dev"\n\n[[profiles.dev.bindings]]\n'
                    'alias = "summarizer"\nmodels = ["x:m"]\nbudget = { usd_per_day = 1 }\n')
    ring, _ = ring_at(path)
    ring.chat("summarizer", "hi")
    assert ring.chat("summarizer", "hi", profile="dev").cost == 1.0
    with pytest.raises(BudgetExceededError):
        ring.chat("summarizer", "hi", profile="dev")


# -- the spend counts --------------------------------------------------------------------------------
def test_the_usage_log_seeds_each_period_once_from_its_start(tmp_path):
    asked = []

    def log(alias, profile, since):
        asked.append((alias, profile, since))
        return 1.5

    budgets = Budgets(MemoryState(), Clock(), log)
    budgets.clock.now = NOON
    limit = read_budget(tmp_path, "budget = { usd_per_day = 2.0 }")
    assert budgets.over("s", "default", limit) is None
    budgets.charge("s", "default", limit, 0.25)
    assert budgets.over("s", "default", limit) is None
    budgets.charge("s", "default", limit, 0.25)
    over = budgets.over("s", "default", limit)
    assert (over.spent, over.budget, over.period) == (2.0, 2.0, "day")
    assert asked == [("s", "default", calendar.timegm((2026, 12, 2, 0, 0, 0)))]  # once, not per call
    budgets.clock.now += 86400
    budgets.charge("s", "default", limit, 0.25)  # a new day's first charge seeds from the log first
    assert budgets.state.spent("budget/default/s/2026-12-03") == 1.75
    assert asked[-1][2] == calendar.timegm((2026, 12, 3, 0, 0, 0)) and len(asked) == 2


def read_budget(tmp_path, text):
    path = one_alias(tmp_path, ["mock:echo"])
    path.write_text(path.read_text().replace("models = [", f"{text}\nmodels = [", 1))
    return read(path).profiles["default"].get("a").budget


@pytest.mark.parametrize(("when", "expected"), [
    ((2026, 12, 2, 0, 0, 0), ("day", (2026, 12, 2), (2026, 12, 3), "2026-12-02")),
    ((2026, 12, 2, 23, 59, 59), ("day", (2026, 12, 2), (2026, 12, 3), "2026-12-02")),
    ((2026, 12, 31, 23, 59, 59), ("month", (2026, 12, 1), (2027, 1, 1), "2026-12")),
    ((2028, 2, 29, 12, 0, 0), ("month", (2028, 2, 1), (2028, 3, 1), "2028-02")),
    ((2028, 2, 29, 12, 0, 0), ("day", (2028, 2, 29), (2028, 3, 1), "2028-02-29")),
])
def test_periods_are_utc_days_and_calendar_months(when, expected):
    period, start, end, label = expected
    midnight = lambda ymd: float(calendar.timegm((*ymd, 0, 0, 0)))  # noqa: E731
    assert bounds_of(period, float(calendar.timegm(when))) == (midnight(start), midnight(end), label)


# -- the lockfile --------------------------------------------------------------------------------------
def test_an_inline_budget_and_a_budget_sub_table_read_the_same(tmp_path):
    inline = read_budget(tmp_path, "budget = { usd_per_day = 5, usd_per_month = 100.5 }")
    path = one_alias(tmp_path, ["mock:echo"], tail="")
    path.write_text(path.read_text() + "[profiles.default.bindings.budget]\nusd_per_day = 5.0\nusd_per_month = 100.5\n")
    assert read(path).profiles["default"].get("a").budget == inline
    assert (inline.usd_per_day, inline.usd_per_month) == (5.0, 100.5)


def line_of(path, text):
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(("text", "message"), [
    ("budget = { usd_per_day = -1 }", "budget.usd_per_day must be a number of US dollars, 0 or more, not int -1"),
    ("budget = { usd_per_day = nan }", "must be a number of US dollars, 0 or more, not float nan"),
    ("budget = { usd_per_month = inf }", "budget.usd_per_month must be a number of US dollars"),
    ('budget = { usd_per_day = "5" }', "not '5' for alias 'a' in profile 'default'"),
    ("budget = { usd_per_day = true }", "not bool True"),
    ("budget = { usd_per_dya = 5 }", "unknown key 'usd_per_dya' in the budget for alias 'a' in profile "
                                        "'default'; did you mean 'usd_per_day'?"),
    ("budget = { usd = 5 }", "allowed keys: usd_per_day, usd_per_month"),
    ("budget = {}", "budget is empty for alias 'a' in profile 'default'; set usd_per_day or usd_per_month"),
    ("budget = 5", "budget must be a table, not int 5 for alias 'a' in profile 'default'; "
                      "e.g. budget = { usd_per_day = 5.0 }"),
])
def test_a_bad_budget_is_a_lockfile_error_at_its_line(tmp_path, text, message):
    path = one_alias(tmp_path, ["mock:echo"])
    path.write_text(path.read_text().replace("models = [", f"{text}\nmodels = [", 1))
    with pytest.raises(LockfileError) as info:
        read(path)
    assert str(info.value).startswith(f"{path}:{line_of(path, text)}: ") and message in str(info.value)


def test_a_bad_value_in_a_budget_sub_table_names_its_own_line(tmp_path):
    path = one_alias(tmp_path, ["mock:echo"])
    path.write_text(path.read_text() + "[profiles.default.bindings.budget]\nusd_per_month = 9\nusd_per_day = -2\n")
    with pytest.raises(LockfileError, match=rf"^{path}:{line_of(path, '-2')}: budget.usd_per_day must be"):
        read(path)


def test_lock_validate_reports_a_bad_budget_and_warns_of_one_that_can_never_bind(tmp_path):
    path = one_alias(tmp_path, ["mock:echo"])
    path.write_text(path.read_text().replace("models = [", "budget = { usd_per_day = -5 }\nmodels = [", 1))
    result = runner().invoke(cli, ["lock", "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {path}:{line_of(path, '-5')}: budget.usd_per_day must be a number of US "
                             "dollars, 0 or more, not int -5 for alias 'a' in profile 'default'\n")
    path.write_text(path.read_text().replace("-5", "5"))
    result = runner().invoke(cli, ["lock", "validate", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "budget has no effect: none of its models has a price" in result.stdout


def test_edits_keep_the_budget_and_write_it_back(tmp_path, paid):
    path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 2.5 }  # the team's share")
    ring, _ = ring_at(path)
    ring.bind_alias("other", "x:m")
    assert "budget = { usd_per_day = 2.5 }  # the team's share" in path.read_text()  # untouched, comment kept
    ring.bind_alias("summarizer", ["free:m", "x:m"])
    b = read(path).profiles["default"].get("summarizer")
    assert (b.models, b.budget.usd_per_day) == (["free:m", "x:m"], 2.5)
    assert read(path).profiles["default"].get("other").budget is None


def test_to_dict_gives_the_budget_as_its_table_and_from_dict_reads_it_back(tmp_path):
    from llmring.lockmodel import Lockfile

    read_budget(tmp_path, "budget = { usd_per_month = 40 }")
    lf = read(tmp_path / "llmring.lock")
    data = lf.to_dict()
    assert data["profiles"]["default"]["bindings"][0]["budget"] == {"usd_per_month": 40.0}
    assert Lockfile.from_dict(data) == lf


def test_budget_exceeded_error_pickles_and_copies(tmp_path, paid):
    ring, _ = ring_at(budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 0 }"))
    with pytest.raises(BudgetExceededError) as info:
        ring.chat("summarizer", "hi")
    for again in (pickle.loads(pickle.dumps(info.value)), copy.copy(info.value)):
        assert type(again) is BudgetExceededError and str(again) == str(info.value)
        assert (again.spent, again.budget, again.period, again.resets_at, again.kind, again.lockfile) == (
            0.0, 0.0, "day", info.value.resets_at, "budget", "llmring.lock")
        assert again.attempts == info.value.attempts


# -- a fleet shares one budget through Redis ------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    s = RedisServer(tmp_path_factory.mktemp("redis"))
    yield s
    s.close()


def test_two_rings_on_one_redis_share_one_budget(tmp_path, paid, redis_server):
    url = redis_server.fresh_url()
    path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 3 }")
    one, _ = ring_at(path, state_url=url)
    two, _ = ring_at(path, state_url=url)
    one.chat("summarizer", "hi")
    two.chat("summarizer", "hi")
    one.chat("summarizer", "hi")
    for ring in (one, two):
        with pytest.raises(BudgetExceededError, match=r"spent \$3.00 of its \$3.00"):
            ring.chat("summarizer", "hi")
    assert len(paid.requests) == 3


def test_another_process_spending_counts_here(tmp_path, paid, redis_server):
    url = redis_server.fresh_url()
    path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 2 }")
    code = (f"from llmring import Ring\nr = Ring({str(path)!r}, state_url={url!r})\n"
            "print(sum(r.chat('summarizer', 'hi').cost for _ in range(2)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, LLMRING_USAGE="off"))
    assert out.returncode == 0 and out.stdout.strip() == "2.0", out.stderr
    with Ring(path, state_url=url) as here, pytest.raises(BudgetExceededError):
        here.chat("summarizer", "hi")  # this process's real clock: the same day as the other's


def test_the_shared_count_is_seeded_from_the_log_once_and_adds_up_under_threads(redis_server, tmp_path):
    from llmring.redis_state import RedisState

    url = redis_server.fresh_url()
    asked = []
    limit = read_budget(tmp_path, "budget = { usd_per_day = 1000 }")

    def log(alias, profile, since):
        asked.append(since)
        return 10.0

    workers = [Budgets(RedisState(url), Clock(), log) for _ in range(4)]
    for b in workers:
        b.clock.now = NOON
    go = threading.Barrier(len(workers))

    def spend(b):
        go.wait()
        for _ in range(25):
            b.charge("s", "default", limit, 0.25)

    threads = [threading.Thread(target=spend, args=(b,)) for b in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert workers[0].state.spent("budget/default/s/2026-12-02") == 10.0 + 4 * 25 * 0.25
    assert workers[0].over("s", "default", read_budget(tmp_path, "budget = { usd_per_day = 35 }")).spent == 35.0
    assert 1 <= len(asked) <= len(workers)  # only workers that found it unseeded asked; one seed won
    ttl = workers[0].state.client.ttl(workers[0].state._key("spend", "budget/default/s/2026-12-02"))
    assert 12 * 3600 < ttl <= 36 * 3600  # the rest of the day, and a day's grace


def test_with_redis_down_the_budget_is_counted_in_process_with_one_warning(tmp_path, paid, caplog):
    server = RedisServer(tmp_path)
    try:
        path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 2 }")
        ring, _ = ring_at(path, state_url=server.patient_url)
        ring.chat("summarizer", "hi")
        server.stop()
        caplog.set_level(logging.WARNING, logger="llmring")
        assert ring.chat("summarizer", "hi").cost == 1.0  # counted here, from the log (nothing): $1
        assert ring.chat("summarizer", "hi").cost == 1.0
        with pytest.raises(BudgetExceededError):
            ring.chat("summarizer", "hi")
        warnings = [r for r in caplog.records if "shared state" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        server.close()


# -- the real usage log as the baseline (needs llmring.usage, issue 12 part 1) ---------------------------
def test_a_restart_does_not_reset_the_budget(tmp_path, paid, monkeypatch):
    monkeypatch.delenv("LLMRING_USAGE")
    monkeypatch.setenv("LLMRING_USAGE_DB", str(tmp_path / "usage.db"))
    path = budget_lockfile(tmp_path, paid, "budget = { usd_per_day = 2 }")
    with Ring(path) as first:
        first.chat("summarizer", "hi")
        first.chat("summarizer", "hi")
    with Ring(path) as again, pytest.raises(BudgetExceededError, match=r"spent \$2.00"):
        again.chat("summarizer", "hi")  # a new Ring (a restarted app) starts from the log


def test_aliases_json_shows_the_budget(tmp_path):
    import json

    read_budget(tmp_path, "budget = { usd_per_month = 12 }")
    result = runner().invoke(cli, ["aliases", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["aliases"][0]["budget"] == {"usd_per_month": 12.0}
