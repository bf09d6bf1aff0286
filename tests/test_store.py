"""The lockfile store's change detection: a stat at most every `check_every` seconds (fake
clock), edits through the store seen at once."""

from fakeclock import Clock
from lockfiles import one_alias

from llmring.store import LockfileStore


def models(store):
    return store.current().find("a", "default")[0].models


def test_an_edit_elsewhere_is_seen_once_the_stat_interval_has_passed(tmp_path):
    path, clock = one_alias(tmp_path, ["openai:gpt-4o"]), Clock()
    store = LockfileStore(path, clock=clock)
    assert models(store) == ["openai:gpt-4o"]
    one_alias(tmp_path, ["anthropic:claude-3-5-haiku-20241022"])  # another process's edit
    assert models(store) == ["openai:gpt-4o"]  # the last stat is still good: the documented lag
    clock.now += store.check_every + 0.001
    assert models(store) == ["anthropic:claude-3-5-haiku-20241022"]


def test_check_every_zero_looks_at_the_file_on_every_use(tmp_path):
    path = one_alias(tmp_path, ["openai:gpt-4o"])
    store = LockfileStore(path, clock=Clock(), check_every=0)
    assert models(store) == ["openai:gpt-4o"]
    one_alias(tmp_path, ["openai:o3"])
    assert models(store) == ["openai:o3"]


def test_an_edit_through_the_store_is_seen_at_once(tmp_path):
    path = one_alias(tmp_path, ["openai:gpt-4o"])
    store = LockfileStore(path, clock=Clock())  # the clock never moves: only the edit can tell
    assert models(store) == ["openai:gpt-4o"]
    store.edit(lambda lf: lf.profile("default").rebind("a", ["openai:o3"], None, None, None), create=False)
    assert models(store) == ["openai:o3"]
