import os

import pytest
from httpfake import FakeServer

_ENV_PREFIXES = ("LLMRING_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "OLLAMA_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Each test starts in an empty directory with no provider keys or llmring settings."""
    for key in list(os.environ):
        if key.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    # Never read or write the real user cache; start each test from the bundled registry.
    monkeypatch.setenv("LLMRING_CACHE_DIR", str(tmp_path / ".llmring-cache"))
    # Never write the real user's usage log either: each test has its own, and so has a
    # process a test starts without the LLMRING_* variables (its default place is under XDG).
    monkeypatch.setenv("LLMRING_USAGE_DB", str(tmp_path / ".llmring-usage.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / ".xdg-data"))
    from llmring import registry

    registry._loaded = None
    yield
    registry._loaded = None


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()
