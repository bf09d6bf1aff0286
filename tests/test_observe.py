"""The call_finished hook: a plugin hears of every finished call (chat, stream, failed walk,
ring.map, AsyncRing) once, with a CallRecord, and an observer can never fail a call."""

import asyncio
import logging
import os
import pickle
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from httpfake import Reply, sse
from lockfiles import one_alias

import llmring.plugins
from llmring import LLMRing, Ring, observe
from llmring.exceptions import AllModelsFailedError, StreamInterruptedError
from llmring.plugins import PluginRegistry, hookimpl
from llmring.record import CallRecord

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
# The observer example's files: a bold, backquoted name, then (after its caption) a python block.
_DOC_FILE = re.compile(r"^\*\*`(\w+\.py)`\*\*(?:(?!```).)*?```python\n(.*?)\n```", re.MULTILINE | re.DOTALL)


@pytest.fixture
def plugins(monkeypatch):
    """A registry of this test's own in-process plugins (the built-in providers load too)."""
    fresh = PluginRegistry()
    monkeypatch.setattr(llmring.plugins, "registry", fresh)
    observe.reset()
    yield fresh
    observe.reset()


def observer(name="watcher"):
    """A plugin module whose call_finished keeps what it hears in `.records`."""
    plugin = types.ModuleType(name)
    plugin.records = []

    @hookimpl
    def call_finished(record):
        plugin.records.append(record)

    plugin.call_finished = call_finished
    return plugin


@pytest.fixture
def heard(plugins):
    plugin = observer()
    plugins.register(plugin)
    return plugin.records


def test_a_chat_is_heard_once_with_what_it_did(tmp_path, heard):
    with Ring(one_alias(tmp_path, ["mock:fail-auth", "mock:echo"], alias="writer")) as ring:
        r = ring.chat("writer", "one two")
    (record,) = heard
    assert isinstance(record, CallRecord)
    assert (record.alias, record.profile, record.model, record.stream, record.error_kind) == (
        "writer", "default", "mock:echo", False, None)
    assert record.attempts == tuple(r.attempts) and record.failovers == 1
    assert (record.input_tokens, record.output_tokens, record.finish_reason) == (
        r.usage.input_tokens, r.usage.output_tokens, "stop")
    assert record.elapsed == r.latency and record.lockfile == str(tmp_path / "llmring.lock")
    assert record.prompt is None and record.answer is None  # text only with LLMRING_USAGE_TEXT=on


def test_a_stream_is_heard_at_its_end(tmp_path, heard):
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        stream = ring.stream("a", "one two three")
        first = next(stream)
        assert heard == []  # not while it is being read
        rest = list(stream)
    (record,) = heard
    assert "".join(c.delta for c in [first, *rest]) == "one two three"
    assert (record.stream, record.model, record.finish_reason, record.error_kind) == (True, "mock:echo", "stop", None)
    assert 0 <= record.first_chunk <= record.elapsed


def test_a_stream_closed_early_is_heard_once(tmp_path, heard):
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        stream = ring.stream("a", "one two three")
        next(stream)
        stream.close()
        stream.close()
        with ring.stream("a", "never read"):
            pass  # never started: no call was made, nothing to hear
    (record,) = heard
    assert (record.model, record.error_kind, record.finish_reason) == ("mock:echo", None, None)


def test_a_stream_broken_midway_is_heard_with_its_error(tmp_path, heard, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    frames = sse({"id": "c", "object": "chat.completion.chunk",
                  "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]})
    server.add("POST", "/v1/chat/completions",
               Reply(chunks=frames + ['data: {"error": {"message": "it broke", "type": "server_error"}}\n\n']))
    with Ring(one_alias(tmp_path, ["openai:gpt-4o-mini", "mock:echo"])) as ring, \
            pytest.raises(StreamInterruptedError):
        for _ in ring.stream("a", "Hi"):
            pass
    (record,) = heard
    assert (record.model, record.error_kind, record.stream) == ("openai:gpt-4o-mini", "server", True)


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_no_model_answered_is_heard(tmp_path, heard, stream):
    with Ring(one_alias(tmp_path, ["mock:fail-auth", "mock:fail-not_found"])) as ring, \
            pytest.raises(AllModelsFailedError) as info:
        list(ring.stream("a", "Hi")) if stream else ring.chat("a", "Hi")
    (record,) = heard
    assert (record.model, record.error_kind, record.stream, record.cost) == (None, info.value.kind, stream, None)
    assert [a.model for a in record.attempts] == ["mock:fail-auth", "mock:fail-not_found"]
    assert record.failovers == 2


def test_map_and_async_calls_are_heard(tmp_path, heard):
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        assert len(list(ring.map("a", [f"item {i}" for i in range(5)], concurrency=3))) == 5

    async def main():
        async with LLMRing(lockfile_path=tmp_path / "llmring.lock") as service:
            await service.chat("a", "async")
            return [c.delta async for c in service.stream("a", "streamed")]

    assert "".join(asyncio.run(main())) == "streamed"
    assert sorted((r.stream, r.model) for r in heard) == [(False, "mock:echo")] * 6 + [(True, "mock:echo")]


def test_an_observer_that_raises_never_fails_the_call_and_is_logged_once(tmp_path, plugins, caplog):
    broken = types.ModuleType("broken_observer")

    @hookimpl
    def call_finished(record):
        raise RuntimeError("the exporter is down")

    broken.call_finished = call_finished
    after = observer("after")
    plugins.register(broken)
    plugins.register(after)
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring, caplog.at_level(logging.WARNING, "llmring"):
        assert [ring.chat("a", "Hi").content for _ in range(3)] == ["Hi"] * 3
    said = [r.getMessage() for r in caplog.records if r.name == "llmring.observe"]
    assert said == ["llmring: the call observer broken_observer failed (RuntimeError: the exporter is down); "
                    "calls go on, and this is said once."]
    assert len(after.records) == 3  # the others still hear every call


def test_an_observer_without_arguments_works(tmp_path, plugins):
    counted = []
    bare = types.ModuleType("bare_observer")
    bare.call_finished = hookimpl(lambda: counted.append(1))
    plugins.register(bare)
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        ring.chat("a", "Hi")
        list(ring.stream("a", "Hi"))
    assert counted == [1, 1]


def test_an_observer_with_a_wrong_argument_is_a_broken_plugin_and_calls_go_on(tmp_path, plugins):
    wrong = types.ModuleType("wrong_observer")
    wrong.call_finished = hookimpl(lambda rec: None)  # pluggy passes `record` by name
    plugins.register(wrong)
    with Ring(one_alias(tmp_path, ["mock:echo"])) as ring:
        assert ring.chat("a", "Hi").content == "Hi"
    (broken,) = plugins.broken
    assert broken.name == "wrong_observer" and "rec" in broken.error


def test_records_pickle(tmp_path, heard, monkeypatch):
    monkeypatch.setenv("LLMRING_USAGE_TEXT", "on")
    with Ring(one_alias(tmp_path, ["mock:fail-auth", "mock:echo"])) as ring:
        ring.chat("a", "Hi")
    (record,) = heard
    assert record.prompt is not None and record.answer == "Hi"
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(record, protocol)) == record


def test_the_worked_observer_in_the_plugin_docs_runs_as_written(tmp_path):
    files = dict(_DOC_FILE.findall(DOC.read_text(encoding="utf-8")))
    assert set(files) == {"llmring_calllog.py", "test_calllog.py"}, sorted(files)
    for name, code in files.items():
        (tmp_path / name).write_text(code + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calllog.py"],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout, done.stdout[-500:]
