"""A third-party llmring provider (prefix "hello") that answers without any network."""

from collections.abc import Iterator

from llmring.plugins import hookimpl
from llmring.provider import Provider, Timeout
from llmring.types import LLMRequest, LLMResponse, StreamChunk, Usage


class HelloProvider(Provider):
    def chat(self, model: str, request: LLMRequest, timeout: Timeout) -> LLMResponse:
        text = self._answer(model, request)
        return LLMResponse(content=text, model=model, usage=Usage(0, len(text.split())),
                           finish_reason="stop", raw_finish_reason="stop")

    def stream(self, model: str, request: LLMRequest, timeout: Timeout) -> Iterator[StreamChunk]:
        text = self._answer(model, request)
        yield StreamChunk(delta=text)
        yield StreamChunk(finish_reason="stop", raw_finish_reason="stop", usage=Usage(0, len(text.split())))

    def list_models(self, timeout: Timeout) -> list:
        return ["world"]

    @staticmethod
    def _answer(model: str, request: LLMRequest) -> str:
        last = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        return f"Hello from {model}: {last}"


@hookimpl
def register_providers(register):
    register("hello", HelloProvider)
