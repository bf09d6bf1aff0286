"""A third-party llmring provider (prefix "badsig") whose hook asks for an argument the hook
does not have, so pluggy refuses it: llmring must report it and keep every other provider working."""

from llmring_hello import HelloProvider

from llmring.plugins import hookimpl


@hookimpl
def register_providers(register, settings):
    register("badsig", HelloProvider)
