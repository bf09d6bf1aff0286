"""Resolution: which models an alias leads to, through the chosen profile of the lockfile.

Profile: explicit `profile=` > the Ring's > $LLMRING_PROFILE > the file's default_profile. An
alias missing from the chosen profile is looked up in the profiles it extends, then in the
default profile (Lockfile.chain). A pinned binding resolves to its pinned snapshots
(pins.called_models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from . import lockfile as lf_mod
from .exceptions import AliasNotFoundError, ConfigurationError, MissingAliasesError
from .lockfile import Lockfile
from .lockmodel import find_in
from .pins import called_models, written_as
from .refs import alias_problem, is_ref, ref_problem
from .store import LockfileStore


class Resolution:
    """Where a target leads: its models in order (primary first), and the alias, profile,
    binding and lockfile that said so (None for a direct provider:model reference).
    `profile` is the profile the binding came from (its origin); `chain` the profiles looked
    through, the one asked for first (() for a direct reference)."""

    __slots__ = ("target", "models", "profile", "alias", "binding", "lockfile", "chain")

    def __init__(self, target: str, models: list, profile: Optional[str] = None, alias: Optional[str] = None,
                 binding: Any = None, lockfile: Optional[Path] = None, chain: tuple = ()) -> None:
        self.target, self.models, self.profile, self.alias = target, models, profile, alias
        self.binding, self.lockfile, self.chain = binding, lockfile, chain

    @property
    def written_as(self) -> dict:
        """Each pinned snapshot this leads to -> the model id the binding names."""
        return written_as(self.binding)

    @property
    def inherited(self) -> bool:
        """Whether the binding came from a profile other than the one asked for."""
        return bool(self.chain) and self.profile != self.chain[0]

    def __repr__(self) -> str:
        return f"Resolution({self.target!r} -> {self.models!r}, profile={self.profile!r})"


class Resolver:
    """Resolves targets against a store's lockfile. Results are remembered per lockfile object:
    when the store reads the file again, what was resolved from the old one is never served
    (no lock needed: a thread that resolved from the old file files its answer under it)."""

    def __init__(self, store: LockfileStore, profile: Optional[str] = None) -> None:
        self.store, self.profile = store, profile
        self._memo: tuple = (None, {})  # (lockfile, {profile: ({target: Resolution}, chain)})

    def clear(self) -> None:
        self._memo = (None, {})

    def forked(self) -> None:
        """In a child process after fork: nothing is shared with the parent's resolutions."""
        self.clear()

    def profile_name(self, lf: Lockfile, profile: Optional[str] = None) -> str:
        return lf_mod.choose_profile(lf, profile or self.profile)

    def resolve(self, target: str, profile: Optional[str] = None) -> Resolution:
        """The models `target` (an alias or a provider:model reference) leads to."""
        if is_ref(target):
            problem = ref_problem(target)
            if problem:
                raise ConfigurationError(problem[0].upper() + problem[1:] + ".")
            return Resolution(target, [target.strip()])
        lf = self.store.current()
        name = profile or self.profile or self.profile_name(lf)
        seen, memo = self._memo
        if seen is not lf:
            memo = {}
            self._memo = (lf, memo)
        per_profile = memo.get(name)
        if per_profile is None:
            _exists(lf, name)
            per_profile = memo[name] = ({}, tuple(lf.chain(name)), lf.lookups(name))
        known, chain, lookups = per_profile
        res = known.get(target)
        if res is None:
            found = find_in(lookups, target)
            if found is None:
                raise self._not_found(lf, target, name)
            binding, source = found
            res = known[target] = Resolution(target, called_models(binding), source, target, binding,
                                              self.store.path, chain)
        return res

    def list_aliases(self, profile: Optional[str] = None) -> dict:
        """alias -> primary model, for the profile (with the aliases it inherits from the
        profiles it extends and from the default profile)."""
        return {alias: b.models[0] for alias, (b, _) in self.view(profile).items()}

    def view(self, profile: Optional[str] = None) -> dict:
        """alias -> (binding, the profile it came from), for the profile and what it inherits."""
        lf = self.store.current()
        name = self.profile_name(lf, profile)
        _exists(lf, name)
        return lf.view(name)

    def has_alias(self, alias: str, profile: Optional[str] = None) -> bool:
        """Whether the alias resolves; never raises."""
        try:
            self.resolve(alias, profile)
        except Exception:  # noqa: BLE001 - documented to answer, never to raise
            return False
        return not is_ref(alias)

    def require_aliases(self, aliases: list, context: Optional[str] = None, profile: Optional[str] = None) -> None:
        """Raise MissingAliasesError naming every alias the lockfile lacks. A lockfile that
        cannot be read raises its own LockfileError: the file is broken, not short of aliases."""
        lf = self.store.current()
        _exists(lf, self.profile_name(lf, profile))  # a missing profile is the file's problem, not the aliases'
        missing = [a for a in aliases if not self.has_alias(a, profile)]
        if missing:
            who = f" for {context}" if context else ""
            path = self.store.path
            raise MissingAliasesError(
                f"Lockfile missing required aliases{who}: {', '.join(missing)}.\n"
                f"Lockfile path: {path}\n"
                "Please ensure your lockfile defines these aliases.", missing, str(path))

    def _not_found(self, lf: Lockfile, alias: str, profile: str) -> AliasNotFoundError:
        import difflib

        problem = alias_problem(alias)
        if problem:
            return AliasNotFoundError(problem[0].upper() + problem[1:] + ".")
        known = sorted(self.list_aliases(profile)) if profile in lf.profiles or not lf.profiles else []
        close = difflib.get_close_matches(alias, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f"profile {profile!r} of {self.store.path}"
        if self.store.source == "bundled":
            where += " (llmring's bundled lockfile: create your own with `llmring lock init`)"
        return AliasNotFoundError(f"Alias {alias!r} is not bound in {where}.{hint} "
                                  f"Bind it with `llmring bind {alias} provider:model`.")


def _exists(lf: Lockfile, profile: str) -> None:
    """LockfileError naming the profiles there are, when `profile` is not one of them (a file
    with no profiles at all resolves nothing, which the alias's own error says)."""
    if profile not in lf.profiles and lf.profiles:
        lf.profile(profile)
