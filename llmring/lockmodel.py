"""The lockfile as data: Lockfile > Profile > Binding, and Endpoint for [providers.NAME].

Nothing here reads or writes text (lockread / lockwrite do); `to_toml` and `from_toml` are
conveniences that call them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, MutableSequence
from pathlib import Path
from typing import Any, Optional, Union

import attrs

from .exceptions import LockfileError
from .state import Limit

FORMAT_VERSION = "1.0"

PathLike = Union[str, "os.PathLike[str]"]


@attrs.frozen
class ModelPin:
    """What the registry said of one bound model when it was pinned: the dated snapshot it
    stood for (None: the registry knew none, so the id is called as written), its prices in
    USD per million tokens and its context window (None where the registry had none)."""

    model: str
    snapshot: Optional[str] = None
    input: Optional[float] = None
    output: Optional[float] = None
    context_window: Optional[int] = None


@attrs.frozen
class Pin:
    """A binding's pin (`llmring lock pin`): the hash of the binding it was made for, the
    registry version it read, when, and one ModelPin per model (llmring/pins.py)."""

    hash: str
    registry: str
    pinned_at: str
    models: list = attrs.field(factory=list)

    def snapshot(self, model: str) -> Optional[str]:
        """The snapshot pinned for `model`, or None."""
        return next((m.snapshot for m in self.models if m.model == model), None)


@attrs.frozen
class Budget:
    """`budget = { usd_per_day = 5.0, usd_per_month = 100.0 }`: the USD an alias may spend per
    UTC day and per UTC calendar month (None: no budget for that period). See budget.py."""

    usd_per_day: Optional[float] = None
    usd_per_month: Optional[float] = None


BUDGET_KEYS = ("usd_per_day", "usd_per_month")


@attrs.frozen
class Binding:
    """One alias and its models. A value: an edit replaces a binding (attrs.evolve, or
    Profile.rebind) rather than changing it, since a profile indexes its bindings by alias."""

    alias: str
    models: list
    description: Optional[str] = None
    params: dict = attrs.field(factory=dict)
    requires: list = attrs.field(factory=list)
    pin: Optional[Pin] = None
    budget: Optional[Budget] = None


class Bindings(MutableSequence):
    """A profile's bindings in file order, indexed by alias. Every change goes through this
    class, so the index is never stale, and an alias can be bound only once."""

    def __init__(self, items: Iterable[Binding] = ()) -> None:
        self._items: list = list(items)
        self._reindex()

    def _reindex(self) -> None:
        self._index = {b.alias: i for i, b in enumerate(self._items)}
        if len(self._index) != len(self._items):
            seen: set = set()
            twice = next(b.alias for b in self._items if b.alias in seen or seen.add(b.alias))
            raise ValueError(f"alias {twice!r} is bound twice; a profile binds each alias once")

    def position(self, alias: str) -> Optional[int]:
        return self._index.get(alias)

    def get(self, alias: str) -> Optional[Binding]:
        i = self._index.get(alias)
        return None if i is None else self._items[i]

    def __getitem__(self, i: Any) -> Any:
        return self._items[i]

    def __setitem__(self, i: Any, value: Any) -> None:
        if isinstance(i, slice):
            old = self._items[:]
            self._items[i] = value
            self._checked_reindex(old)
            return
        old_alias = self._items[i].alias
        if value.alias != old_alias and value.alias in self._index:
            raise ValueError(f"alias {value.alias!r} is already bound in this profile")
        self._items[i] = value
        del self._index[old_alias]
        self._index[value.alias] = i if i >= 0 else len(self._items) + i

    def __delitem__(self, i: Any) -> None:
        del self._items[i]
        self._reindex()

    def insert(self, i: int, value: Binding) -> None:
        if value.alias in self._index:
            raise ValueError(f"alias {value.alias!r} is already bound in this profile")
        at_end = i >= len(self._items)
        self._items.insert(i, value)
        if at_end:
            self._index[value.alias] = len(self._items) - 1
        else:
            self._reindex()

    # Whole-list operations, done at once: MutableSequence's step-by-step versions pass
    # through states with an alias twice (reverse) or reindex at every step (clear).
    def reverse(self) -> None:
        self._items.reverse()
        self._reindex()

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        self._items.sort(key=key, reverse=reverse)
        self._reindex()

    def clear(self) -> None:
        self._items.clear()
        self._index.clear()

    def _checked_reindex(self, old: list) -> None:
        try:
            self._reindex()
        except ValueError:
            self._items = old
            self._reindex()
            raise

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Binding]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Bindings):
            return self._items == other._items
        return isinstance(other, list) and self._items == other

    def __repr__(self) -> str:
        return repr(self._items)


def _bindings(value: Iterable[Binding]) -> Bindings:
    return value if isinstance(value, Bindings) else Bindings(value)


@attrs.define
class Profile:
    name: str
    bindings: Bindings = attrs.field(factory=Bindings, converter=_bindings)
    registry_versions: dict = attrs.field(factory=dict)
    extends: Optional[str] = None  # the profile this one inherits bindings from

    def get(self, alias: str) -> Optional[Binding]:
        return self.bindings.get(alias)

    def bind(self, binding: Binding) -> None:
        """Replace the alias's binding in place (keeping its position) or append it."""
        i = self.bindings.position(binding.alias)
        if i is None:
            self.bindings.append(binding)
        else:
            self.bindings[i] = binding

    def rebind(self, alias: str, models: list, description: Optional[str] = None,
               params: Optional[dict] = None, requires: Optional[list] = None) -> Binding:
        """Bind `alias` to `models`; a description, params or requires not given are kept
        from the alias's old binding, and so are its budget and its pin, stale or not: `lock validate
        --frozen` then says the binding changed since it was pinned, until it is pinned again."""
        old = self.get(alias)
        binding = Binding(alias, list(models),
                          description if description is not None else (old.description if old else None),
                          params if params is not None else (dict(old.params) if old else {}),
                          requires if requires is not None else (list(old.requires) if old else []),
                          old.pin if old else None, old.budget if old else None)
        self.bind(binding)
        return binding

    def unbind(self, alias: str) -> bool:
        i = self.bindings.position(alias)
        if i is None:
            return False
        del self.bindings[i]
        return True


