"""Ring: the synchronous client, a facade over the pieces that do the work.

How `ring.chat("summarizer", "Hi")` flows:
  prepare.build        checks the caller's values (BadRequestError before any network call)
  resolve.Resolver     alias -> profile -> binding -> ordered models, from store.LockfileStore
  prepare.with_defaults / needs   the binding's params and the capabilities the request needs
  walker.Walker.walk   tries each model (retries, failover, deadline, limits, circuit breaker in
                       state.py); it asks this Ring for each model's registry facts (`_known`)
                       and its provider (`_provider_for_call` -> pool.ProviderPool -> plugins);
                       one try is the `answer` closure in `chat`: provider.chat, the provider's
                       HTTP round trip (provider.Provider, transport), then answer.structured
  answer               cost (never losing the answer to bookkeeping); observe tells the sinks
Streams take the same path; stream.open_stream is their one try and stream.relay the rest.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from . import budget, observe, prepare
from .answer import cost as _price
from .answer import known, structured
from .exceptions import AliasNotFoundError, AllModelsFailedError, ConfigurationError, StreamInterruptedError
from .failover import CircuitBreaker, RetryPolicy
from .limits import estimate
from .pool import ProviderPool
from .stream import Stream, open_stream, past_first_chunk, relay
from .types import LLMRequest, LLMResponse, StreamChunk
from .walker import Outcome, Walker

if TYPE_CHECKING:  # the lockfile machinery loads when a Ring is made, not at `import llmring`
    from .lockfile import Binding, Lockfile, PathLike
    from .resolve import Resolution

__all__ = ["Ring", "Stream"]

ENV_TIMEOUT = "LLMRING_PROVIDER_TIMEOUT_S"
DEFAULT_READ_TIMEOUT = 120.0  # long generations legitimately take a minute or more
DEFAULT_CONNECT_TIMEOUT = 10.0

# Where a Ring keeps its map threads (batch.workers makes them on first use).
MAP_WORKERS = "_map_workers"

# The Rings and AsyncRings of this process, for the fork hook below; weak, so a Ring that is
# gone is not kept alive, and a process without Rings pays nothing at fork.
_LIVE: weakref.WeakSet = weakref.WeakSet()


def _weak(method: Callable) -> Callable:
    """A Ring's `method` for one of its parts to call back, without keeping the Ring alive: a
    strong reference would put every Ring in a cycle, so a Ring dropped without close() would
    keep its sockets open until a garbage collection. A part calls back only while the Ring
    works (its call holds the Ring), so the Ring is there."""
    ref = weakref.WeakMethod(method)
    return lambda *args: ref()(*args)


def _in_child_after_fork() -> None:
    for owner in list(_LIVE):
        owner._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child_after_fork)


class Ring:
    """The synchronous client. Thread-safe: one Ring can serve many threads.

    `lockfile_path` must exist when given; otherwise LLMRING_LOCKFILE_PATH, then the
    llmring.lock inside `package` (an installed package's import name: a library's own
    lockfile, read even from a wheel or a zip; never edited), then ./llmring.lock, then the
    bundled lockfile. `timeout` is the read timeout of one try
    (default LLMRING_PROVIDER_TIMEOUT_S or 120 s); a request's own `timeout` is a deadline
    for the whole call, retries and fallbacks included. `state_url` (else LLMRING_STATE_URL),
    e.g. "redis://host:6379/0", shares limits and the circuit breaker with every process using
    that Redis; unset, they are this process's own.
    """

    def __init__(self, lockfile_path: Optional[PathLike] = None, *, profile: Optional[str] = None,
                 timeout: Optional[float] = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 retry: Optional[RetryPolicy] = None, breaker: Optional[CircuitBreaker] = None,
                 pool_size: int = 64, state_url: Optional[str] = None, package: Optional[str] = None) -> None:
        from .resolve import Resolver
        from .state_select import state_for
        from .store import LockfileStore

        self.store = store = LockfileStore(lockfile_path, on_change=_weak(self._lockfile_changed), package=package)
        self.resolver = Resolver(self.store, profile)
        self.providers = ProviderPool(pool_size)
        self.walker = Walker(_weak(self._provider_for_call), _weak(self._known), retry=retry or RetryPolicy(),
                             breaker=breaker or CircuitBreaker(state=state_for(state_url)),
                             connect_timeout=_seconds("connect_timeout", connect_timeout),
                             read_timeout=_env_timeout() if timeout is None else _seconds("timeout", timeout),
                             limits=lambda: store.loaded().limits)
        self.budgets = budget.Budgets(self.walker.breaker.state)  # spend per alias, in the same state
        _LIVE.add(self)

    def _lockfile_changed(self) -> None:
        self.resolver.clear()
        self.providers.drop()

    # -- settings, as attributes ----------------------------------------------------------
    @property
    def profile(self) -> Optional[str]:
        """The Ring's profile (None: $LLMRING_PROFILE, else the lockfile's default_profile)."""
        return self.resolver.profile

    @profile.setter
    def profile(self, name: Optional[str]) -> None:
        self.resolver.profile = name

    @property
    def retry(self) -> RetryPolicy:
        return self.walker.retry

    @property
    def breaker(self) -> CircuitBreaker:
        return self.walker.breaker

    # -- lockfile and aliases -------------------------------------------------------------
    @property
    def lockfile_path(self) -> Any:
        return self.store.path

    @property
    def lockfile_source(self) -> str:
        """How the lockfile was found: explicit, env, cwd or bundled."""
        return self.store.source

    @property
    def lockfile(self) -> Lockfile:
        """The parsed lockfile, re-read when the file changed on disk."""
        return self.store.current()

    def clear_alias_cache(self) -> None:
        """Forget resolved aliases (they are also dropped when the file changes on disk)."""
        self.store.forget()

    def active_profile(self, profile: Optional[str] = None) -> str:
        """The profile a call would use: `profile`, else the Ring's, else $LLMRING_PROFILE,
        else the lockfile's default_profile."""
        return self.resolver.profile_name(self.lockfile, profile)

    def resolve(self, target: str, profile: Optional[str] = None) -> Resolution:
        """The models `target` (an alias or a provider:model reference) leads to."""
        return self.resolver.resolve(target, profile)

    def resolve_alias(self, alias: str, profile: Optional[str] = None) -> str:
        """The first (primary) model an alias leads to, e.g. "openai:gpt-4o-mini"."""
        return self.resolve(alias, profile).models[0]

    def list_aliases(self, profile: Optional[str] = None) -> dict:
        """alias -> primary model, for the profile (with aliases it inherits from the default profile)."""
        return self.resolver.list_aliases(profile)

    def has_alias(self, alias: str, profile: Optional[str] = None) -> bool:
        """Whether the alias resolves; never raises."""
        return self.resolver.has_alias(alias, profile)

    def require_aliases(self, aliases: list, context: Optional[str] = None, profile: Optional[str] = None) -> None:
        """Raise MissingAliasesError (a ValueError) naming every alias the lockfile lacks."""
        self.resolver.require_aliases(aliases, context, profile)

    def explain(self, alias: str, profile: Optional[str] = None) -> Any:
        """Why `alias` calls what it calls: an explain.Explanation of its binding (and the
        profile it came from) and each model's provider, key, registry data, pin, limits and
        the kinds of request that would skip it. AliasNotFoundError when it is not bound."""
        from .explain import explain

        return explain(self, alias, profile)

    def bind_alias(self, alias: str, models: Union[str, list], profile: Optional[str] = None, *,
                   description: Optional[str] = None, params: Optional[dict] = None,
                   requires: Optional[list] = None) -> Binding:
        """Bind an alias to one model, a list, or "a:b,c:d" (primary first), in the profile
        (created if new). Writes the lockfile atomically."""
        refs = _checked_refs(alias, models)

        def change(lf: Lockfile) -> Binding:
            p = lf.profile(self.resolver.profile_name(lf, profile), create=True)
            return p.rebind(alias, refs, description, params, requires)

        return self.store.edit(change, create=True)

    def unbind_alias(self, alias: str, profile: Optional[str] = None) -> None:
        """Remove an alias from the profile; AliasNotFoundError if it is not bound there."""

        def change(lf: Lockfile) -> None:
            name = self.resolver.profile_name(lf, profile)
            if not lf.profile(name).unbind(alias):
                raise AliasNotFoundError(f"Alias {alias!r} is not bound in profile {name!r} of "
                                         f"{self.store.edit_path()}; nothing was changed.")

        self.store.edit(change, create=False)

    def pin(self, profile: Optional[str] = None) -> list:
        """Pin every binding of `profile` (every profile when None) to what the registry in use
        says now (llmring/pins.py); returns the (profile, alias) pairs whose pin changed."""
        from . import pins, registry

        reg = registry.load()
        return self.store.edit(lambda lf: pins.pin(lf, reg, profile), create=False)

    def drift(self, profile: Optional[str] = None) -> list:
        """What no longer matches the pins of `profile` (every profile when None), as
        pins.Drift items (what `llmring lock validate --frozen` prints); empty when all match."""
        from . import pins, registry

        return pins.drift(self.lockfile, registry.load(), profile)

    def init_lockfile(self, force: bool = False, path: Optional[PathLike] = None) -> Any:
        """Write a new lockfile: at `path`, else at the file this Ring was given (lockfile_path
        or $LLMRING_LOCKFILE_PATH), else ./llmring.lock. Refuses to overwrite unless `force`."""
        return self.store.init(force, path)

    # -- chatting -------------------------------------------------------------------------
    def chat(self, target: Union[str, LLMRequest], messages: Any = None, *,
             profile: Optional[str] = None, **params: Any) -> LLMResponse:
        """Ask an alias (or provider:model). The first model that answers wins; the response
        says which, and what happened on the way (`attempts`).

        Args:
            target: An alias, a `provider:model` reference, or an `LLMRequest` (then the
                keyword arguments override its fields).
            messages: A str (one user message), or a list of `Message`s or dicts.
            profile: The lockfile profile (default: the Ring's, `$LLMRING_PROFILE`, the
                file's `default_profile`).
            **params: `LLMRequest` fields: `temperature`, `max_tokens`, `stop`, `tools`,
                `tool_choice`, `response_format`, `extra_params`, `timeout`. Any other
                keyword is a `TypeError`.

        Raises:
            AliasNotFoundError: The alias is bound neither in the profile nor the default one.
            BadRequestError: The request itself is wrong; raised before any network call.
            AllModelsFailedError: No model answered; it lists every attempt.
        """
        begun = (time.time(), time.monotonic())
        request, res = self._prepare(target, messages, profile, params)

        def answer(provider: Any, model: str, timeout: Any) -> LLMResponse:
            response = provider.chat(model, request, timeout)
            response.parsed = structured(response.content, response.tool_calls, request, provider)
            return response

        done = self._walk(request, res, answer, begun)
        response = done.result
        response.model, response.alias, response.profile = done.ref, res.alias, res.profile
        response.attempts, response.latency = done.attempts, time.monotonic() - begun[1]
        response.cost, response.cost_note = _price(done.known, response.usage)
        self._answered(begun[0], response.latency, res, stream=False, model=done.ref, attempts=done.attempts,
                       usage=response.usage, cost=response.cost, cost_note=response.cost_note,
                       finish_reason=response.finish_reason, request=request, answer=response.content)
        return response

    def stream(self, target: Union[str, LLMRequest], messages: Any = None, *,
               profile: Optional[str] = None, **params: Any) -> Stream:
        """Like `chat`, yielding `StreamChunk`s as they arrive. The call fails over only
        before the first chunk; a break after it raises `StreamInterruptedError`."""
        request, res = self._prepare(target, messages, profile, params)

        def chunks() -> Any:
            begun = (time.time(), time.monotonic())
            done = self._walk(request, res, lambda p, model, timeout: open_stream(p, model, request, timeout),
                              begun, hold=True)
            first, rest = done.result
            first_chunk = time.monotonic() - begun[1]
            past_first_chunk(done.left)
            final: list = []  # the chunks that carried the finish reason or the usage
            texts: Optional[list] = [] if observe.keep_text() else None
            broke = None

            def label(chunk: StreamChunk) -> None:
                chunk.model, chunk.alias, chunk.attempts = done.ref, res.alias, done.attempts
                chunk.cost = _price(done.known, chunk.usage)[0]
                final.append(chunk)

            try:
                for chunk in relay(first, rest, done.ref, request, done.provider, label):
                    if texts is not None:
                        texts.append(chunk.delta)
                    yield chunk
            except StreamInterruptedError as e:
                broke = e.kind
                raise
            finally:  # ended, failed or closed: its room under the limits is free again
                usage = next((c.usage for c in reversed(final) if c.usage is not None), None)
                done.hold.release(usage.total_tokens if usage is not None else None)
                cost, note = _price(done.known, usage)
                self._answered(
                    begun[0], time.monotonic() - begun[1], res, stream=True, model=done.ref,
                    attempts=done.attempts, usage=usage, cost=cost, cost_note=note,
                    finish_reason=next((c.finish_reason for c in final if c.finish_reason), None),
                    first_chunk=first_chunk, error_kind=broke, request=request,
                    answer="".join(texts) if texts is not None else None)

        return Stream(chunks())

    chat_stream = stream

    def map(self, target: str, inputs: Iterable, *, concurrency: int = 16, profile: Optional[str] = None,
            **params: Any) -> Iterator[Any]:
        """chat() over many inputs at once, `concurrency` calls in flight: yields, in input order,
        each item's LLMResponse or its exception (one failure never ends the batch). An input is
        a prompt, a list of messages, a dict of chat() parameters or an LLMRequest; `params`
        apply to every item. Reads `inputs` lazily; leaving the loop stops the calls."""
        from . import batch

        concurrency = batch.check_concurrency(concurrency)
        return batch.run(batch.call_for(self, target, profile, params), inputs, concurrency,
                         workers=batch.workers(self))

    def _prepare(self, target: Any, messages: Any, profile: Optional[str], params: dict) -> tuple:
        request = prepare.build(target, messages, params)
        res = self.resolve(request.model, profile)
        if res.binding is not None and res.binding.params:
            request = prepare.with_defaults(request, res.binding.params, res.alias, res.lockfile)
        return request, res

    def _walk(self, request: LLMRequest, res: Resolution, call: Any, begun: tuple, hold: bool = False) -> Outcome:
        """The failover walk; a walk that no model answered is recorded for the observers."""
        requires = res.binding.requires if res.binding is not None else ()
        tokens = estimate(request) if self.store.loaded().limits else 0
        try:
            return self.walker.walk(res.target, res.models, prepare.needs(request, requires), request.timeout,
                                    call, tokens, hold, budget.gate(self.budgets, res), res.written_as)
        except AllModelsFailedError as e:
            observe.call_finished(begun[0], time.monotonic() - begun[1], res, stream=hold,
                                  attempts=e.attempts, error_kind=e.kind, request=request)
            raise

    def _answered(self, started_at: float, elapsed: float, res: Resolution, *, cost: Optional[float],
                  **record: Any) -> None:
        """A call a model answered: its cost counts against the alias's budget, then the
        observers hear of it (budget first: the usage log, which seeds budgets, never has a
        call the budget counted already)."""
        budget.charge(self.budgets, res, cost)
        observe.call_finished(started_at, elapsed, res, cost=cost, **record)

    # -- registry -------------------------------------------------------------------------
    def model_info(self, ref: str) -> Any:
        """What the registry (or the lockfile's [providers.NAME].prices) knows of a model, or None."""
        from .answer import model_info

        return model_info(self.lockfile, ref)

    def cost(self, ref: str, usage: Any) -> tuple:
        """(USD, None) for `usage` at the model's prices, or (None, the reason)."""
        return _price(known(self.lockfile, ref), usage)

    def _known(self, ref: str) -> tuple:
        # Within a call the file was checked on disk once, when the alias was resolved.
        return known(self.store.loaded(), ref)

    # -- providers ------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The keep-alive HTTP session every provider of this Ring shares."""
        return self.providers.session

    def provider(self, prefix: str) -> Any:
        """The provider for a prefix: an installed plugin or a `[providers.NAME]` endpoint."""
        return self.providers.get(prefix, self.lockfile)

    def _provider_for_call(self, prefix: str) -> Any:
        return self.providers.get(prefix, self.store.loaded())

    def close(self) -> None:
        """Release connections and write what the usage log holds. The Ring can still be used
        afterwards (it reconnects)."""
        workers = self.__dict__.pop(MAP_WORKERS, None)  # batch.py's map threads: idle ones exit
        if workers is not None:
            workers.close()
        self.providers.close()
        observe.flush()

    # -- other processes ------------------------------------------------------------------
    def _options(self) -> dict:
        """The constructor arguments that make this Ring again in another process (pickle):
        settings only, never a connection, thread, lock, key or what the breaker counted. The
        state travels inside the breaker: a shared one (state_url) as its URL, the in-process
        one empty. A new constructor argument is added here too."""
        return {"profile": self.profile, "timeout": self.walker.read_timeout,
                "connect_timeout": self.walker.connect_timeout, "retry": self.retry,
                "breaker": self.breaker, "pool_size": self.providers.pool_size, "package": self.store.package}

    def __reduce__(self) -> tuple:
        identity = self.__dict__.setdefault("_identity", os.urandom(8).hex())
        return _rebuilt, (*self._settings(), identity)

    def _settings(self) -> tuple:
        # The lockfile as found here: an absolute path, or "the bundled one" / "the package's"
        # (whose path is where it is installed, which differs from machine to machine).
        source = self.store.source
        path = None if source in ("bundled", "package") else os.path.abspath(self.store.path)
        return type(self), path, source, self._options()

    def _forked(self) -> None:
        # In a child process after fork (gunicorn, Celery prefork, multiprocessing): the
        # parent's connections, threads and locks are not this process's; make them anew.
        self.store.forked()
        self.resolver.forked()
        self.providers.forked()
        self.breaker.state.forked()
        self.__dict__.pop(MAP_WORKERS, None)  # the parent's map threads do not exist here

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ring lockfile={str(self.store.path)!r} ({self.store.source})>"


