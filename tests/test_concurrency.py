"""Lockfile edits under contention and failure: concurrent `llmring bind` processes and
threads never lose a binding; a failed write leaves the old file and no temp file behind."""

import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest
from httpfake import Reply, openai_answer, sse
from lockfiles import one_alias

from llmring import Ring
from llmring import lockfile as lf_mod
from llmring.exceptions import LockfileError
from llmring.lockfile import Binding

START = '''\
version = "1.0"
default_profile = "default"

[metadata]
owner = "ops"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "existing"
models = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-20241022"]
description = "Must survive every edit."
'''


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "llmring.lock"
    p.write_text(START)
    return p


def aliases(path: Path, profile: str = "default") -> dict:
    return {b.alias: b.models for b in lf_mod.read(path).profiles[profile].bindings}


def leftovers(path: Path) -> list:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.mark.slow
def test_twenty_concurrent_bind_processes_all_land(path):
    cli = Path(sys.executable).parent / "llmring"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMRING_")}
    procs = [subprocess.Popen([str(cli), "bind", f"alias-{i}", f"openai:model-{i},mock:echo"], cwd=path.parent,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(20)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    bound = aliases(path)
    assert bound == {"existing": ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-20241022"],
                     **{f"alias-{i}": [f"openai:model-{i}", "mock:echo"] for i in range(20)}}
    lf = lf_mod.read(path)
    assert lf.metadata == {"owner": "ops"}
    assert lf.profiles["default"].get("existing").description == "Must survive every edit."
    assert leftovers(path) == []


def run_threads(target, count: int) -> None:
    errors: list = []
    barrier = threading.Barrier(count)

    def work(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_threads_binding_through_one_ring_all_land(path):
    ring = Ring(lockfile_path=path)
    run_threads(lambda i: ring.bind_alias(f"t{i}", f"openai:m{i}", profile="dev" if i % 2 else None), 24)
    assert set(aliases(path)) == {"existing"} | {f"t{i}" for i in range(0, 24, 2)}
    assert set(aliases(path, "dev")) == {f"t{i}" for i in range(1, 24, 2)}
    # The ring's own view is current too.
    assert all(ring.resolve_alias(f"t{i}", profile="dev") == f"openai:m{i}" for i in range(24))
    assert leftovers(path) == []


def test_threads_binding_through_separate_rings_all_land(path):
    run_threads(lambda i: Ring(lockfile_path=path).bind_alias(f"s{i}", f"google:g{i}"), 24)
    assert set(aliases(path)) == {"existing"} | {f"s{i}" for i in range(24)}
    assert leftovers(path) == []


def test_threads_binding_and_unbinding_the_same_aliases(path):
    ring = Ring(lockfile_path=path)
    for i in range(10):
        ring.bind_alias(f"gone{i}", "openai:gpt-4o")

    def work(i: int) -> None:
        if i < 10:
            ring.unbind_alias(f"gone{i}")
        else:
            Ring(lockfile_path=path).bind_alias(f"new{i}", "openai:gpt-4o")

    run_threads(work, 20)
    assert set(aliases(path)) == {"existing"} | {f"new{i}" for i in range(10, 20)}


def test_readers_never_see_half_a_file(path):
    ring = Ring(lockfile_path=path)
    stop = threading.Event()
    seen: list = []

    def read() -> None:
        reader = Ring(lockfile_path=path)
        while not stop.is_set():
            seen.append(reader.resolve_alias("existing"))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(40):
            ring.bind_alias(f"w{i}", "openai:gpt-4o")
    finally:
        stop.set()
        for t in readers:
            t.join(30)
    assert seen and set(seen) == {"openai:gpt-4o-mini"}


class Boom(OSError):
    pass


def test_a_failed_replace_leaves_the_old_file_and_no_temp_file(path, monkeypatch):
    before = path.read_bytes()

    def fail(src, dst):
        assert Path(src).read_text().count("[[profiles") == 2  # the new text was written in full first
        raise Boom("disk gone")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(LockfileError, match="could not be written \\(disk gone\\)"):
        Ring(lockfile_path=path).bind_alias("new", "openai:gpt-4o")
    assert path.read_bytes() == before
    assert leftovers(path) == []


def test_a_failed_flush_leaves_the_old_file_and_no_temp_file(path, monkeypatch):
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(Boom("no space left")))
    with pytest.raises(LockfileError, match="could not be written \\(no space left\\)"):
        Ring(lockfile_path=path).unbind_alias("existing")
    assert path.read_bytes() == before
    assert leftovers(path) == []


def test_the_cli_reports_a_failed_write_in_one_line(path, monkeypatch):
    from clitools import runner

    from llmring.cli import cli

    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(Boom("disk gone")))
    result = runner().invoke(cli, ["bind", "new", "openai:gpt-4o"])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {path}: could not be written (disk gone), so it is unchanged; check that "
                             "its folder exists, is writable and has space\n")
    assert path.read_text() == START and leftovers(path) == []


