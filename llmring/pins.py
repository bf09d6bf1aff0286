"""Pins: what the registry said of each binding's models when the lockfile was reviewed
(`llmring lock pin`), and what has drifted since (`llmring lock validate --frozen`).

A binding's pin holds, per model: the dated snapshot a floating id stood for, its input and
output price per million tokens and its context window; and, per binding: the registry
version read, when, and a hash of the binding. A pinned binding calls the pinned snapshot
(`called_models`), so a vendor moving a floating id does not change production silently.

Which snapshot a floating id stands for (`snapshot_of`), in the registry in use:
1. a name ending in a date (gpt-4o-2024-08-06, claude-3-5-haiku-20241022) is its own snapshot;
2. else the dated models of the same provider that list the name among their aliases (the
   registry's own floating -> snapshot mapping: gpt-4o -> gpt-4o-2024-08-06);
3. else the dated models named NAME-DATE (a registry without aliases: acme:widget -> acme:widget-2025-06-01);
the one with the latest date in its name wins. When none exists the id is called as written
and its pin has no snapshot.

The hash (`binding_hash`) is "sha256:" and the first 16 hex digits of the SHA-256 of the
binding's canonical JSON: every field except `description` and `pin`, fields at their empty
default left out (so a field added to Binding later does not change old hashes), keys
sorted, no spaces, UTF-8. A description is prose: editing it needs no new review.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Optional

import attrs

from .lockmodel import Binding, Lockfile, ModelPin, Pin, now_stamp

_UNHASHED = ("description", "pin")
_DATED = re.compile(r"-((?:19|20)\d\d)-?([01]\d)-?([0-3]\d)$")


def binding_hash(b: Binding) -> str:
    fields = {f.name: getattr(b, f.name) for f in attrs.fields(Binding) if f.name not in _UNHASHED}
    data = {k: v for k, v in fields.items() if v not in (None, {}, [])}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):  # e.g. a budget table added to Binding later
        return attrs.asdict(value)
    return str(value)  # TOML dates and times


def written_as(b: Optional[Binding]) -> dict:
    """Each pinned snapshot a call to this binding makes -> the model id the binding names
    (so `[limits."openai:gpt-4o"]` also holds the calls to its pinned snapshot)."""
    if b is None or b.pin is None:
        return {}
    return {s: m for m in b.models if (s := b.pin.snapshot(m)) and s != m}


def called_models(b: Binding) -> list:
    """The models a call to this binding tries: each pinned snapshot instead of its floating id.
    Unpinned, the binding's own list (not a copy: a big lockfile resolves thousands of these,
    and neither a binding nor a resolution is changed in place)."""
    if b.pin is None:
        return b.models
    return [b.pin.snapshot(m) or m for m in b.models]


class Snapshots:
    """Which dated snapshot each floating id stands for in one registry (the rule above)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self._by_alias: dict = {}
        self._dated: dict = {}
        for m in registry.models:
            if _DATED.search(m.name):
                self._dated.setdefault(m.provider, []).append(m.name)
                for alias in m.aliases:
                    self._by_alias.setdefault((m.provider, alias), []).append(m.name)

    def of(self, ref: str) -> Optional[str]:
        provider, _, name = ref.partition(":")
        if _DATED.search(name):
            return ref
        names = self._by_alias.get((provider, name)) or [
            n for n in self._dated.get(provider, ()) if _DATED.sub("", n) == name]
        return f"{provider}:{max(names, key=_date_of)}" if names else None


def _date_of(name: str) -> str:
    m = _DATED.search(name)
    return "".join(m.groups()) if m else ""


def snapshot_of(ref: str, registry: Any) -> Optional[str]:
    """The dated snapshot `ref` stands for in `registry`, or None (see the module's rule)."""
    return Snapshots(registry).of(ref)


def model_pin(ref: str, snapshots: Snapshots) -> ModelPin:
    snapshot = snapshots.of(ref)
    info = snapshots.registry.find(snapshot or ref)
    if info is None:
        return ModelPin(ref, snapshot)
    return ModelPin(ref, snapshot, info.input_price, info.output_price, info.context_window)


