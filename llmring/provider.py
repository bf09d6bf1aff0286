"""The base class provider plugins implement, and the HTTP plumbing they share.

A provider turns an LLMRequest into its API's HTTP call and the answer back into an
LLMResponse (or StreamChunks). It never retries or fails over: it raises a ProviderError
whose `kind` tells the ring what to do (see exceptions.KINDS).
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Optional

import attrs
import requests

from . import transport
from .cancel import track
from .exceptions import (
    LLMRingError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotConfiguredError,
    ProviderTimeoutError,
    error_for_kind,
)
from .types import LLMRequest, LLMResponse, StreamChunk, ToolCall

Timeout = tuple  # (connect seconds, read seconds), as requests takes it; see deadline.TryTimeout
MESSAGE_LIMIT = 500  # characters of a provider's error message kept
QUOTE_LIMIT = 120  # characters of a garbled event quoted


@attrs.define
class ProviderSettings:
    """What a provider factory is given. `base_url` and `api_key_env` come from a
    `[providers.NAME]` table of the lockfile and override the provider's defaults."""

    name: str
    session: requests.Session = attrs.field(factory=transport.new_session, repr=False)
    base_url: Optional[str] = None
    api_key_env: Optional[str] = None
    options: dict = attrs.field(factory=dict)
    env: Mapping = attrs.field(factory=lambda: os.environ, repr=False)

    @classmethod
    def of(cls, name: str, endpoint: Any = None, **kw: Any) -> ProviderSettings:
        """Settings for prefix `name`, taken from its `[providers.NAME]` endpoint when it has one."""
        if endpoint is not None:
            kw.update(base_url=endpoint.base_url, api_key_env=endpoint.api_key_env, options=dict(endpoint.options))
        return cls(name, **kw)