def test_a_new_file_that_fails_to_land_is_not_created(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(Boom("disk gone")))
    with pytest.raises(LockfileError, match="could not be written"):
        Ring().bind_alias("first", "openai:gpt-4o")
    assert list(tmp_path.iterdir()) == []


def test_a_lock_that_is_taken_is_waited_for(path):
    """An edit blocks while another process holds the lock, then lands after it."""
    ring = Ring(lockfile_path=path)
    done = threading.Event()
    with lf_mod.locked(path):
        t = threading.Thread(target=lambda: (ring.bind_alias("waiter", "openai:gpt-4o"), done.set()))
        t.start()
        assert not done.wait(0.3)
        assert "waiter" not in aliases(path)
    t.join(10)
    assert done.is_set() and "waiter" in aliases(path)


@pytest.mark.parametrize("change, message", [
    (lambda lf: lf.profiles["default"].bindings.append(Binding("x", ["gpt-4o"])), "has no provider"),
    (lambda lf: lf.profiles["default"].bindings.append(Binding("a b", ["openai:gpt-4o"])), "not a valid name"),
    (lambda lf: lf.profiles["default"].bindings.append(Binding("x", [])), "models is empty"),
    (lambda lf: setattr(lf, "default_profile", "missing"), "names no profile"),
], ids=["no-provider", "bad-alias", "empty", "default-profile"])
def test_an_edit_that_would_write_an_invalid_file_never_lands(path, change, message):
    with pytest.raises(LockfileError, match=message) as err:
        lf_mod.edit(path, change)
    # The line numbers of text that was never written would mislead: the message has none.
    assert str(err.value).startswith(f"{path}: was not changed, because the edit would make it invalid: ")
    assert path.read_text() == START
    assert leftovers(path) == []


def test_binding_an_alias_twice_is_refused_by_the_profile_itself(path):
    with pytest.raises(ValueError, match="'existing' is already bound"):
        lf_mod.edit(path, lambda lf: lf.profiles["default"].bindings.append(Binding("existing", ["openai:gpt-4o"])))
    assert path.read_text() == START


def test_an_edit_that_raises_never_lands(path):
    def change(lf):
        lf.profiles["default"].bindings.clear()
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        lf_mod.edit(path, change)
    assert path.read_text() == START


def test_writing_keeps_the_files_permissions(path):
    path.chmod(0o640)
    Ring(lockfile_path=path).bind_alias("x", "openai:gpt-4o")
    assert path.stat().st_mode & 0o777 == 0o640


def test_async_ring_alias_methods_are_real_methods(tmp_path):
    import inspect

    from llmring import AsyncRing, Ring

    assert not hasattr(AsyncRing, "__getattr__")
    for name in ("resolve", "resolve_alias", "bind_alias", "unbind_alias", "list_aliases", "has_alias",
                 "require_aliases", "init_lockfile", "clear_alias_cache", "active_profile", "provider",
                 "model_info", "cost"):
        mine, ring = getattr(AsyncRing, name), getattr(Ring, name)
        assert inspect.isfunction(mine), name
        assert list(inspect.signature(mine).parameters) == list(inspect.signature(ring).parameters), name
    for name in ("lockfile", "lockfile_path", "lockfile_source", "profile"):
        assert isinstance(inspect.getattr_static(AsyncRing, name), property), name


def test_async_ring_sync_exit_shuts_its_thread_pool_down(tmp_path):
    import asyncio

    from llmring import AsyncRing

    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\n\n[profiles.default]\n\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["mock:echo"]\n')
    with AsyncRing(path) as service:
        assert asyncio.run(_ask(service)) == "hi"
        pool = service._executor
        assert pool is not None
    assert service._executor is None and pool._shutdown


async def _ask(service):
    return (await service.chat("a", "hi")).content


@pytest.mark.parametrize("use", ["chat", "stream"])
def test_a_ring_dropped_without_close_is_freed_at_once_with_its_connections(tmp_path, server, monkeypatch, use):
    """A Ring's parts call back into it through weak references: a dropped Ring is freed by its
    last reference going, not by a later garbage collection, and its HTTP session (its pooled
    sockets) goes with it. A stream keeps its Ring alive until it ends."""
    chunk = {"id": "c", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    server.add("POST", "/v1/chat/completions", Reply(chunks=sse(chunk, "[DONE]")) if use == "stream"
               else openai_answer("hi"))
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    path = one_alias(tmp_path, ["openai:gpt-4o-mini"])
    gc.collect()
    gc.disable()  # only reference counting may free it
    try:
        ring = Ring(path)
        if use == "stream":
            stream = ring.stream("a", "x")
            ring_ref, session_ref = weakref.ref(ring), weakref.ref(ring.session)
            del ring
            assert ring_ref() is not None  # the stream needs it
            assert "".join(c.delta for c in stream) == "hi"
            del stream
        else:
            assert ring.chat("a", "x").content == "hi"
            ring_ref, session_ref = weakref.ref(ring), weakref.ref(ring.session)
            del ring
        assert ring_ref() is None and session_ref() is None
    finally:
        gc.enable()
