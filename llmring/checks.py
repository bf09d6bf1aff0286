"""What `llmring lock validate` (and `bind`) report about a lockfile's bindings, beyond its
syntax: unknown, inactive or deprecated models, providers not installed, missing keys,
aliases without a fallback, pool models lacking a capability the binding requires,
[limits.*] tables that apply to nothing or can never bind, and budgets that hold nothing back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import attrs

from .lockfile import Lockfile


@attrs.define
class Finding:
    level: str  # "error" or "warning"
    message: str
    profile: Optional[str] = None
    alias: Optional[str] = None
    model: Optional[str] = None

    def __str__(self) -> str:
        where = f"{self.profile}/{self.alias}: " if self.alias else ""
        return f"{self.level}: {where}{self.message}"


def check_model(ref: str, reg: Any) -> list:
    """Registry findings for one model reference (for providers the registry covers)."""
    provider = ref.partition(":")[0]
    if provider not in reg.providers():
        return []
    info = reg.find(ref)
    if info is None:
        close = reg.closest(ref)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `llmring list --provider " + provider + "`"
        return [Finding("warning", f"{ref} is not in the model registry{hint}", model=ref)]
    if info.deprecated():
        successor = f"; move to {info.successor}" if info.successor else ""
        return [Finding("warning", f"{ref} was deprecated on {info.deprecation_date}{successor}", model=ref)]
    if not info.active:
        successor = f"; move to {info.successor}" if info.successor else ""
        return [Finding("warning", f"{ref} is no longer active{successor}", model=ref)]
    return []


def check(lf: Lockfile, env: Optional[Mapping] = None) -> list:
    from . import registry
    from .plugins import registry as plugins

    reg = registry.load()
    plugins.load()
    environ = os.environ if env is None else env
    findings: list = []
    problems: dict = {}  # prefix -> configuration problem (None when ready), asked once each

    def provider_problem(prefix: str) -> Optional[str]:
        if prefix not in problems:
            info, endpoint = plugins.serving(prefix, lf.providers)
            if info is None:
                problems[prefix] = ("error", plugins.missing(prefix, endpoint))
            else:
                problem = info.make(prefix, endpoint, env=environ).configuration_problem()
                problems[prefix] = ("warning", problem) if problem else None
        return problems[prefix]

    users: dict = {}  # prefix -> aliases using it: a provider problem is reported once
    for pname, profile in lf.profiles.items():
        for b in profile.bindings:
            def add(level: str, message: str, model: Optional[str] = None,
                    _p: str = pname, _a: str = b.alias) -> None:
                findings.append(Finding(level, message, _p, _a, model))

            for ref in b.models:
                users.setdefault(ref.partition(":")[0], []).append(b.alias)
                for f in check_model(ref, reg):
                    add(f.level, f.message, ref)
            for cap in b.requires:  # each a known capability: reading checked that
                for ref in b.models:
                    info = reg.find(ref)
                    if info is not None and info.capabilities and not info.has(cap):
                        add("error", f"{ref} lacks {cap}, which this alias requires", ref)
            if len(b.models) == 1:
                add("warning", "has no fallback model; add one so an outage or rate limit does not stop it")
            if b.budget is not None and not _any_paid(lf, b.models):
                add("warning", "budget has no effect: none of its models has a price llmring knows, so none is "
                               "counted or held back; give them prices in [providers.NAME].prices")
    for prefix, aliases in users.items():
        problem = provider_problem(prefix)
        if problem:
            names = ", ".join(dict.fromkeys(aliases))
            findings.append(Finding(problem[0], f"{problem[1]} (used by {names})"))
    return _file_findings(lf) + findings + limit_findings(lf) + _endpoint_findings(lf, plugins)


def _any_paid(lf: Lockfile, models: list) -> bool:
    from .answer import known
    from .budget import paid

    return any(paid(known(lf, ref)[0]) for ref in models)


def _file_findings(lf: Lockfile) -> list:
    if lf.profiles and lf.default_profile not in lf.profiles:
        return [Finding("warning", f"there is no default profile (no [profiles.{lf.default_profile}] and no "
                                   "default_profile), so every command needs --profile or LLMRING_PROFILE; add "
                                   f"default_profile = {sorted(lf.profiles)[0]!r} at the top")]
    return []


def _endpoint_findings(lf: Lockfile, plugins: Any) -> list:
    """Where each [providers.NAME] sends requests and keys, when a reviewer should look twice."""
    from .trust import endpoint_warnings

    return [Finding("warning", message) for name, endpoint in lf.providers.items()
            for message in endpoint_warnings(name, endpoint, plugins.providers)]


def limit_findings(lf: Lockfile) -> list:
    """[limits.KEY] tables that cannot do what their author meant: a key no binding's model
    falls under (a typo, or a provider renamed), a model's limit looser than its provider's
    (the provider's, also counted for the model, always binds first), a table with no limit, a
    tpm below one call of an alias (each call would wait for an empty minute)."""
    from .lockmodel import limit_dict

    bindings = [(pname, b) for pname, p in lf.profiles.items() for b in p.bindings]
    used = {key for _, b in bindings for ref in b.models for key in (ref, ref.partition(":")[0])}
    findings = []
    for key, limit in lf.limits.items():
        table = _table(key)
        if not limit_dict(limit):
            findings.append(Finding("warning", f"{table} sets no limit; add rpm, tpm or concurrency, or remove it"))
        if key not in used:
            kind = "model" if ":" in key else "provider"
            in_use = ", ".join(sorted(u for u in used if (":" in u) == (":" in key))) or "none"
            findings.append(Finding("warning", f"{table} limits a {kind} no alias uses; check its spelling "
                                               f"({kind}s in use: {in_use})"))
        findings += _looser(key, limit, lf.limits)
        for pname, b in bindings:
            max_tokens = b.params.get("max_tokens")
            applies = any(key in (ref, ref.partition(":")[0]) for ref in b.models)
            if applies and limit.tpm is not None and isinstance(max_tokens, int) and max_tokens >= limit.tpm:
                findings.append(Finding("warning", f"{table} tpm = {limit.tpm} is less than one call (max_tokens "
                                                   f"= {max_tokens}), so each call waits for an empty minute",
                                        pname, b.alias))
    return findings


def _looser(key: str, limit: Any, limits: dict) -> list:
    """A model's limits that its provider's table makes pointless."""
    from .lockmodel import LIMIT_KEYS

    provider = key.partition(":")[0]
    outer = limits.get(provider) if ":" in key else None
    if outer is None:
        return []
    return [Finding("warning", f"{_table(key)} {name} = {mine} has no effect: {_table(provider)} {name} = "
                               f"{theirs} counts this model's calls too; lower it or remove it")
            for name in LIMIT_KEYS
            for mine, theirs in [(getattr(limit, name), getattr(outer, name))]
            if mine is not None and theirs is not None and mine >= theirs]


def _table(key: str) -> str:
    return f'[limits."{key}"]' if ":" in key else f"[limits.{key}]"