class Provider:
    """Subclass this, set the class attributes, implement `chat` and `stream`."""

    #: Environment variables that may hold the API key, first found wins. Empty: no key.
    key_envs: tuple = ()
    #: Environment variable for the base URL, and the default.
    base_url_env: Optional[str] = None
    default_base_url: str = ""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.session = settings.session

    # -- to implement ---------------------------------------------------------------
    def chat(self, model: str, request: LLMRequest, timeout: Timeout) -> LLMResponse:
        raise NotImplementedError

    def stream(self, model: str, request: LLMRequest, timeout: Timeout) -> Iterator[StreamChunk]:
        raise NotImplementedError

    def list_models(self, timeout: Timeout) -> list:
        """Model names the provider's own endpoint lists (`llmring list --live`)."""
        raise NotImplementedError(f"{self.name} cannot list its models")

    def error_from_response(self, response: requests.Response) -> ProviderError:
        """Map an HTTP error response to a ProviderError. Override to read the body."""
        body = response_json(response)
        message = _find_message(body) or response.text or response.reason or "no message"
        return self.error(status_kind(response.status_code), message, response=response)

    # -- configuration --------------------------------------------------------------
    @property
    def base_url(self) -> str:
        url = self.settings.base_url
        if not url and self.base_url_env:
            url = self.settings.env.get(self.base_url_env)
        return (url or self.default_base_url).rstrip("/")

    def key_env_names(self) -> tuple:
        # An endpoint declared in the lockfile uses only its own key variable (or none:
        # local servers such as vLLM or llama.cpp often need no key).
        if self.settings.api_key_env:
            return (self.settings.api_key_env,)
        return () if self.settings.base_url else self.key_envs

    def api_key(self) -> Optional[str]:
        """The API key, or raise ProviderNotConfiguredError naming the variable to set."""
        names = self.key_env_names()
        if not names:
            return None
        for name in names:
            value = self.settings.env.get(name)
            if value:
                return value
        raise ProviderNotConfiguredError(
            f"{self.name} needs an API key: set {' or '.join(names)}.", provider=self.name
        )

    def configuration_problem(self) -> Optional[str]:
        """Why this provider cannot be used now (for `llmring providers`), or None."""
        try:
            self.api_key()
        except ProviderNotConfiguredError as e:
            return str(e)
        return None

    # -- HTTP -----------------------------------------------------------------------
    #: Bytes of an answer read at most (beyond: "invalid_output"), and of an error body.
    max_answer_bytes: int = 64 << 20
    max_error_bytes: int = 64 << 10

    def error(self, kind: str, message: str, response: Optional[requests.Response] = None,
              model: Optional[str] = None) -> ProviderError:
        status = response.status_code if response is not None else None
        retry = retry_after(response) if response is not None else None
        text = self.redact(message, limit=MESSAGE_LIMIT)
        return error_for_kind(kind, f"{self.name}: {text}", provider=self.name, model=model,
                              status=status, retry_after=retry)

    def redact(self, text: str, limit: Optional[int] = None) -> str:
        """`text` with the API key blanked (some servers echo a rejected key in their error
        message), then cut to `limit` characters: in that order, so no part of a key survives."""
        secrets = transport.secrets_of(self.settings.env, self.key_env_names())
        return transport.redact(text, secrets) if limit is None else transport.clip(text, limit, secrets)

    def post(self, url: str, body: dict, headers: Mapping, timeout: Timeout,
             stream: bool = False) -> requests.Response:
        """POST JSON; return a 2xx response or raise the mapped ProviderError."""
        try:  # as requests would, but a value JSON cannot carry (NaN, an object) is the caller's error
            data = json.dumps(body, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            raise self.error("bad_request", f"the request cannot be sent as JSON ({e}); "
                                            f"pass only finite numbers, strings, lists and dicts.") from None
        headers = {"Content-Type": "application/json", **headers}
        return self.request("POST", url, headers=headers, timeout=timeout, stream=stream, data=data)

    def request(self, method: str, url: str, *, headers: Mapping, timeout: Timeout,
                stream: bool = False, **kw: Any) -> requests.Response:
        """Send; return a 2xx response (its body read, unless `stream`) or raise the ProviderError
        it means. The exchange ends by the try's deadline (`timeout.budget`) whatever the server
        does; answers are read up to `max_answer_bytes`, error bodies up to `max_error_bytes`."""
        try:
            response = transport.open_response(self.session, method, url, headers=headers, timeout=timeout, **kw)
        except requests.exceptions.InvalidJSONError as e:
            raise self.error("bad_request", f"the request cannot be sent as JSON ({e}).") from None
        except requests.exceptions.InvalidHeader:  # its message holds the header's value: maybe a key
            names = " or ".join(self.key_env_names()) or "the provider's settings"
            raise self.error("not_configured", f"a header value is not valid HTTP (a line break or a space "
                                               f"around the API key?); check {names}.") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, requests.exceptions.URLRequired) as e:
            raise self.error("not_configured", f"cannot send to {url!r} ({type(e).__name__}); "
                                               f"check the endpoint's base_url.") from None
        except requests.RequestException as e:
            raise self.transport_error(e) from None
        if stream:
            track(response)
        status = response.status_code
        if status >= 300:
            secrets = transport.secrets_of(self.settings.env, self.key_env_names())
            cut = transport.read_error_body(response, self.max_error_bytes, secrets)
            if cut is not None:
                size = transport.describe_size(cut) if cut >= 0 else "unknown size"
                raise self.error(status_kind(status), f"answered HTTP {status} with an error body of {size}; "
                                 f"llmring read only its start: {response.text}", response=response)
            if status < 400:
                # Following it would send the key headers to whatever host the server names.
                raise self.error("not_configured", f"answered HTTP {status}, a redirect to "
                                 f"{response.headers.get('location') or 'nowhere'}; llmring does not follow "
                                 f"redirects from an API: if that address is right, make it the base_url.",
                                 response=response)
            raise self.error_from_response(response)
        if not stream:
            try:
                transport.read_body(response, self.max_answer_bytes)
            except transport.BodyTooLarge as e:
                raise self.error("invalid_output", f"answered with {e} of data; llmring reads at most "
                                 f"{transport.describe_size(e.limit)} of an answer.") from None
            except requests.RequestException as e:
                raise self.transport_error(e) from None
        return response

    def event_json(self, data: str) -> dict:
        """A streamed event's data as a JSON object, or the "server" error a garbled event is."""
        try:
            value = json.loads(data)
        except RecursionError:
            raise self.error("invalid_output", "sent a stream event nested too deeply to read") from None
        except ValueError:
            quoted = repr(self.redact(data, limit=QUOTE_LIMIT))
            raise self.error("server", f"sent a stream event that is not JSON: {quoted}") from None
        if not isinstance(value, dict):
            quoted = repr(self.redact(data, limit=QUOTE_LIMIT))
            raise self.error("server", f"sent a stream event that is not a JSON object: {quoted}")
        return value

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Parse answers inside this: a body of a shape the parser did not expect (a server
        bug, a proxy's page) becomes an "invalid_output" ProviderError, not a KeyError."""
        try:
            yield
        except LLMRingError:
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            raise self.error("invalid_output", f"answered in a shape llmring cannot read "
                                               f"({type(e).__name__}: {e})") from None

    def transport_error(self, exc: BaseException) -> ProviderError:
        """A ProviderError for a network failure; the message never includes headers or keys."""
        if isinstance(exc, transport.DeadlinePassed):
            return ProviderTimeoutError(f"{self.name}: {exc}, before the answer was complete.", provider=self.name)
        text = str(exc)
        if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
            return ProviderTimeoutError(f"{self.name}: no answer in time ({_short(exc)})", provider=self.name)
        return ProviderConnectionError(f"{self.name}: connection failed ({_short(exc)})", provider=self.name)

    def close(self) -> None:
        """Release what the provider holds beyond the shared session."""


def _short(exc: BaseException) -> str:
    # requests' messages repeat the URL and pool details; the innermost reason is enough.
    text = str(exc)
    for marker in ("Read timed out", "Connection refused", "Connection reset", "Name or service not known",
                   "Connection aborted", "Remote end closed", "Failed to resolve", "timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


# -- shared helpers for providers --------------------------------------------------------

_STATUS_KINDS = {400: "bad_request", 401: "auth", 403: "auth", 404: "not_found", 408: "timeout",
                 409: "server", 413: "context_length", 422: "bad_request", 429: "rate_limit",
                 529: "overloaded"}


def status_kind(status: int) -> str:
    """The failure kind an HTTP status means when the body says nothing more precise."""
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    return "server" if status >= 500 else "bad_request"


def retry_after(response: requests.Response) -> Optional[float]:
    """Seconds the server asked us to wait (Retry-After seconds or date, retry-after-ms)."""
    headers = response.headers
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return _seconds(float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return _seconds(when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _seconds(value: float) -> Optional[float]:
    # "nan" and "inf" parse as floats; a server's header must not make the wait endless.
    return max(0.0, value) if math.isfinite(value) else None


def response_json(response: requests.Response) -> Any:
    """The body as JSON, or None when it is not JSON (or nested too deeply to read)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _find_message(body: Any) -> Optional[str]:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
    return None


CONTEXT_LENGTH_MARKERS = ("context length", "context_length", "context window", "maximum context",
                          "too many tokens", "prompt is too long", "input is too long",
                          "exceeds the maximum number of tokens", "input token count")


def looks_like_context_length(message: str) -> bool:
    text = message.lower()
    return any(m in text for m in CONTEXT_LENGTH_MARKERS)


def function_specs(tools: Optional[list]) -> list:
    """Tools in either accepted shape -> [{"name", "description", "parameters"}]."""
    specs = []
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise ValueError("each tool needs a name: use {'type': 'function', 'function': {'name': ..., "
                             "'parameters': {...}}} or {'name': ..., 'parameters': {...}}")
        specs.append({"name": fn["name"], "description": fn.get("description", ""),
                      "parameters": fn.get("parameters") or {"type": "object", "properties": {}}})
    return specs


def tool_choice_name(choice: Any) -> Optional[str]:
    """The function a tool_choice names ({"type":"function","function":{"name":...}} or
    {"name": ...}), or None for "auto" / "none" / "required"."""
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name") or choice.get("name")
    return None


def new_call_id() -> str:
    """An id for a tool call the API gave none (Gemini 2.x, Ollama): unique, as OpenAI's and
    Anthropic's are, so code that keys calls by id works the same with every provider."""
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call(id: str, name: str, arguments: Any) -> ToolCall:
    """A ToolCall from arguments given as a dict or as JSON text ("" means no arguments);
    text that is not a JSON object is kept in `raw_arguments`."""
    if isinstance(arguments, dict):
        return ToolCall(id=id, name=name, arguments=arguments)
    text = arguments or ""
    if not text.strip():
        return ToolCall(id=id, name=name)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return ToolCall(id=id, name=name, arguments=parsed)
    return ToolCall(id=id, name=name, raw_arguments=text)


def merge_extra_params(body: dict, extra: Optional[Mapping]) -> dict:
    """`body` with the caller's `extra_params` on top. A dict given for a key the body also
    has as a dict is merged into it (one level), so `{"options": {"num_ctx": 8192}}` adds to
    the options built from the request instead of replacing them."""
    for key, value in (extra or {}).items():
        if isinstance(value, Mapping) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def split_data_url(url: str) -> Optional[tuple]:
    """"data:image/png;base64,AAAA" -> ("image/png", "AAAA"); None for other URLs."""
    if not url.startswith("data:") or "," not in url:
        return None
    head, data = url[5:].split(",", 1)
    mime = head.split(";")[0] or "application/octet-stream"
    return mime, data


def image_url(part: dict) -> str:
    """The URL of an image part ({"type": "image_url", "image_url": {"url"}} or a plain string)."""
    value = part.get("image_url")
    return value.get("url", "") if isinstance(value, dict) else str(value or part.get("url", ""))
