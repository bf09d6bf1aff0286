"""One set of user code -- a stream loop, a multi-turn tool loop, a JSON-schema request --
run unchanged against OpenAI, Anthropic, Gemini and Ollama wire formats, and the mock.

The user code below knows only aliases. The lockfile binds each alias to one provider
per run, and that provider's loopback server speaks its exact wire format (shapes from
the providers' API references). Each scenario also checks what its server received: the
tool results, replayed tool calls and structured-output request in the provider's own terms.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

import attrs
import pytest
from httpfake import Reply

from llmring import LLMRing, Message, Ring
from llmring.exceptions import AllModelsFailedError
from llmring_providers import mock

# == the user's code: written once, it only knows the aliases ==============================

CELSIUS = {"Paris": 21, "Tōkyō": 26}


def get_weather(city: str) -> dict:
    return {"city": city, "celsius": CELSIUS[city]}


def to_fahrenheit(celsius: float) -> float:
    return round(celsius * 9 / 5 + 32, 1)


LOCAL_TOOLS = {"get_weather": get_weather, "to_fahrenheit": to_fahrenheit}
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "The temperature in a city now, in Celsius.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "to_fahrenheit", "description": "Convert Celsius to Fahrenheit.",
        "parameters": {"type": "object", "properties": {"celsius": {"type": "number"}}, "required": ["celsius"]}}},
]
PERSON_SCHEMA = {"type": "object", "additionalProperties": False,
                 "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                 "required": ["name", "age"]}
PERSON = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON_SCHEMA}}


@attrs.define
class Transcript:
    """What a stream loop saw: the text, each tool call's id, name and argument fragments
    as they arrived, and every chunk (the last one says how it ended)."""

    text: str = ""
    heads: dict = attrs.field(factory=dict)  # tool call index -> (id, name)
    fragments: dict = attrs.field(factory=dict)  # tool call index -> [argument fragments]
    chunks: list = attrs.field(factory=list)

    def add(self, chunk: Any) -> None:
        self.text += chunk.delta
        for delta in chunk.tool_call_deltas or []:
            if delta.id or delta.name:
                self.heads.setdefault(delta.index, (delta.id, delta.name))
            self.fragments.setdefault(delta.index, []).append(delta.arguments)
        self.chunks.append(chunk)

    @property
    def final(self) -> Any:
        return self.chunks[-1]

    def ends_only_at_the_last_chunk(self) -> bool:
        return all(c.finish_reason is None and c.usage is None for c in self.chunks[:-1])


def stream_answer(ring: Ring, alias: str, prompt: str, **params: Any) -> Transcript:
    seen = Transcript()
    for chunk in ring.stream(alias, prompt, **params):
        seen.add(chunk)
    return seen


async def stream_answer_async(service: LLMRing, alias: str, prompt: str, **params: Any) -> Transcript:
    seen = Transcript()
    async for chunk in service.stream(alias, prompt, **params):
        seen.add(chunk)
    return seen


def run_tool(call: Any) -> Message:
    result = LOCAL_TOOLS[call.name](**call.arguments)
    return Message(role="tool", tool_call_id=call.id, content=json.dumps(result, ensure_ascii=False))


def tool_loop(ring: Ring, alias: str, question: str, max_turns: int = 5) -> tuple:
    """Ask; while the model asks for tools, run them locally and send the results back.
    Returns the final response and an audit log of every call, by its id."""
    messages = [Message(role="user", content=question)]
    log: dict = {}
    for _ in range(max_turns):
        response = ring.chat(alias, messages, tools=TOOLS)
        if not response.tool_calls:
            return response, log
        messages.append(Message(role="assistant", content=response.content, tool_calls=response.tool_calls))
        for call in response.tool_calls:
            result = run_tool(call)
            log[call.id] = (call.name, call.arguments, result.content)
            messages.append(result)
    raise AssertionError(f"still calling tools after {max_turns} turns")


def extract_person(ring: Any, alias: str, text: str) -> Any:
    return ring.chat(alias, [Message(role="system", content="Extract the person."),
                             Message(role="user", content=text)], response_format=PERSON)


# == provider scenarios: neutral turns -> each provider's wire format =======================

@attrs.define
class Call:
    id: str
    name: str
    args: dict


@attrs.define
class Turn:
    """One model answer, provider-neutral."""

    text: str = ""
    calls: list = attrs.field(factory=list)
    usage: tuple = (10, 5)  # (input tokens, output tokens)

    def pieces(self) -> list:
        """The text as a stream sends it: word by word."""
        words = self.text.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]] if self.text else []


def fragments(text: str, n: int = 3) -> list:
    """`text` cut into n pieces, as argument JSON streams."""
    size = -(-len(text) // n)
    return [text[i:i + size] for i in range(0, len(text), size)]


def split_inside(data: bytes, chars: str) -> list:
    """`data` as network chunks, each cut in the middle of one of `chars`' UTF-8 encoding."""
    cuts = sorted(data.index(c.encode()) + 1 for c in chars)
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def wire_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # raw UTF-8 on the wire, as the providers send it