# This process's copies of Rings pickled elsewhere, by the identity of the Ring pickled: the
# tasks a worker receives, each with its own pickle of one Ring, share one copy (and its
# connections). A few, newest last: a worker may serve many clients over its life.
_COPIES: dict = {}
_MAX_COPIES = 16


def _rebuilt(cls: type, path: Optional[str], source: str, options: dict, identity: str) -> Ring:
    """A pickled Ring, made again from its lockfile and settings; the copy this process
    already has of that Ring, unless one of them changed since."""
    import pickle

    settings = pickle.dumps((cls, path, source, options))
    ring = _COPIES.get(identity)
    if ring is not None and pickle.dumps(ring._settings()) == settings:
        return ring
    from .lockfile import BUNDLED

    ring = cls(BUNDLED if path is None and source == "bundled" else path, **options)
    ring.store.found_as(source)
    ring._identity = identity
    _COPIES.pop(identity, None)
    _COPIES[identity] = ring
    while len(_COPIES) > _MAX_COPIES:
        _COPIES.pop(next(iter(_COPIES)), None)
    return ring


def _checked_refs(alias: str, models: Union[str, list]) -> list:
    """The models to bind, each checked; ConfigurationError saying what to fix."""
    from .refs import alias_problem, ref_problem, split_refs

    problem = alias_problem(alias)
    refs = split_refs(models)
    if not problem and not refs:
        problem = "give at least one model, e.g. openai:gpt-4o-mini"
    problem = problem or next(filter(None, map(ref_problem, refs)), None)
    twice = sorted({r for r in refs if refs.count(r) > 1})
    if not problem and twice:
        problem = f"give each model once: {', '.join(twice)} appears more than once"
    if problem:
        raise ConfigurationError(problem[0].upper() + problem[1:] + ".")
    return refs


def _seconds(name: str, value: Any) -> float:
    problem = prepare.seconds_problem(name, value)
    if problem:
        raise ConfigurationError(f"Ring({problem}).")
    return float(value)


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
