"""A third-party llmring provider (prefix "broken") whose dependency is missing, so
importing it fails: llmring must report it and keep every other provider working."""

import llmring_broken_missing_dependency  # noqa: F401 - not installed, on purpose

from llmring.plugins import hookimpl


@hookimpl
def register_providers(register):
    register("broken", llmring_broken_missing_dependency.Provider)
