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
from collections.abc import Callable, Iterator, Mapping
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
from .translate import (  # noqa: F401 - plugins import these from here
    answer_text,
    bad_request,
    check_request,
    content_parts,
    function_specs,
    image_url,
    merge_extra_params,
    new_call_id,
    split_data_url,
    stop_sequences,
    tool_call,
    tool_choice,
    tool_choice_name,
    unsupported,
)
from .types import LLMRequest, LLMResponse, StreamChunk
from .wire import relay

Timeout = tuple  # (connect seconds, read seconds), as requests takes it; see deadline.TryTimeout
MESSAGE_LIMIT = 500  # characters of a provider's error message kept
QUOTE_LIMIT = 120  # characters of a garbled event quoted


@attrs.define
class ProviderSettings:
    """What a provider factory is given. `base_url` and `api_key_env` come from a
    `[providers.NAME]` table of the lockfile and override the provider's defaults.

    Attributes:
        name: The prefix the provider serves, e.g. `openai` or a lockfile endpoint's `groq`.
        session: The keep-alive HTTP session the Ring's providers share.
        base_url: The endpoint's `base_url`, or None for the provider's default.
        api_key_env: The endpoint's key variable, or None for the provider's `key_envs`.
        options: The endpoint table's other keys.
        env: Where variables are read from (`os.environ` unless a test gives another).
    """

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
    """Subclass this and set the class attributes. An HTTP provider then supplies only its
    vendor mapping (`url`, `body`, `parse`, `read_stream`, and `headers` / `error_kind` when
    the defaults do not fit): `chat` and `stream` here own the round trip (build the body,
    post, check the status, raise an error object found in a 200 body, parse inside
    `reading()`). A provider without HTTP overrides `chat` and `stream` instead."""

    key_envs: tuple = ()
    """Environment variables that may hold the API key, first found wins. Empty: no key."""
    base_url_env: Optional[str] = None
    """Environment variable that may set the base URL (e.g. `OLLAMA_HOST`)."""
    default_base_url: str = ""
    """The base URL when neither the lockfile nor `base_url_env` sets one."""
    offline: bool = False
    """Answers with no key and no network (llmring's mock): when no provider has a key, `lock
    init` binds the `starter_models` of these, so a new project runs at once."""
    telemetry_name: str = ""
    """OpenTelemetry's `gen_ai.provider.name` for this API when the conventions list one that
    is not the prefix (e.g. "gcp.gemini", "aws.bedrock"). Empty: the prefix."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.session = settings.session

    # -- the round trip ---------------------------------------------------------------
    def chat(self, model: str, request: LLMRequest, timeout: Timeout) -> LLMResponse:
        """One answer from `model` (the part after the prefix) for `request`, within
        `timeout` (connect, read seconds); a failure raises a `ProviderError` with its kind."""
        body = self.request_body(model, request, stream=False)
        response = self.post(self.url(model, stream=False), body, self.headers(), timeout)
        data = self.answer_object(response_json(response))
        with self.reading():
            return self.parse(model, request, data)

    def stream(self, model: str, request: LLMRequest, timeout: Timeout) -> Iterator[StreamChunk]:
        """The answer as `StreamChunk`s, the last with `finish_reason` and `usage`; failures
        raise as in `chat`."""
        response = self.open_stream(model, request, timeout)
        with self.reading():
            yield from relay(response, self.read_stream(model, request, response))

    def open_stream(self, model: str, request: LLMRequest, timeout: Timeout) -> requests.Response:
        """The streaming response, status checked (override to retry a rejected option)."""
        body = self.request_body(model, request, stream=True)
        return self.post(self.url(model, stream=True), body, self.headers(), timeout, stream=True)

    def request_body(self, model: str, request: LLMRequest, stream: bool) -> dict:
        """`body()` with the caller's `extra_params` merged in. A caller error found while
        building it raises before any network call."""
        try:  # as caller_errors() does, without a context manager on the hot path
            check_request(request)
            body = self.body(model, request, stream)
        except ProviderError as e:
            raise self._named(e, model) from None
        return merge_extra_params(body, request.extra_params)

    def answer_object(self, data: Any) -> dict:
        """An answer body or stream event as a JSON object. An error object in it raises:
        some APIs and proxies report errors with status 200."""
        if not isinstance(data, dict):
            raise self.error("server", "answered with a body that is not a JSON object")
        err = self.error_object(data)
        if err:
            raise self.error_from_object(err)
        return data

    # -- the vendor mapping -------------------------------------------------------------
    def url(self, model: str, stream: bool) -> str:
        """Where a chat (or a streamed chat) with `model` is posted."""
        raise NotImplementedError(f"{type(self).__name__} must define url, body, parse and read_stream "
                                  "(or override chat and stream)")

    def headers(self) -> dict:
        """The request headers. Default: `Authorization: Bearer KEY` when a key is needed."""
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def body(self, model: str, request: LLMRequest, stream: bool) -> dict:
        """The JSON body for `request`, without `extra_params` (the round trip merges them)."""
        raise NotImplementedError

    def parse(self, model: str, request: LLMRequest, data: dict) -> LLMResponse:
        """The LLMResponse for an answer body (a JSON object without an error object)."""
        raise NotImplementedError

    def read_stream(self, model: str, request: LLMRequest, response: requests.Response) -> Iterator[StreamChunk]:
        """The StreamChunks of a streaming response (`wire.iter_sse` / `iter_ndjson` read it)."""
        raise NotImplementedError

    def error_kind(self, err: dict, status: Optional[int]) -> str:
        """The failure kind of the API's error object `err`; `status` is None for an error
        inside a 200 body or a stream. Default: context_length by the message, else by status."""
        if looks_like_context_length(str(err.get("message") or "")):
            return "context_length"
        return status_kind(status) if status is not None else "server"

    def error_object(self, body: Any) -> Any:
        """The API's error object in a parsed body (`{"error": {...}}`), or None."""
        return body.get("error") if isinstance(body, dict) else None

    def list_models(self, timeout: Timeout) -> list:
        """Model names the provider's own endpoint lists (`llmring list --live`)."""
        raise NotImplementedError(f"{self.name} cannot list its models")

    # -- errors ---------------------------------------------------------------------------
    def error_from_object(self, err: Any, response: Optional[requests.Response] = None) -> ProviderError:
        """The ProviderError for the API's error object `err`, from an HTTP error answer
        (`response`) or met in a 200 body or a stream (`response` None)."""
        if not isinstance(err, dict):
            err = {"message": str(err or "unknown error")}  # e.g. {"error": "text"}
        status = response.status_code if response is not None else None
        message = str(err.get("message") or err.get("type") or err.get("code")
                      or (f"HTTP {status}" if status else "unknown error"))
        return self.error(self.error_kind(err, status), message, response=response)

    def bad_request(self, message: str, model: Optional[str] = None) -> ProviderError:
        """The error for a request the caller got wrong: the ring raises it at once, tries
        no other model and counts it against none."""
        return self.error("bad_request", message, model=model)

    def unsupported(self, message: str, model: Optional[str] = None) -> ProviderError:
        """The error for a request this model or API cannot serve: the ring fails over."""
        return self.error("unsupported", message, model=model)

    @contextmanager
    def caller_errors(self, model: Optional[str] = None) -> Iterator[None]:
        """Check or translate the caller's request inside this: the `bad_request()` /
        `unsupported()` errors of helper functions, which know no provider, get its name."""
        try:
            yield
        except ProviderError as e:
            raise self._named(e, model) from None

    def _named(self, exc: ProviderError, model: Optional[str]) -> ProviderError:
        # A helper's error knows no provider: give it this one's name (and redaction).
        return exc if exc.provider is not None else self.error(exc.kind, exc.message, model=model)

    max_pages: int = 100
    """Pages of a model listing read at most: far beyond any real API's, short of a loop's."""

    def pages(self, fetch: Callable[[Optional[str]], tuple]) -> list:
        """The items of every page of a listing: `fetch(token)` returns (items, next page
        token or None). A token seen twice, or more than `max_pages` pages, is a `server` error:
        a broken server must not keep `llmring list --live` looping, and a silently cut list
        would show listed models as missing."""
        items: list = []
        seen: set = set()
        token = None
        for _ in range(self.max_pages):
            with self.reading():  # a page of an unexpected shape is invalid_output, not a crash
                page, token = fetch(token)
            items.extend(page)
            if not token:
                return items
            if token in seen:
                raise self.error("server", f"sent the same page token twice while listing models "
                                           f"(after {len(items)} entries); its listing is broken")
            seen.add(token)
        raise self.error("server", f"listed more than {self.max_pages} pages of models; stopped there")

    def error_from_response(self, response: requests.Response) -> ProviderError:
        """The ProviderError for an HTTP error answer: its error object (`error_object`), else
        the body's message or text, classified by `error_kind`. The body was read up to a
        small cap and its keys redacted before this sees it."""
        body = response_json(response)
        err = self.error_object(body)
        if not err:  # not the API's shape (a proxy's HTML page, a bare {"message"})
            err = {"message": _find_message(body) or response.text or response.reason or "no message"}
        return self.error_from_object(err, response)

    # -- configuration --------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The lockfile's `base_url`, else `$base_url_env`, else `default_base_url`."""
        url = self.settings.base_url
        if not url and self.base_url_env:
            url = self.settings.env.get(self.base_url_env)
        return (url or self.default_base_url).rstrip("/")

    def key_env_names(self) -> tuple:
        """The variables the API key is read from: the lockfile endpoint's `api_key_env` when
        it gives one; none when it gives a `base_url` without one; else `key_envs`."""
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
    max_answer_bytes: int = 64 << 20
    """Bytes of an answer read at most; a longer one is an "invalid_output" failure."""
    max_error_bytes: int = 64 << 10
    """Bytes of an error body read at most."""

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
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, RecursionError) as e:
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
