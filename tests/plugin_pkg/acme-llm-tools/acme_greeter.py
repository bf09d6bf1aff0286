"""An llmring provider (prefix "greet") shipped in a package named unlike it (acme-llm-tools),
under two entry-point names: its providers come in once, under the package's name."""

from llmring.plugins import hookimpl
from llmring.provider import Provider


@hookimpl
def register_providers(register):
    register("greet", Provider)