class Scenario:
    """A provider's loopback server: answers scripted turns in its wire format and checks,
    in its own terms, what the client sent."""

    name = ""  # the provider prefix
    label = ""  # the test id, when one provider has several scenarios
    model = ""
    chat_path = ""
    stream_path = ""
    stream_content_type = "text/event-stream"
    splits_arguments = True  # streams a tool call's arguments in fragments
    server_ids = True  # tool calls carry the server's ids
    wire = True  # False: no server to inspect

    def __init__(self, server: Any) -> None:
        self.server = server

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.model}"

    def env(self) -> dict:
        return {}

    def answer(self, *turns: Turn) -> None:
        self.server.add("POST", self.chat_path, *[Reply(json=self.message(t)) for t in turns])

    def answer_json(self, value: dict, schema_name: str) -> None:
        self.answer(Turn(text=wire_json(value)))

    def stream_json(self, value: dict, schema_name: str, split: str) -> None:
        self.stream(Turn(text=wire_json(value)), split)

    def stream(self, turn: Turn, split: str) -> None:
        data = "".join(self.frames(turn)).encode()
        self.server.add("POST", self.stream_path, Reply(chunks=split_inside(data, split), chunk_delay=0.01,
                                                        content_type=self.stream_content_type))

    def received(self) -> list:
        return [r.json() for r in self.server.requests]

    def usage_of(self, turn: Turn, prompt: str) -> tuple:
        return turn.usage

    # -- the wire format: each provider's own --------------------------------------------
    def message(self, turn: Turn) -> dict:
        raise NotImplementedError

    def frames(self, turn: Turn) -> list:
        raise NotImplementedError

    def check_tool_replay(self, body: dict, turn: Turn, results: list) -> None:
        """The tail of `body` replays `turn`'s tool calls and carries `results` (JSON texts)."""
        raise NotImplementedError

    def check_schema_request(self, body: dict) -> None:
        raise NotImplementedError


class OpenAI(Scenario):
    name, model = "openai", "gpt-4o-mini"
    chat_path = stream_path = "/v1/chat/completions"

    def env(self) -> dict:
        return {"OPENAI_API_KEY": "sk-same-code-0123456789", "OPENAI_BASE_URL": self.server.url + "/v1"}

    def message(self, turn: Turn) -> dict:
        message: dict = {"role": "assistant", "content": turn.text or None, "refusal": None}
        if turn.calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                                     for c in turn.calls]
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if turn.calls else "stop"}],
                "usage": {"prompt_tokens": turn.usage[0], "completion_tokens": turn.usage[1],
                          "total_tokens": sum(turn.usage)}}

    def frames(self, turn: Turn) -> list:
        def chunk(delta: dict, finish: Optional[str] = None) -> dict:
            return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                    "usage": None}

        events: list = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": p}) for p in turn.pieces()]
        for i, c in enumerate(turn.calls):
            events.append(chunk({"tool_calls": [{"index": i, "id": c.id, "type": "function",
                                                 "function": {"name": c.name, "arguments": ""}}]}))
            events += [chunk({"tool_calls": [{"index": i, "function": {"arguments": f}}]})
                       for f in fragments(json.dumps(c.args, ensure_ascii=False))]
        events.append(chunk({}, "tool_calls" if turn.calls else "stop"))
        events.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                       "choices": [], "usage": {"prompt_tokens": turn.usage[0], "completion_tokens": turn.usage[1],
                                                "total_tokens": sum(turn.usage)}})
        frames = [f"data: {wire_json(e)}\n\n" for e in events]
        # Keep-alive comments, as proxies in front of OpenAI-compatible servers send them.
        return [": keep-alive\n\n", *frames[:2], ": keep-alive\n\n", *frames[2:], "data: [DONE]\n\n"]

    def check_tool_replay(self, body: dict, turn: Turn, results: list) -> None:
        n = len(turn.calls)
        assistant, tools = body["messages"][-n - 1], body["messages"][-n:]
        assert assistant["role"] == "assistant"
        assert [(t["id"], t["type"], t["function"]["name"], json.loads(t["function"]["arguments"]))
                for t in assistant["tool_calls"]] == [(c.id, "function", c.name, c.args) for c in turn.calls]
        assert tools == [{"role": "tool", "tool_call_id": c.id, "content": r} for c, r in zip(turn.calls, results)]

    def check_schema_request(self, body: dict) -> None:
        assert body["response_format"] == PERSON


