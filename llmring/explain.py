"""Why an alias calls what it calls: `ring.explain(alias)` and `llmring explain ALIAS`.

For each model of the alias, in the order they are tried: whether its provider is installed
and has its key (the variable's name, never its value), what the registry (or the lockfile's
[providers.NAME].prices) says of it, the snapshot its pin calls instead (then the registry's
data is the snapshot's: it is what is called), the [limits.*] it counts against, and which
kinds of request would skip it. Skipping uses the walker's own rule (prepare.needs, then
walker._lacks), so this answer and a real call cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import attrs

# A request of each kind the walker checks models for: (key, its fields).
KINDS = (
    ("tools", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
    ("images", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}]}]}),
    ("json_schema", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
)


@attrs.frozen
class ModelReport:
    """One model of an alias, as a call would meet it."""

    ref: str  # as the binding lists it
    provider: str
    installed: bool
    package: Optional[str]  # the distribution that provides the prefix, or the lockfile endpoint
    key_env: list  # the variables the key may be read from (empty: the provider needs none)
    key_set: Optional[bool]  # whether one of them is set; None when no key is needed
    problem: Optional[str]  # why the provider cannot be used now, or None
    known: bool  # the registry (or the lockfile's prices) knows the model
    capabilities: list
    context_window: Optional[int]
    max_output: Optional[int]
    input_price: Optional[float]  # USD per million tokens
    output_price: Optional[float]
    deprecated: Optional[str]  # the deprecation date, when it has passed
    active: bool
    pinned: Optional[str]  # the snapshot the binding's pin calls instead of `ref`, or None
    limits: dict  # KEY of each [limits.KEY] table the model's calls count against -> its limits
    skipped_for: list  # kinds of request (keys of KINDS) that would skip this model
    lacks_required: str  # the capability the binding requires that this model lacks, or ""


@attrs.frozen
class Explanation:
    """An alias in the profile asked for: where its binding comes from and each model's state."""

    alias: str
    profile: Optional[str]  # the profile asked for (None for a direct provider:model)
    origin: Optional[str]  # the profile the binding came from
    chain: list  # the profiles looked through, in order
    lockfile: str
    lockfile_source: str
    description: Optional[str]
    params: dict
    requires: list
    budget: Any  # the binding's lockmodel.Budget where the lockfile sets one (None otherwise)
    models: list  # ModelReport, in the order they are tried

    def skips(self) -> dict:
        """kind of request -> the models such a request would skip."""
        return {kind: [m.ref for m in self.models if kind in m.skipped_for] for kind, _ in KINDS}

    def to_dict(self) -> dict:
        from .lockmodel import converter

        return {**converter().unstructure(self), "skips": self.skips()}


def explain(ring: Any, alias: str, profile: Optional[str] = None, env: Optional[Mapping] = None) -> Explanation:
    """The Explanation of `alias` (or a provider:model reference) through `ring`'s lockfile;
    AliasNotFoundError when the alias is not bound."""
    from . import prepare
    from .answer import known
    from .plugins import registry as plugins

    res = ring.resolve(alias, profile)
    lf = ring.lockfile
    plugins.load()
    environ = os.environ if env is None else env
    binding = res.binding
    requires = list(binding.requires) if binding is not None else []
    required = prepare.needs(_request({}), requires)
    kinds = [(kind, prepare.needs(_request(fields))) for kind, fields in KINDS]
    reports = []
    for ref in binding.models if binding is not None else res.models:
        pinned = binding.pin.snapshot(ref) if binding is not None and binding.pin is not None else None
        info, _ = known(lf, pinned or ref)  # what is called: the pinned snapshot, if any
        reports.append(_report(ref, pinned, info, lf, plugins, environ, kinds, required))
    return Explanation(
        alias=alias, profile=res.chain[0] if res.chain else None, origin=res.profile, chain=list(res.chain),
        lockfile=str(ring.lockfile_path), lockfile_source=ring.lockfile_source,
        description=binding.description if binding is not None else None,
        params=dict(binding.params) if binding is not None else {}, requires=requires,
        budget=binding.budget if binding is not None else None,
        models=reports)


def _report(ref: str, pinned: Optional[str], info: Any, lf: Any, plugins: Any, environ: Mapping, kinds: list,
            required: list) -> ModelReport:
    from .limits import limits_of  # the limiter's own rule for which tables a call counts against
    from .walker import _lacks  # the walker's rule for skipping a model, shared rather than copied

    prefix = ref.partition(":")[0]
    provider = provider_status(prefix, lf, plugins, environ)
    deprecated = info.deprecation_date if info is not None and info.deprecated() else None
    return ModelReport(
        ref=ref, provider=prefix, **provider, known=info is not None,
        capabilities=list(info.capabilities) if info is not None else [],
        context_window=getattr(info, "context_window", None), max_output=getattr(info, "max_output", None),
        input_price=getattr(info, "input_price", None), output_price=getattr(info, "output_price", None),
        deprecated=deprecated, active=info.active if info is not None else True,
        pinned=pinned, limits=limits_of([pinned or ref], lf.limits, {pinned: ref} if pinned else None),
        skipped_for=[kind for kind, needs in kinds if _lacks(info, needs)],
        lacks_required=_lacks(info, required))


def provider_status(prefix: str, lf: Any, plugins: Any, environ: Mapping) -> dict:
    """installed, package, key_env, key_set and problem for a prefix: an installed plugin, or
    the lockfile's [providers.NAME] endpoint of an installed type."""
    info, endpoint = plugins.serving(prefix, lf.providers)
    if info is None:
        return {"installed": False, "package": None, "key_env": [], "key_set": None,
                "problem": plugins.missing(prefix, endpoint)}
    package = f"{endpoint.type} endpoint in the lockfile" if endpoint else info.package
    try:
        provider = info.make(prefix, endpoint, env=environ)
        names = list(provider.key_env_names()) if hasattr(provider, "key_env_names") else []
        problem = provider.configuration_problem() if hasattr(provider, "configuration_problem") else None
    except Exception as e:  # noqa: BLE001 - a plugin's bug is reported on its line, not raised
        names, problem = [], f"its provider cannot be set up ({type(e).__name__}: {e})"
    key_set = any(environ.get(n) for n in names) if names else None
    return {"installed": True, "package": package, "key_env": names, "key_set": key_set, "problem": problem}


def _request(fields: dict) -> Any:
    from .types import LLMRequest

    return LLMRequest(**{"messages": "hi", **fields})