@attrs.define
class Endpoint:
    """`[providers.NAME]`: an OpenAI-compatible (or other registered type) endpoint."""

    type: str
    base_url: Optional[str] = None
    api_key_env: Optional[str] = None
    options: dict = attrs.field(factory=dict)  # further keys, passed to the provider


@attrs.define
class Lockfile:
    version: str = FORMAT_VERSION
    default_profile: str = "default"
    profiles: dict = attrs.field(factory=dict)
    providers: dict = attrs.field(factory=dict)
    metadata: dict = attrs.field(factory=dict)
    limits: dict = attrs.field(factory=dict)  # "openai" or "openai:gpt-4o" -> state.Limit
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    path: Optional[Path] = attrs.field(default=None, eq=False)

    @classmethod
    def new(cls, path: Optional[Path] = None) -> Lockfile:
        now = now_stamp()
        return cls(profiles={"default": Profile("default")}, created_at=now, updated_at=now, path=path)

    def profile(self, name: str, create: bool = False) -> Profile:
        if name not in self.profiles:
            if not create:
                names = ", ".join(sorted(self.profiles)) or "none"
                if name == self.default_profile and self.profiles:  # e.g. only [profiles.us-west]
                    raise LockfileError(
                        f"has no default profile (no [profiles.{name}] and no default_profile); choose one of "
                        f"{names} with --profile or LLMRING_PROFILE, or add default_profile = "
                        f"\"{min(self.profiles)}\" at its top", path=as_str(self.path))
                raise LockfileError(f"profile {name!r} is not in the lockfile; its profiles are {names} "
                                    "(check --profile or LLMRING_PROFILE)", path=as_str(self.path))
            self.profiles[name] = Profile(name)
        return self.profiles[name]

    def chain(self, profile: str) -> list:
        """The profiles an alias is looked up in, in order: `profile`, the profiles it extends
        (reading refused cycles and unknown parents), then the default profile."""
        names = [profile]
        p = self.profiles.get(profile)
        while p is not None and p.extends is not None and p.extends not in names:
            names.append(p.extends)
            p = self.profiles.get(p.extends)
        if self.default_profile not in names:
            names.append(self.default_profile)
        return names

    def lookups(self, profile: str) -> list:
        """(profile name, its Bindings) along `chain(profile)`, for the profiles that exist."""
        return [(name, self.profiles[name].bindings) for name in self.chain(profile) if name in self.profiles]

    def find(self, alias: str, profile: str) -> Optional[tuple]:
        """(binding, profile name it came from), looking along `chain(profile)`."""
        return find_in(self.lookups(profile), alias)

    def view(self, profile: str) -> dict:
        """alias -> (binding, profile it came from): what `profile` resolves, inherited
        aliases included (the default profile's first, then each nearer profile's)."""
        out: dict = {}
        for name in reversed(self.chain(profile)):
            p = self.profiles.get(name)
            for b in p.bindings if p else ():
                out[b.alias] = (b, name)
        return out

    def to_toml(self) -> str:
        from .lockwrite import dumps

        return dumps(self)

    def to_dict(self) -> dict:
        """The lockfile as plain data (for --json output and tools), via cattrs."""
        return converter().unstructure(self)

    @classmethod
    def from_toml(cls, text: str, path: Optional[PathLike] = None) -> Lockfile:
        from .lockread import parse

        return parse(text, path)

    @classmethod
    def from_dict(cls, data: dict, path: Optional[PathLike] = None) -> Lockfile:
        """Validate plain data (as to_dict gives, or TOML parsed elsewhere) into a Lockfile."""
        from .lockread import validate

        return validate(data, path)


def find_in(lookups: list, alias: str) -> Optional[tuple]:
    """(binding, profile name) of the first of `lookups` (as Lockfile.lookups gives) binding `alias`."""
    for name, bindings in lookups:
        b = bindings.get(alias)
        if b is not None:
            return b, name
    return None


def converter() -> Any:
    """A cattrs converter for the lockfile model. Reading does not use it: the validator
    reports problems by line and key, which structuring errors cannot."""
    import cattrs
    from cattrs.gen import make_dict_unstructure_fn, override

    conv = cattrs.Converter()
    conv.register_unstructure_hook(Lockfile, make_dict_unstructure_fn(
        Lockfile, conv, path=override(omit=True), _cattrs_omit_if_default=False))
    conv.register_unstructure_hook(Bindings, lambda bs: [conv.unstructure(b) for b in bs])
    conv.register_unstructure_hook(Limit, limit_dict)
    conv.register_unstructure_hook(Budget, budget_dict)
    return conv


def limit_dict(limit: Limit) -> dict:
    """A limit's keys that are set, as its [limits.KEY] table holds them."""
    return {k: getattr(limit, k) for k in LIMIT_KEYS if getattr(limit, k) is not None}


LIMIT_KEYS = ("rpm", "tpm", "concurrency")


def budget_dict(budget: Budget) -> dict:
    """A budget's keys that are set, as its `budget = { ... }` table holds them."""
    return {k: getattr(budget, k) for k in BUDGET_KEYS if getattr(budget, k) is not None}


def now_stamp() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def as_str(path: Optional[PathLike]) -> Optional[str]:
    return os.fspath(path) if path is not None else None
