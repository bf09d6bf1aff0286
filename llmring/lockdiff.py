"""What changed between two profiles, or two versions of a lockfile: `llmring diff`.

Profiles are compared as they resolve: each alias a profile can call (its own, those of the
profiles it extends, the default profile's) with its binding and the profile that binding
comes from. Per alias: added, removed, or changed (models added, removed or reordered, any
other binding field such as params, requires, description, and those later branches add,
like a budget, and the pin), with the price per million tokens of the primary model called
(a pinned binding calls its snapshot) on each side, where the registry (or the lockfile's
[providers.NAME].prices) knows it.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs

from .lockmodel import Lockfile, converter
from .pins import called_models


@attrs.frozen
class Price:
    """A model's price in USD per million tokens (None: not known)."""

    model: str
    input: Optional[float]
    output: Optional[float]


@attrs.frozen
class AliasChange:
    alias: str
    status: str  # "added", "removed" or "changed"
    old_models: list
    new_models: list
    added: list  # models only the new side has
    removed: list  # models only the old side has
    reordered: bool  # the models both have are tried in another order
    fields: dict  # binding field -> [old, new], for each other field that differs
    old_origin: Optional[str]  # the profile each side's binding comes from
    new_origin: Optional[str]
    old_price: Optional[Price]  # the primary model's price, where known and it differs
    new_price: Optional[Price]


@attrs.frozen
class ProfileDiff:
    old: str  # the profile on each side
    new: str
    status: str  # "changed", "added" (only the new lockfile has it) or "removed"
    extends: Optional[list]  # [old, new] when the profile's extends changed
    aliases: list  # AliasChange, in alias order

    @property
    def equal(self) -> bool:
        return self.status == "changed" and not self.extends and not self.aliases


@attrs.frozen
class LockDiff:
    old: str  # what each side is: a lockfile path (or "-") or a profile name
    new: str
    default_profile: Optional[list]  # [old, new] when it changed
    profiles: list  # ProfileDiff, only those that differ

    @property
    def equal(self) -> bool:
        return not self.default_profile and not self.profiles

    def to_dict(self) -> dict:
        return {**converter().unstructure(self), "equal": self.equal}


def compare_profiles(lf: Lockfile, old: str, new: str) -> LockDiff:
    """Profile `old` against profile `new` of one lockfile (each as it resolves)."""
    for name in (old, new):
        lf.profile(name)  # a profile not in the file: LockfileError listing those that are
    diff = _profile_diff(lf, lf, old, new)
    return LockDiff(old, new, None, [] if diff.equal else [diff])


def compare_files(old_lf: Lockfile, new_lf: Lockfile, old_name: str, new_name: str,
                  profile: Optional[str] = None) -> LockDiff:
    """Two versions of a lockfile: every profile either has (or only `profile`). Comparing
    every profile, a changed binding is listed under the profile that holds it, not again under
    each profile inheriting it; one that comes from elsewhere than before is listed too."""
    if profile is not None and profile not in old_lf.profiles and profile not in new_lf.profiles:
        new_lf.profile(profile)  # raises, listing the new file's profiles
    names = [profile] if profile is not None else list(dict.fromkeys([*old_lf.profiles, *new_lf.profiles]))
    diffs = [_profile_diff(old_lf, new_lf, n, n) for n in names]
    if profile is None:
        diffs = [attrs.evolve(d, aliases=[c for c in d.aliases if _held_by(c, d)]) for d in diffs]
    default = [old_lf.default_profile, new_lf.default_profile]
    return LockDiff(old_name, new_name, default if default[0] != default[1] else None,
                    [d for d in diffs if not d.equal])


def read_side(source: str, stdin: Any = None) -> Lockfile:
    """A lockfile to compare: a path, or "-" for `stdin` (a binary stream), as
    `git show HEAD~1:llmring.lock | llmring diff - llmring.lock` gives it."""
    from pathlib import Path

    from .exceptions import LockfileError
    from .lockread import parse, read

    if source != "-":
        if not Path(source).exists():
            raise LockfileError("does not exist; give the path of a lockfile, or - to read one from stdin",
                                path=source)
        return read(Path(source))
    try:
        text = stdin.read().decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError("is not UTF-8 text; a lockfile is TOML", path="<stdin>") from None
    return parse(text, "<stdin>")


def _profile_diff(old_lf: Lockfile, new_lf: Lockfile, old: str, new: str) -> ProfileDiff:
    has_old, has_new = old in old_lf.profiles, new in new_lf.profiles
    before = old_lf.view(old) if has_old else {}
    after = new_lf.view(new) if has_new else {}
    # One profile in two files: a binding it now holds itself (or inherits from elsewhere) is
    # a change even with the same models. Two profiles: each binding its own is no news.
    changes = [c for alias in sorted({*before, *after})
               for c in [_alias_change(alias, before.get(alias), after.get(alias), old_lf, new_lf, old == new)] if c]
    status = "changed" if has_old and has_new else ("added" if has_new else "removed")
    extends = [old_lf.profiles[old].extends, new_lf.profiles[new].extends] if has_old and has_new else None
    return ProfileDiff(old, new, status, extends if old == new and extends and extends[0] != extends[1] else None,
                       changes)


def _held_by(change: AliasChange, diff: ProfileDiff) -> bool:
    """Whether `diff`'s profile is where `change` is to be read: its own binding changed, or it
    now gets the alias from elsewhere (or the profile itself is new or gone)."""
    origins = {o for o in (change.old_origin, change.new_origin) if o is not None}
    return diff.status != "changed" or origins != {next(iter(origins))} or diff.new in origins


def _alias_change(alias: str, old: Optional[tuple], new: Optional[tuple], old_lf: Lockfile,
                  new_lf: Lockfile, origins_matter: bool) -> Optional[AliasChange]:
    (ob, oo), (nb, no) = old or (None, None), new or (None, None)
    if ob is not None and nb is not None and ob == nb and (oo == no or not origins_matter):
        return None
    old_models, new_models = list(ob.models) if ob else [], list(nb.models) if nb else []
    both = [m for m in old_models if m in new_models]
    plain = converter().unstructure
    fields = {name: [plain(getattr(ob, name)), plain(getattr(nb, name))]
              for name in _fields(ob, nb) if getattr(ob, name) != getattr(nb, name)} if ob and nb else {}
    old_price = _price(old_lf, called_models(ob)[0]) if ob else None  # a pinned binding calls its snapshot
    new_price = _price(new_lf, called_models(nb)[0]) if nb else None
    if old_price and new_price and (old_price.input, old_price.output) == (new_price.input, new_price.output):
        old_price = new_price = None  # report a price only where it changed
    return AliasChange(
        alias=alias, status="changed" if ob and nb else ("added" if nb else "removed"),
        old_models=old_models, new_models=new_models,
        added=[m for m in new_models if m not in old_models] if ob else [],
        removed=[m for m in old_models if m not in new_models] if nb else [],
        reordered=both != [m for m in new_models if m in old_models],
        fields=fields, old_origin=oo, new_origin=no, old_price=old_price, new_price=new_price)


def _fields(old: Any, new: Any) -> list:
    """The binding fields beyond alias and models, whatever the Binding class has (a budget or
    pins added later are compared too)."""
    names = [f.name for f in attrs.fields(type(new))]
    return [n for n in names if n not in ("alias", "models") and hasattr(old, n)]


def _price(lf: Lockfile, ref: str) -> Optional[Price]:
    from .answer import known

    info, _ = known(lf, ref)
    if info is None or (info.input_price is None and info.output_price is None):
        return None
    return Price(ref, info.input_price, info.output_price)

