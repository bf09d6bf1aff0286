"""Ring: resolves aliases through the lockfile and walks each alias's models until one answers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Optional, Union

import attrs

from . import lockfile as lf_mod
from .cancel import OPEN_RESPONSES, abort
from .exceptions import (
    AliasNotFoundError,
    ConfigurationError,
    MissingAliasesError,
    ProviderError,
    ProviderNotFoundError,
    StreamInterruptedError,
    all_failed,
)
from .failover import CircuitBreaker, RetryPolicy, fails_over
from .lockfile import Binding, Lockfile
from .refs import alias_problem, is_ref, ref_problem, split_refs
from .types import Attempt, LLMRequest, LLMResponse, StreamChunk

ENV_TIMEOUT = "LLMRING_PROVIDER_TIMEOUT_S"
DEFAULT_READ_TIMEOUT = 120.0  # long generations legitimately take a minute or more
DEFAULT_CONNECT_TIMEOUT = 10.0
_REQUEST_FIELDS = frozenset(f.name for f in attrs.fields(LLMRequest)) - {"model", "messages"}


@attrs.define
class Resolution:
    """Where an alias leads: its models in order, and the profile and file that said so."""

    target: str
    models: list
    profile: Optional[str] = None
    alias: Optional[str] = None
    binding: Optional[Binding] = None
    lockfile: Optional[Path] = None


class Ring:
    """The synchronous client. Thread-safe: one Ring can serve many threads.

    `lockfile_path` must exist when given; otherwise LLMRING_LOCKFILE_PATH, then
    ./llmring.lock, then the bundled lockfile. `timeout` is the read timeout of one try
    (default LLMRING_PROVIDER_TIMEOUT_S or 120 s); a request's own `timeout` is a deadline
    for the whole call, retries and fallbacks included.
    """

    def __init__(self, lockfile_path: Optional[lf_mod.PathLike] = None, *, profile: Optional[str] = None,
                 timeout: Optional[float] = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 retry: Optional[RetryPolicy] = None, breaker: Optional[CircuitBreaker] = None,
                 pool_size: int = 64) -> None:
        self._located = lf_mod.locate(lockfile_path)
        self.profile = profile
        self.read_timeout = timeout if timeout is not None else _env_timeout()
        self.connect_timeout = connect_timeout
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.pool_size = pool_size
        self._lock = threading.RLock()
        self._lockfile: Optional[Lockfile] = None
        self._stamp: Any = None
        self._cache: dict = {}
        self._providers: dict = {}
        self._session: Any = None

    # -- lockfile -------------------------------------------------------------------------
    @property
    def lockfile_path(self) -> Path:
        return self._located.path

    @property
    def lockfile_source(self) -> str:
        """How the lockfile was found: explicit, env, cwd or bundled."""
        return self._located.source

    @property
    def lockfile(self) -> Lockfile:
        """The parsed lockfile, re-read when the file changed on disk."""
        path = self._located.path
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            if self._lockfile is None or stamp != self._stamp:
                self._lockfile = lf_mod.read(path)
                self._stamp = stamp
                self._cache.clear()
                self._drop_providers()
            return self._lockfile

    def clear_alias_cache(self) -> None:
        """Forget resolved aliases (they are also dropped when the file changes on disk)."""
        with self._lock:
            self._cache.clear()
            self._lockfile = None

    def _profile_name(self, lf: Lockfile, profile: Optional[str]) -> str:
        return lf_mod.choose_profile(lf, profile or self.profile)

    def active_profile(self, profile: Optional[str] = None) -> str:
        """The profile a call would use: `profile`, else the Ring's, else $LLMRING_PROFILE,
        else the lockfile's default_profile."""
        return self._profile_name(self.lockfile, profile)

    # -- resolving ------------------------------------------------------------------------
    def resolve(self, target: str, profile: Optional[str] = None) -> Resolution:
        """The models `target` (an alias or a provider:model reference) leads to."""
        if is_ref(target):
            problem = ref_problem(target)
            if problem:
                raise ConfigurationError(problem[0].upper() + problem[1:] + ".")
            return Resolution(target, [target.strip()])
        lf = self.lockfile
        name = self._profile_name(lf, profile)
        key = (target, name)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        if name not in lf.profiles and lf.profiles:
            lf.profile(name)  # raises: lists the profiles there are
        found = lf.find(target, name)
        if found is None:
            raise self._alias_not_found(lf, target, name)
        binding, source = found
        res = Resolution(target, list(binding.models), source, target, binding, self._located.path)
        with self._lock:
            self._cache[key] = res
        return res

    def _alias_not_found(self, lf: Lockfile, alias: str, profile: str) -> AliasNotFoundError:
        import difflib

        problem = alias_problem(alias)
        if problem:
            return AliasNotFoundError(problem[0].upper() + problem[1:] + ".")
        known = sorted(self.list_aliases(profile)) if profile in lf.profiles or not lf.profiles else []
        close = difflib.get_close_matches(alias, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f"profile {profile!r} of {self._located.path}"
        if self._located.source == "bundled":
            where += " (llmring's bundled lockfile: create your own with `llmring lock init`)"
        return AliasNotFoundError(f"Alias {alias!r} is not bound in {where}.{hint} "
                                  f"Bind it with `llmring bind {alias} provider:model`.")

    def resolve_alias(self, alias: str, profile: Optional[str] = None) -> str:
        """The first (primary) model an alias leads to, e.g. "openai:gpt-4o-mini"."""
        return self.resolve(alias, profile).models[0]

    def list_aliases(self, profile: Optional[str] = None) -> dict:
        """alias -> primary model, for the profile (with aliases it inherits from the default profile)."""
        lf = self.lockfile
        name = self._profile_name(lf, profile)
        out: dict = {}
        for pname in dict.fromkeys((lf.default_profile, name)):
            p = lf.profiles.get(pname)
            if p is None and pname == name and lf.profiles:
                lf.profile(name)  # raises with the list of profiles
            for b in p.bindings if p else ():
                out[b.alias] = b.models[0]
        return out

    def has_alias(self, alias: str, profile: Optional[str] = None) -> bool:
        """Whether the alias resolves; never raises."""
        try:
            self.resolve(alias, profile)
        except Exception:  # noqa: BLE001 - documented to answer, never to raise
            return False
        return not is_ref(alias)

    def require_aliases(self, aliases: list, context: Optional[str] = None,
                        profile: Optional[str] = None) -> None:
        """Raise MissingAliasesError (a ValueError) naming every alias the lockfile lacks."""
        missing = [a for a in aliases if not self.has_alias(a, profile)]
        if missing:
            who = f" for {context}" if context else ""
            raise MissingAliasesError(
                f"Lockfile missing required aliases{who}: {', '.join(missing)}.\n"
                f"Lockfile path: {self._located.path}\n"
                "Please ensure your lockfile defines these aliases.", missing, str(self._located.path))

    # -- editing --------------------------------------------------------------------------
    def _write_path(self) -> Path:
        # The bundled lockfile is never edited: edits start the project's own file.
        if self._located.source == "bundled":
            return Path.cwd() / lf_mod.FILENAME
        return self._located.path

    def _edit(self, change: Any, create: bool) -> Any:
        path = self._write_path()
        result = lf_mod.edit(path, change, create=create)
        with self._lock:
            if self._located.path != path:
                self._located = lf_mod.Located(path, "cwd")
            self._lockfile = None
            self._cache.clear()
        return result

    def bind_alias(self, alias: str, models: Union[str, list], profile: Optional[str] = None, *,
                   description: Optional[str] = None, params: Optional[dict] = None,
                   requires: Optional[list] = None) -> Binding:
        """Bind an alias to one model, a list, or "a:b,c:d" (primary first), in the profile
        (created if new). Writes the lockfile atomically."""
        problem = alias_problem(alias)
        if problem:
            raise ConfigurationError(problem[0].upper() + problem[1:] + ".")
        refs = split_refs(models)
        if not refs:
            raise ConfigurationError("Give at least one model, e.g. openai:gpt-4o-mini.")
        for ref in refs:
            problem = ref_problem(ref)
            if problem:
                raise ConfigurationError(problem[0].upper() + problem[1:] + ".")
        twice = sorted({r for r in refs if refs.count(r) > 1})
        if twice:
            raise ConfigurationError(f"Give each model once: {', '.join(twice)} appears more than once.")

        def change(lf: Lockfile) -> Binding:
            p = lf.profile(self._profile_name(lf, profile), create=True)
            return p.rebind(alias, refs, description, params, requires)

        return self._edit(change, create=True)

    def unbind_alias(self, alias: str, profile: Optional[str] = None) -> None:
        """Remove an alias from the profile; AliasNotFoundError if it is not bound there."""

        def change(lf: Lockfile) -> None:
            name = self._profile_name(lf, profile)
            if not lf.profile(name).unbind(alias):
                raise AliasNotFoundError(f"Alias {alias!r} is not bound in profile {name!r} of "
                                         f"{self._write_path()}; nothing was changed.")

        self._edit(change, create=False)

    def init_lockfile(self, force: bool = False, path: Optional[lf_mod.PathLike] = None) -> Path:
        """Write a new lockfile: at `path`, else at the file this Ring was given (lockfile_path
        or $LLMRING_LOCKFILE_PATH), else ./llmring.lock. Refuses to overwrite unless `force`."""
        given = self._located.source in ("explicit", "env")
        target = Path(path) if path else (self._located.path if given else Path.cwd() / lf_mod.FILENAME)
        from .init import create

        create(target, force)
        with self._lock:
            self._located = lf_mod.Located(target, "explicit" if given or path else "cwd")
            self._lockfile = None
            self._cache.clear()
        return target

    # -- chatting -------------------------------------------------------------------------
    def chat(self, target: Union[str, LLMRequest], messages: Any = None, *,
             profile: Optional[str] = None, **params: Any) -> LLMResponse:
        """Ask an alias (or provider:model). The first model that answers wins; the response
        says which, and what happened on the way (`attempts`)."""
        request, res = self._prepare(target, messages, profile, params)
        return self._walk_chat(request, res)

    def stream(self, target: Union[str, LLMRequest], messages: Any = None, *,
               profile: Optional[str] = None, **params: Any) -> Stream:
        """Like chat, yielding StreamChunks; fails over only before the first chunk."""
        request, res = self._prepare(target, messages, profile, params)
        return Stream(self._walk_stream(request, res))

    chat_stream = stream

    def _prepare(self, target: Any, messages: Any, profile: Optional[str], params: dict) -> tuple:
        unknown = sorted(set(params) - _REQUEST_FIELDS)
        if unknown:
            raise TypeError(f"unknown parameter(s) {', '.join(unknown)}; pass provider-specific fields "
                            "as extra_params={...}")
        if isinstance(target, LLMRequest):
            changes = dict(params)
            if messages is not None:
                changes["messages"] = messages
            request = attrs.evolve(target, **changes) if changes else target
        elif isinstance(target, str):
            request = LLMRequest(model=target, messages=messages if messages is not None else [], **params)
        else:
            raise TypeError(f"chat() takes an alias, a provider:model reference or an LLMRequest, "
                            f"not {type(target).__name__}")
        if not request.model:
            raise ConfigurationError("The request names no model; give an alias such as 'summarizer'.")
        if not request.messages:
            raise ConfigurationError("The request has no messages; pass the prompt, e.g. chat('summarizer', 'Hi').")
        if request.tools:
            from .provider import function_specs

            function_specs(request.tools)  # a malformed tool is the caller's error: say so before any call
        _check_response_format(request.response_format)
        res = self.resolve(request.model, profile)
        if res.binding is not None and res.binding.params:
            request = _with_defaults(request, res.binding.params)
        return request, res

    def _timeout(self, deadline: Optional[float], last: bool) -> Optional[tuple]:
        """(connect, read) seconds for one try. Under a deadline, a model with fallbacks after
        it gets half the time left, so a hanging primary cannot use up the fallbacks' time."""
        if deadline is None:
            return (self.connect_timeout, self.read_timeout)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        share = left if last else left / 2
        from .deadline import TryTimeout

        return TryTimeout(min(self.connect_timeout, share), min(self.read_timeout, share), budget=share)

    def _tries(self, request: LLMRequest, res: Resolution, attempts: list) -> Iterator[tuple]:
        """Yield (ref, provider, model, timeout) for each try of the walk. The caller reports
        each try's failure by sending the ProviderError back (or None on success)."""
        deadline = time.monotonic() + request.timeout if request.timeout else None
        needs = _needs(request)
        if res.binding is not None:  # what the binding promises its callers, checked as well
            needs += [(cap, (cap,)) for cap in res.binding.requires]
        lf = self._loaded()
        refs = res.models
        for i, ref in enumerate(refs):
            lacking = self._lacks(ref, needs, lf)
            if lacking:
                attempts.append(Attempt(ref, "unsupported", skipped=True, message=(
                    f"the model registry says it cannot do {lacking}")))
                continue
            if self.breaker.is_open(ref) and i < len(refs) - 1:
                attempts.append(Attempt(ref, "overloaded", skipped=True, message=(
                    f"it failed {self.breaker.threshold} times in a row; resting for another "
                    f"{self.breaker.remaining(ref):.0f} s")))
                continue
            prefix, _, model = ref.partition(":")
            try:
                provider = self._provider(prefix, lf)
            except ProviderNotFoundError as e:
                attempts.append(Attempt(ref, "not_configured", message=str(e)))
                continue
            retry = 0
            while True:
                timeout = self._timeout(deadline, last=i == len(refs) - 1)
                if timeout is None:
                    attempts.append(Attempt(ref, "timeout", message="the request's deadline passed"))
                    return
                started = time.monotonic()
                error = yield ref, provider, model, timeout
                elapsed = time.monotonic() - started
                if error is None:
                    self.breaker.record(ref, None)
                    attempts.append(Attempt(ref, elapsed=elapsed))
                    return
                attempts.append(Attempt(ref, error.kind, error.status, _one_line(error), elapsed,
                                        retry_after=error.retry_after))
                _log().warning("llmring: %s", attempts[-1].describe())
                self.breaker.record(ref, error.kind)
                if not fails_over(error.kind):
                    return
                delay = self.retry.delay(error.kind, retry, error.retry_after)
                if delay is None or (deadline is not None and time.monotonic() + delay >= deadline):
                    break
                time.sleep(delay)
                retry += 1

    def _walk_chat(self, request: LLMRequest, res: Resolution) -> LLMResponse:
        started = time.monotonic()
        attempts: list = []
        tries = self._tries(request, res, attempts)
        step = next(tries, None)
        while step is not None:
            ref, provider, model, timeout = step
            try:
                response = provider.chat(model, request, timeout)
                response.parsed = _structured(response.content, response.tool_calls, request, provider)
            except ProviderError as e:
                step = _send(tries, e)
                continue
            except Exception as e:  # noqa: BLE001 - a provider bug must not sink the fallbacks
                step = _send(tries, _unexpected(provider, e))
                continue
            _send(tries, None)
            response.model, response.alias, response.profile = ref, res.alias, res.profile
            response.attempts, response.latency = attempts, time.monotonic() - started
            response.cost, response.cost_note = self._cost(ref, response.usage)
            return response
        raise all_failed(res.target, attempts)

    def _walk_stream(self, request: LLMRequest, res: Resolution) -> Generator[StreamChunk, None, None]:
        attempts: list = []
        tries = self._tries(request, res, attempts)
        step = next(tries, None)
        while step is not None:
            ref, provider, model, timeout = step
            chunks = provider.stream(model, request, timeout)
            try:
                first = next(chunks)
            except StopIteration:
                step = _send(tries, provider.error("connection", "the stream ended before its first chunk"))
                continue
            except ProviderError as e:
                chunks.close()
                step = _send(tries, e)
                continue
            except Exception as e:  # noqa: BLE001
                chunks.close()
                step = _send(tries, _unexpected(provider, e))
                continue
            _send(tries, None)
            yield from _relay(first, chunks, ref, res, attempts, self._cost, request, provider)
            return
        raise all_failed(res.target, attempts)

    # -- registry -------------------------------------------------------------------------
    def model_info(self, ref: str) -> Any:
        """What the registry (or the lockfile's [providers.NAME].prices) knows of a model, or None."""
        return self._model_info(ref, self.lockfile)

    def cost(self, ref: str, usage: Any) -> tuple:
        """(USD, None) for `usage` at the model's prices, or (None, the reason)."""
        from . import registry

        return registry.cost(self.model_info(ref), usage)

    def _loaded(self) -> Lockfile:
        # Within a call the file was checked on disk once, when the alias was resolved.
        return self._lockfile if self._lockfile is not None else self.lockfile

    def _model_info(self, ref: str, lf: Lockfile) -> Any:
        prefix, _, model = ref.partition(":")
        endpoint = lf.providers.get(prefix)
        prices = endpoint.options.get("prices", {}).get(model) if endpoint is not None else None
        from . import registry

        if isinstance(prices, dict):
            return registry.ModelInfo(prefix, model, input_price=prices.get("input"),
                                      output_price=prices.get("output"))
        return registry.load().find(ref)

    def _cost(self, ref: str, usage: Any) -> tuple:
        from . import registry

        return registry.cost(self._model_info(ref, self._loaded()), usage)

    def _lacks(self, ref: str, needs: list, lf: Lockfile) -> str:
        if not needs:
            return ""
        info = self._model_info(ref, lf)
        if info is None or not info.capabilities:
            return ""  # unknown models are given the benefit of the doubt
        return next((label for label, any_of in needs if not any(info.has(c) for c in any_of)), "")

    # -- providers ------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The keep-alive HTTP session every provider of this Ring shares."""
        with self._lock:
            if self._session is None:
                from . import __version__
                from .transport import new_session

                s = new_session(self.pool_size)
                s.headers["User-Agent"] = f"llmring/{__version__}"
                self._session = s
            return self._session

    def provider(self, prefix: str) -> Any:
        """The provider for a prefix: an installed plugin or a `[providers.NAME]` endpoint."""
        return self._provider(prefix, self.lockfile)

    def _provider(self, prefix: str, lf: Lockfile) -> Any:
        existing = self._providers.get(prefix)  # dropped whenever the lockfile is re-read
        if existing is not None:
            return existing
        endpoint = lf.providers.get(prefix)
        with self._lock:
            existing = self._providers.get(prefix)
            if existing is not None:
                return existing
            from .plugins import registry
            from .provider import ProviderSettings

            if endpoint is not None:
                try:
                    info = registry.get(endpoint.type)
                except ProviderNotFoundError as e:
                    raise ProviderNotFoundError(f"[providers.{prefix}] in {self._located.path} has type "
                                                f"{endpoint.type!r}, which no installed provider offers. {e}") from None
            else:
                info = registry.get(prefix)
            made = info.factory(ProviderSettings.of(prefix, endpoint, session=self.session))
            self._providers[prefix] = made
            return made

    def _drop_providers(self) -> None:
        for p in self._providers.values():
            p.close()
        self._providers.clear()

    def close(self) -> None:
        """Release connections. The Ring can still be used afterwards (it reconnects)."""
        with self._lock:
            self._drop_providers()
            if self._session is not None:
                self._session.close()
                self._session = None

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ring lockfile={str(self._located.path)!r} ({self._located.source})>"


class Stream:
    """The iterator Ring.stream returns. `close()` ends it; `abort()` may be called from
    another thread and shuts its HTTP response down at once."""

    def __init__(self, chunks: Generator[StreamChunk, None, None]) -> None:
        self._chunks = chunks
        self._responses: list = []
        self._started = False

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> StreamChunk:
        if self._started:  # responses are only opened before the first chunk
            return next(self._chunks)
        token = OPEN_RESPONSES.set(self._responses)
        try:
            chunk = next(self._chunks)
        finally:
            OPEN_RESPONSES.reset(token)
        self._started = True
        return chunk

    def close(self) -> None:
        try:
            self._chunks.close()
        except ValueError:  # running in another thread: cut its connection instead
            self.abort()

    def abort(self) -> None:
        for response in list(self._responses):
            abort(response)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _env_timeout() -> float:
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_READ_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{ENV_TIMEOUT}={raw!r} is not a number of seconds; fix or unset it.") from None
    if value <= 0:
        raise ConfigurationError(f"{ENV_TIMEOUT} must be more than 0 seconds, not {raw}.")
    return value


def _with_defaults(request: LLMRequest, params: dict) -> LLMRequest:
    """A binding's params fill what the request left unset; the caller's values win."""
    changes: dict = {}
    extra = dict(request.extra_params)
    for key, value in params.items():
        if key == "extra_params" and isinstance(value, dict):
            for k, v in value.items():
                extra.setdefault(k, v)
        elif key in _REQUEST_FIELDS:
            if getattr(request, key) is None:
                changes[key] = value
        else:
            extra.setdefault(key, value)
    if extra != request.extra_params:
        changes["extra_params"] = extra
    return attrs.evolve(request, **changes) if changes else request


def _needs(request: LLMRequest) -> list:
    """(what, capabilities any one of which will do) for each capability the request needs."""
    needs: list = []
    if request.tools and request.tool_choice != "none":
        needs.append(("tools", ("tools",)))
    kind = (request.response_format or {}).get("type")
    if kind in ("json_schema", "json_object"):
        # Without native schemas, JSON mode or a forced tool call still gives checked JSON.
        needs.append(("structured output", ("json_schema", "json_mode", "tools")))
    if any(isinstance(m.content, list) and any(isinstance(p, dict) and p.get("type") in ("image_url", "image")
                                               for p in m.content) for m in request.messages):
        needs.append(("images", ("vision",)))
    return needs


def _send(tries: Any, error: Optional[ProviderError]) -> Optional[tuple]:
    try:
        return tries.send(error)
    except StopIteration:
        return None


def _unexpected(provider: Any, exc: Exception) -> ProviderError:
    # A bug in a provider (ours or a plugin's) repeats: retrying would pay for the same paid
    # call again. Fail over instead, and say what broke.
    return provider.error("invalid_output", f"failed unexpectedly ({type(exc).__name__}: {exc}); "
                                            "please report this to the provider plugin's authors")


def _log() -> Any:
    import logging  # only on the failure path: start-up does not pay for it

    logger = logging.getLogger("llmring")
    if not logger.handlers:  # a library prints nothing unless the application configures logging
        logger.addHandler(logging.NullHandler())
    return logger


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:500]


