"""Every exception and data type survives pickle and copy (multiprocessing, Celery, Ray, Dask and
pytest-xdist send them between processes), and an all-failed error keeps its catchable classes."""

import copy
import inspect
import pickle

import pytest

import llmring
from llmring import exceptions as exc
from llmring import types
from llmring.deadline import TryTimeout
from llmring.types import Attempt

ATTEMPT_FIELDS = ("model", "kind", "status", "message", "elapsed", "skipped", "retry_after")


def roundtrips(value):
    return [pickle.loads(pickle.dumps(value, protocol)) for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1)] + [
        copy.copy(value), copy.deepcopy(value)]


def exception_examples():
    for _name, cls in sorted(vars(exc).items()):
        if not (inspect.isclass(cls) and issubclass(cls, BaseException)) or cls.__module__ != exc.__name__:
            continue
        if issubclass(cls, exc.AllModelsFailedError):
            continue  # built by all_failed below
        if issubclass(cls, exc.LockfileError):
            yield cls("bad value", path="llmring.lock", line=3, key="models")
        elif issubclass(cls, exc.MissingAliasesError):
            yield cls("Lockfile missing required aliases: a.", ["a"], "llmring.lock")
        elif issubclass(cls, exc.StreamInterruptedError):
            yield cls("stopped", partial="Hello", provider="openai", model="openai:m", status=500, kind="server")
        elif issubclass(cls, exc.ProviderError):
            yield cls("it failed", provider="openai", model="openai:m", status=429, retry_after=1.5)
        else:
            yield cls("something is wrong")


def same_state(a, b):
    assert type(a) is type(b)
    assert str(a) == str(b) and a.args == b.args
    assert {k: v for k, v in vars(a).items() if k != "attempts"} == \
           {k: v for k, v in vars(b).items() if k != "attempts"}
    if hasattr(a, "attempts"):
        assert [[getattr(x, f) for f in ATTEMPT_FIELDS] for x in a.attempts] == \
               [[getattr(x, f) for f in ATTEMPT_FIELDS] for x in b.attempts]


@pytest.mark.parametrize("error", list(exception_examples()), ids=lambda e: type(e).__name__)
def test_every_exception_pickles_and_copies(error):
    for back in roundtrips(error):
        same_state(error, back)


@pytest.mark.parametrize("kind", sorted(exc.KINDS))
def test_all_failed_errors_of_every_kind_pickle_and_stay_catchable(kind):
    attempts = [Attempt("mock:a", "server", 503, "down", 0.1),
                Attempt("openai:m", kind, 429, "last one", 0.2, retry_after=3.0)]
    error = exc.all_failed("assistant", attempts)
    kind_class = type(exc.error_for_kind(kind, "x"))
    for back in roundtrips(error):
        same_state(error, back)
        assert isinstance(back, exc.AllModelsFailedError) and isinstance(back, kind_class)
        assert back.kind == kind and back.target == "assistant" and back.retry_after == 3.0


def test_a_rate_limited_walk_is_caught_as_a_rate_limit_after_a_round_trip():
    error = exc.all_failed("a", [Attempt("openai:m", "rate_limit", 429, "slow down")])
    with pytest.raises(exc.ProviderRateLimitError):
        raise pickle.loads(pickle.dumps(error))


def test_the_all_failed_classes_themselves_pickle():
    error = exc.all_failed("a", [Attempt("openai:m", "timeout")])
    assert pickle.loads(pickle.dumps(type(error))) is type(error)


def test_stream_interrupted_keeps_its_partial_text():
    error = exc.StreamInterruptedError("cut", partial="Hel", kind="connection", status=None)
    for back in roundtrips(error):
        assert back.partial == "Hel" and back.kind == "connection"


def type_examples():
    usage = types.Usage(3, 4)
    call = types.ToolCall("c1", "f", {"x": 1})
    yield types.Message(role="assistant", content=[{"type": "text", "text": "hi"}], tool_calls=[call])
    yield types.LLMRequest(model="a", messages=["hi"], temperature=0.2, tools=[{"type": "function"}],
                           extra_params={"seed": 1}, timeout=5.0)
    yield types.LLMResponse(content="x", model="mock:echo", usage=usage, attempts=[Attempt("mock:echo", elapsed=0.1)],
                            parsed={"a": 1}, tool_calls=[call])
    yield types.StreamChunk(delta="x", tool_call_deltas=[types.ToolCallDelta(0, "c1", "f", "{")], usage=usage,
                            attempts=[Attempt("mock:a", "server", skipped=True)])
    yield usage
    yield call
    yield types.ToolCallDelta(1, arguments="}")
    yield Attempt("m:x", "timeout", None, "slow", 1.0, retry_after=2.0)


@pytest.mark.parametrize("value", list(type_examples()), ids=lambda v: type(v).__name__)
def test_every_data_type_pickles_and_copies(value):
    for back in roundtrips(value):
        assert back == value and type(back) is type(value)


def test_a_try_timeout_keeps_its_budget():
    for back in roundtrips(TryTimeout(1.0, 2.0, 3.5)):
        assert tuple(back) == (1.0, 2.0) and back.budget == 3.5


def test_exceptions_import_from_llmring_itself():
    from llmring import AllModelsFailedError, BadRequestError, ModelNotFoundError  # noqa: F401

    for name in exc.__all__:
        assert getattr(llmring, name) is getattr(exc, name)