class Anthropic(Scenario):
    name, model = "anthropic", "claude-haiku-4-5"
    chat_path = stream_path = "/v1/messages"

    def env(self) -> dict:
        return {"ANTHROPIC_API_KEY": "sk-ant-same-code-0123456789", "ANTHROPIC_BASE_URL": self.server.url}

    def message(self, turn: Turn) -> dict:
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
                "content": self._blocks(turn), "stop_reason": "tool_use" if turn.calls else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": turn.usage[0], "output_tokens": turn.usage[1],
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

    @staticmethod
    def _blocks(turn: Turn) -> list:
        blocks = [{"type": "text", "text": turn.text}] if turn.text else []
        return blocks + [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in turn.calls]

    def answer_json(self, value: dict, schema_name: str) -> None:
        # The answer comes back as the input of the forced tool.
        self.answer(Turn(calls=[Call("toolu_json", schema_name, value)]))

    def stream_json(self, value: dict, schema_name: str, split: str) -> None:
        self.stream(Turn(calls=[Call("toolu_json", schema_name, value)]), split)

    def frames(self, turn: Turn) -> list:
        events: list = [("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5",
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": turn.usage[0], "output_tokens": 1}}}),
            ("ping", {"type": "ping"})]
        index = 0
        if turn.text:
            events.append(_block_start(index, {"type": "text", "text": ""}))
            events += [_block_delta(index, {"type": "text_delta", "text": p}) for p in turn.pieces()]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        for c in turn.calls:
            events.append(_block_start(index, {"type": "tool_use", "id": c.id, "name": c.name, "input": {}}))
            events += [_block_delta(index, {"type": "input_json_delta", "partial_json": f})
                       for f in ["", *fragments(json.dumps(c.args, ensure_ascii=False))]]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        events += [("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": "tool_use" if turn.calls else "end_turn",
                                                "stop_sequence": None},
                                      "usage": {"output_tokens": turn.usage[1]}}),
                   ("ping", {"type": "ping"}),
                   ("message_stop", {"type": "message_stop"})]
        return [f"event: {name}\ndata: {wire_json(data)}\n\n" for name, data in events]

    def check_tool_replay(self, body: dict, turn: Turn, results: list) -> None:
        assistant, user = body["messages"][-2:]
        assert assistant == {"role": "assistant", "content": self._blocks(turn)}
        assert user["role"] == "user"
        assert [(b["type"], b["tool_use_id"], _text_of(b["content"])) for b in user["content"]] == [
            ("tool_result", c.id, r) for c, r in zip(turn.calls, results)]

    def check_schema_request(self, body: dict) -> None:
        assert {"name": "person", "input_schema": PERSON_SCHEMA}.items() <= body["tools"][-1].items()
        assert body["tool_choice"] == {"type": "tool", "name": "person"}
        assert "response_format" not in body


def _block_start(index: int, block: dict) -> tuple:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def _block_delta(index: int, delta: dict) -> tuple:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def _text_of(content: Any) -> str:
    """A tool_result's content: a string, or text blocks."""
    if isinstance(content, str):
        return content
    return "".join(b["text"] for b in content if b["type"] == "text")


