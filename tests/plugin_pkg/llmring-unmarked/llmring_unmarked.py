"""A third-party llmring provider (prefix "unmarked") whose hook lacks @hookimpl: pluggy does
not see it, so llmring must report the plugin as broken rather than call the function itself."""

from llmring_hello import HelloProvider


def register_providers(register):
    register("unmarked", HelloProvider)