def pin(lf: Lockfile, registry: Any, profile: Optional[str] = None, now: Optional[str] = None) -> list:
    """Pin every binding of `profile` (every profile when None) to what `registry` says now;
    returns the (profile, alias) pairs whose pin changed. A binding whose pin would differ
    only in its time keeps its old pin, so pinning again adds nothing to a diff."""
    snapshots = Snapshots(registry)
    stamp = now or now_stamp()
    changed = []
    for pname in [profile] if profile else list(lf.profiles):
        p = lf.profile(pname)
        for i, b in enumerate(list(p.bindings)):
            new = Pin(binding_hash(b), registry.version, stamp, [model_pin(m, snapshots) for m in b.models])
            if b.pin is not None and attrs.evolve(b.pin, pinned_at=stamp) == new:
                continue
            p.bindings[i] = attrs.evolve(b, pin=new)
            changed.append((pname, b.alias))
    return changed


@attrs.frozen
class Drift:
    """One way a profile no longer resolves to what was pinned."""

    profile: str
    alias: str
    message: str
    model: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.profile}/{self.alias}: {self.message}"


def drift(lf: Lockfile, registry: Any, profile: Optional[str] = None) -> list:
    """Every Drift of the bindings of `profile` (every profile when None) against `registry`;
    empty when all of them still resolve to what was pinned."""
    snapshots = Snapshots(registry)
    out: list = []
    for pname in [profile] if profile else list(lf.profiles):
        for b in lf.profile(pname).bindings:
            out += [Drift(pname, b.alias, msg, model) for model, msg in _binding_drift(b, snapshots)]
    return out


def _binding_drift(b: Binding, snapshots: Snapshots) -> list:
    if b.pin is None:
        return [(None, "not pinned; review it and run `llmring lock pin`")]
    out = []
    if binding_hash(b) != b.pin.hash:
        pinned = [m.model for m in b.pin.models]
        what = (f"models changed from {', '.join(pinned)} to {', '.join(b.models)}" if pinned != b.models
                else "params or requires changed")
        out.append((None, f"{what} since pinned; review it and run `llmring lock pin`"))
    for mp in b.pin.models:
        if mp.model in b.models:
            out += [(mp.model, msg) for msg in _model_drift(mp, snapshots)]
    return out


def _model_drift(mp: ModelPin, snapshots: Snapshots) -> list:
    reg = snapshots.registry
    now = snapshots.of(mp.model)
    out = []
    if mp.snapshot and now and now != mp.snapshot:
        out.append(f"{mp.model} now stands for {now}, pinned {mp.snapshot} (calls still go to {mp.snapshot})")
    called = mp.snapshot or mp.model
    info = reg.find(called)
    if info is None:
        if (mp.input, mp.output, mp.context_window) != (None, None, None):
            out.append(f"{called} is gone from the registry in use (version {reg.version})")
        return out
    if info.deprecated():
        out.append(f"{called} was deprecated on {info.deprecation_date}"
                   + (f"; move to {info.successor}" if info.successor else ""))
    elif not info.active:
        out.append(f"{called} is no longer active" + (f"; move to {info.successor}" if info.successor else ""))
    for side, was, is_ in (("input", mp.input, info.input_price), ("output", mp.output, info.output_price)):
        if was != is_:
            out.append(f"price of {mp.model} changed {usd(was)} -> {usd(is_)} per 1M {side} tokens since pinned")
    if mp.context_window != info.context_window:
        out.append(f"context window of {mp.model} changed {tokens(mp.context_window)} -> "
                   f"{tokens(info.context_window)} tokens since pinned")
    return out


def usd(price: Optional[float]) -> str:
    if price is None:
        return "no price"
    return f"${price:.2f}" if round(price, 2) == price else f"${price:g}"


def tokens(n: Optional[int]) -> str:
    return "unknown" if n is None else f"{n:,}"