def _check_response_format(fmt: Any) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise ConfigurationError(f"response_format type must be text, json_object or json_schema, not {kind!r}; "
                                 'e.g. {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}.')
    if kind == "json_schema" and not isinstance((fmt.get("json_schema") or {}).get("schema"), dict):
        raise ConfigurationError('A json_schema response_format needs {"json_schema": {"name": ..., '
                                 '"schema": {...}}}; the schema is missing.')


def _structured(text: str, tool_calls: Any, request: LLMRequest, provider: Any) -> Any:
    """The parsed answer when structured output was asked for (None otherwise); an answer
    that does not parse or match the schema is a failure of the model ("invalid_output")."""
    fmt = request.response_format
    if not fmt or fmt.get("type") not in ("json_object", "json_schema") or tool_calls:
        return None
    from .schema import parse_structured

    try:
        return parse_structured(text, fmt)
    except ValueError as e:
        raise provider.error("invalid_output", str(e)) from None


def _relay(first: StreamChunk, chunks: Generator, ref: str, res: Resolution, attempts: list,
           price: Any, request: LLMRequest, provider: Any) -> Iterator:
    """Pass a stream's chunks on; label the final one (and parse structured output there); a
    failure after the first chunk cannot fail over, so it raises with the text received so far."""
    received: list = []
    chunk = first
    try:
        while True:
            received.append(chunk.delta)
            if chunk.finish_reason is not None or chunk.usage is not None:
                chunk.model, chunk.alias, chunk.attempts = ref, res.alias, attempts
                chunk.cost = price(ref, chunk.usage)[0]
            if chunk.finish_reason is not None:
                chunk.parsed = _structured("".join(received), chunk.tool_calls, request, provider)
            yield chunk
            try:
                chunk = next(chunks)
            except StopIteration:
                return
    except ProviderError as e:
        partial = "".join(received)
        raise StreamInterruptedError(f"{ref} stopped mid-stream after {len(partial)} characters: {e}",
                                     partial=partial, provider=e.provider, model=ref, status=e.status,
                                     kind=e.kind) from e
    finally:
        chunks.close()