class Gemini(Scenario):
    name, model = "google", "gemini-2.5-flash"
    chat_path = "/v1beta/models/gemini-2.5-flash:generateContent"
    stream_path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    splits_arguments = False  # Gemini sends each functionCall whole
    server_ids = False  # Gemini 2.5 leaves FunctionCall.id out
    SIGNATURE = "c2lnbmF0dXJlLTE="

    def env(self) -> dict:
        return {"GEMINI_API_KEY": "AIza-same-code-0123456789", "GEMINI_BASE_URL": self.server.url}

    def _call(self, call: Call) -> dict:
        return {"name": call.name, "args": call.args, **({"id": call.id} if self.server_ids else {})}

    def _parts(self, turn: Turn) -> list:
        parts = [{"text": turn.text}] if turn.text else []
        # The model's thought signature comes on the first functionCall part (thinking models).
        return parts + [{"functionCall": self._call(c), **({"thoughtSignature": self.SIGNATURE} if i == 0 else {})}
                        for i, c in enumerate(turn.calls)]

    def _response(self, parts: list, finish: Optional[str], usage: Optional[tuple]) -> dict:
        candidate: dict = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}
        if usage:
            body["usageMetadata"] = {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1],
                                     "totalTokenCount": sum(usage)}
        return body

    def message(self, turn: Turn) -> dict:
        return self._response(self._parts(turn), "STOP", turn.usage)

    def frames(self, turn: Turn) -> list:
        events = [self._response([{"text": p}], None, None) for p in turn.pieces()]
        calls = self._parts(attrs.evolve(turn, text=""))
        events.append(self._response(calls, "STOP", turn.usage))  # the last chunk carries finishReason
        frames = [f"data: {wire_json(e)}\r\n\r\n" for e in events]
        return [": keep-alive\r\n\r\n", *frames[:1], ": keep-alive\r\n\r\n", *frames[1:]]

    def check_tool_replay(self, body: dict, turn: Turn, results: list) -> None:
        model, user = body["contents"][-2:]
        assert model["role"] == "model"
        sent_calls = [p for p in model["parts"] if "functionCall" in p]
        assert [p["functionCall"] for p in sent_calls] == [self._call(c) for c in turn.calls]
        assert sent_calls[0]["thoughtSignature"] == self.SIGNATURE  # the model's own, given back
        assert user["role"] == "user"
        responses = [p["functionResponse"] for p in user["parts"]]
        # Named after the function; the call's id goes back only when Gemini gave one.
        assert [(r["name"], r.get("id")) for r in responses] == [
            (c.name, c.id if self.server_ids else None) for c in turn.calls]
        for sent, result in zip(responses, results):
            value = json.loads(result)
            # `response` must be an object: a dict result as is, anything else wrapped in one.
            assert sent["response"] == value if isinstance(value, dict) else value in sent["response"].values()

    def check_schema_request(self, body: dict) -> None:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        schema = config["responseSchema"]  # Gemini's OpenAPI subset: no additionalProperties
        assert schema == {"type": "OBJECT", "required": ["name", "age"], "propertyOrdering": ["name", "age"],
                          "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}}}


class Gemini3(Gemini):
    """Gemini 3 gives each FunctionCall an id, which must come back in its FunctionResponse."""

    label, model = "google-gemini-3", "gemini-3-flash-preview"
    chat_path = "/v1beta/models/gemini-3-flash-preview:generateContent"
    stream_path = "/v1beta/models/gemini-3-flash-preview:streamGenerateContent"
    server_ids = True


class Ollama(Scenario):
    name, model = "ollama", "llama3.1:8b"
    chat_path = stream_path = "/api/chat"
    stream_content_type = "application/x-ndjson"
    splits_arguments = False  # Ollama sends each tool call whole
    server_ids = False

    def env(self) -> dict:
        return {"OLLAMA_HOST": self.server.url}

    def _line(self, content: str = "", calls: Optional[list] = None, done: bool = False,
              usage: Optional[tuple] = None) -> dict:
        message: dict = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = [{"function": {"name": c.name, "arguments": c.args}} for c in calls]
        line = {"model": self.model, "created_at": "2025-01-01T00:00:00Z", "message": message, "done": done}
        if done:
            line.update(done_reason="stop", total_duration=1000, prompt_eval_count=usage[0], eval_count=usage[1])
        return line

    def message(self, turn: Turn) -> dict:
        return self._line(turn.text, turn.calls, done=True, usage=turn.usage)

    def frames(self, turn: Turn) -> list:
        lines = [self._line(p) for p in turn.pieces()]
        if turn.calls:
            lines.append(self._line(calls=turn.calls))
        lines.append(self._line(done=True, usage=turn.usage))
        return [wire_json(line) + "\n" for line in lines]

    def check_tool_replay(self, body: dict, turn: Turn, results: list) -> None:
        n = len(turn.calls)
        assistant, tools = body["messages"][-n - 1], body["messages"][-n:]
        assert assistant == {"role": "assistant", "content": turn.text, "tool_calls": [
            {"function": {"name": c.name, "arguments": c.args}} for c in turn.calls]}
        assert tools == [{"role": "tool", "content": r, "tool_name": c.name} for c, r in zip(turn.calls, results)]

    def check_schema_request(self, body: dict) -> None:
        assert body["format"] == PERSON_SCHEMA


class Mock(Scenario):
    """No server: the mock plays scripted replies (all of a test's replies are queued before it runs)."""

    name, model = "mock", "scripted"
    wire = False

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.replies: list = []

    def answer(self, *turns: Turn) -> None:
        self.replies += [{"content": t.text, "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.args}
                                                             for c in t.calls]} for t in turns]
        mock.script(self.model, self.replies)

    def answer_json(self, value: dict, schema_name: str) -> None:
        self.replies.append({"content": value})
        mock.script(self.model, self.replies)

    def stream(self, turn: Turn, split: str) -> None:
        self.answer(turn)

    def usage_of(self, turn: Turn, prompt: str) -> tuple:
        return len(prompt.split()), len(turn.text.split())  # the mock counts words


SCENARIOS = {s.label or s.name: s for s in (OpenAI, Anthropic, Gemini, Gemini3, Ollama, Mock)}


def lockfile(tmp_path: Any, ref: str) -> Any:
    """`assistant` -> the provider alone; `extractor` -> the provider, then mock:echo."""
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\ndefault_profile = "default"\n\n[profiles.default]\nname = "default"\n\n'
                    f'[[profiles.default.bindings]]\nalias = "assistant"\nmodels = ["{ref}"]\n\n'
                    f'[[profiles.default.bindings]]\nalias = "extractor"\nmodels = ["{ref}", "mock:echo"]\n')
    return path


@pytest.fixture(params=list(SCENARIOS))
def provider(request, server, monkeypatch):
    scenario = SCENARIOS[request.param](server)
    for key, value in scenario.env().items():
        monkeypatch.setenv(key, value)
    yield scenario
    mock.clear_scripts()


@pytest.fixture
def lock(provider, tmp_path):
    return lockfile(tmp_path, provider.ref)


@pytest.fixture
def ring(lock):
    with Ring(lock) as r:
        yield r


# == the tests: the same user code against every provider ===================================

GREETING = Turn(text="Grüße aus Köln 🦅!", usage=(12, 7))


def test_stream_loop(provider, ring):
    provider.stream(GREETING, split="ü🦅")

    seen = stream_answer(ring, "assistant", "Greet me")

    assert seen.text == GREETING.text
    assert len(seen.chunks) >= len(GREETING.pieces()) + 1  # several text chunks, then the final one
    assert seen.ends_only_at_the_last_chunk()
    final = seen.final
    assert (final.finish_reason, final.tool_calls, final.model) == ("stop", None, provider.ref)
    assert (final.usage.input_tokens, final.usage.output_tokens) == provider.usage_of(GREETING, "Greet me")
    assert seen.fragments == {}


CHECKING = Turn(text="Checking the weather.", calls=[Call("call_w1", "get_weather", {"city": "Tōkyō"})],
                usage=(30, 12))


def test_stream_loop_with_a_tool_call(provider, ring):
    provider.stream(CHECKING, split="ō")

    seen = stream_answer(ring, "assistant", "How warm is Tōkyō?", tools=TOOLS)

    assert seen.text == CHECKING.text
    final = seen.final
    assert (final.finish_reason, final.model) == ("tool_calls", provider.ref)
    assert [(c.name, c.arguments) for c in final.tool_calls] == [("get_weather", {"city": "Tōkyō"})]
    call = final.tool_calls[0]
    assert call.id and (call.id == "call_w1" or not provider.server_ids)
    assert seen.ends_only_at_the_last_chunk()
    # What the loop collected from the deltas is the same call.
    assert seen.heads == {0: (call.id, "get_weather")}
    assert json.loads("".join(seen.fragments[0])) == {"city": "Tōkyō"}
    if provider.splits_arguments:
        assert len([f for f in seen.fragments[0] if f]) >= 2


PARALLEL = Turn(calls=[Call("call_p", "get_weather", {"city": "Paris"}),
                       Call("call_t", "get_weather", {"city": "Tōkyō"})], usage=(50, 20))
PARALLEL_RESULTS = ['{"city": "Paris", "celsius": 21}', '{"city": "Tōkyō", "celsius": 26}']
CONVERT = Turn(text="Converting.", calls=[Call("call_f", "to_fahrenheit", {"celsius": 21})], usage=(90, 15))
ANSWER = Turn(text="Paris is 69.8 °F; Tōkyō is warmer at 26 °C.", usage=(120, 18))


def test_tool_loop(provider, ring):
    provider.answer(PARALLEL, CONVERT, ANSWER)

    response, log = tool_loop(ring, "assistant", "Is Paris warmer than Tōkyō, in Fahrenheit?")

    assert (response.content, response.tool_calls, response.finish_reason) == (ANSWER.text, None, "stop")
    assert response.model == provider.ref
    # Every call of the conversation has an id of its own, as OpenAI's and Anthropic's do.
    assert list(log.values()) == [("get_weather", {"city": "Paris"}, PARALLEL_RESULTS[0]),
                                  ("get_weather", {"city": "Tōkyō"}, PARALLEL_RESULTS[1]),
                                  ("to_fahrenheit", {"celsius": 21}, "69.8")]
    if not provider.wire:
        return
    first, second, third = provider.received()
    assert "tools" in first
    provider.check_tool_replay(second, PARALLEL, PARALLEL_RESULTS)
    provider.check_tool_replay(third, CONVERT, ["69.8"])


def test_tool_loop_replaying_only_the_calls(provider, ring):
    """The shortest loop: the assistant turn sent back holds the tool calls and no text."""
    provider.answer(PARALLEL, ANSWER)

    messages = [Message(role="user", content="Paris and Tōkyō?")]
    response = ring.chat("assistant", messages, tools=TOOLS)
    messages.append(Message(role="assistant", tool_calls=response.tool_calls))
    messages.extend(run_tool(call) for call in response.tool_calls)
    final = ring.chat("assistant", messages, tools=TOOLS)

    assert (final.content, final.tool_calls) == (ANSWER.text, None)
    if provider.wire:
        provider.check_tool_replay(provider.received()[1], PARALLEL, PARALLEL_RESULTS)


def test_json_schema_request(provider, ring):
    provider.answer_json({"name": "Jöhn", "age": 42}, "person")

    response = extract_person(ring, "assistant", "Jöhn turned 42 today.")

    assert response.parsed == {"name": "Jöhn", "age": 42}
    assert json.loads(response.content) == response.parsed
    assert (response.model, response.finish_reason, response.tool_calls) == (provider.ref, "stop", None)
    if provider.wire:
        provider.check_schema_request(provider.received()[0])


def test_stream_loop_with_a_json_schema(provider, ring):
    provider.stream_json({"name": "Jöhn", "age": 42}, "person", split="ö")

    seen = stream_answer(ring, "assistant", "Jöhn turned 42 today.", response_format=PERSON)

    assert json.loads(seen.text) == {"name": "Jöhn", "age": 42}
    assert (seen.final.finish_reason, seen.final.tool_calls, seen.fragments) == ("stop", None, {})
    if provider.wire:
        provider.check_schema_request(provider.received()[0])


def test_json_that_does_not_match_the_schema_fails_over(provider, ring):
    provider.answer_json({"name": "Jöhn"}, "person")  # no age

    response = extract_person(ring, "extractor", "Jöhn turned 42 today.")

    assert response.model == "mock:echo"
    assert response.parsed == {"name": "mock", "age": 0}  # mock:echo's example of the schema
    failed = response.attempts[0]
    assert (failed.model, failed.kind) == (provider.ref, "invalid_output")
    assert "age" in failed.message


def test_json_that_does_not_match_the_schema_raises_without_a_fallback(provider, ring):
    provider.answer_json({"name": "Jöhn", "age": "forty-two"}, "person")

    with pytest.raises(AllModelsFailedError) as e:
        extract_person(ring, "assistant", "Jöhn turned 42 today.")

    assert e.value.kind == "invalid_output"
    assert [(a.model, a.kind) for a in e.value.attempts] == [(provider.ref, "invalid_output")]


def test_async_stream_loop_and_json_request(provider, lock):
    provider.stream(GREETING, split="ü🦅")
    provider.answer_json({"name": "Jöhn", "age": 42}, "person")

    async def main() -> tuple:
        async with LLMRing(lock) as service:
            seen = await stream_answer_async(service, "assistant", "Greet me")
            person = await extract_person(service, "assistant", "Jöhn turned 42 today.")
        return seen, person

    seen, person = asyncio.run(main())

    assert seen.text == GREETING.text
    assert (seen.final.finish_reason, seen.final.model) == ("stop", provider.ref)
    assert (seen.final.usage.input_tokens, seen.final.usage.output_tokens) == provider.usage_of(GREETING, "Greet me")
    assert (person.parsed, person.model) == ({"name": "Jöhn", "age": 42}, provider.ref)
