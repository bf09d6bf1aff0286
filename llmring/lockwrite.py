"""A lockfile as TOML in the normal form: the one writer of TOML values in llmring.

`dumps` writes a whole file; the other functions write one part each (the head, an endpoint
table, a profile header, a binding), which `preserve` uses for the parts an edit changed.
"""

from __future__ import annotations

import re
from typing import Any

from .lockmodel import Binding, Endpoint, Lockfile, ModelPin, Pin, Profile, budget_dict, limit_dict
from .state import Limit


def dumps(lf: Lockfile) -> str:
    """The file as a person would write it: a stable order, one table per binding, a
    one-model list on one line and a list of fallbacks one model per line."""
    parts = [head_toml(lf)]
    if lf.metadata:
        parts.append(table_toml(("metadata",), lf.metadata))
    parts += [endpoint_toml(name, e) for name, e in lf.providers.items()]
    parts += [limit_toml(name, limit) for name, limit in lf.limits.items()]
    for name, p in lf.profiles.items():
        parts.append(profile_toml(name, p))
        profile_key = key(name)
        parts += [binding_toml(profile_key, b) for b in p.bindings]
    return "\n".join(parts)


def head_toml(lf: Lockfile) -> str:
    head: dict = {"version": lf.version}
    if lf.default_profile != "default" or "default" in lf.profiles or not lf.profiles:
        head["default_profile"] = lf.default_profile  # else it is implicit, as it was read
    head.update({k: getattr(lf, k) for k in ("created_at", "updated_at") if getattr(lf, k) is not None})
    return table_toml((), head)


def table_toml(path: tuple, data: dict) -> str:
    """`[path]` with its keys, then each non-empty sub-table as its own `[path.key]`."""
    lines = [f"[{'.'.join(map(key, path))}]"] if path else []
    subs = []
    for k, v in data.items():
        if isinstance(v, dict) and v:
            subs.append((k, v))
        else:
            lines.append(f"{key(str(k))} = {value(v)}")
    text = "\n".join(lines) + "\n" if lines else ""
    for k, v in subs:
        text += ("\n" if text else "") + table_toml((*path, str(k)), v)
    return text


def endpoint_toml(name: str, e: Endpoint) -> str:
    fields = {k: v for k, v in (("type", e.type), ("base_url", e.base_url), ("api_key_env", e.api_key_env))
              if v is not None}
    return table_toml(("providers", name), {**fields, **e.options})


def limit_toml(name: str, limit: Limit) -> str:
    return f"[limits.{key(name)}]\n" + "".join(f"{k} = {v}\n" for k, v in limit_dict(limit).items())


def profile_toml(name: str, p: Profile) -> str:
    lines = [f"[profiles.{key(name)}]", f"name = {value(name)}"]
    if p.extends is not None:
        lines.append(f"extends = {value(p.extends)}")
    if p.registry_versions:
        lines.append(f"registry_versions = {value(p.registry_versions)}")
    return "\n".join(lines) + "\n"


def binding_toml(profile_key: str, b: Binding) -> str:
    lines = [f"[[profiles.{profile_key}.bindings]]", *binding_keys(b).values()]
    return "\n".join(lines) + "\n"


def binding_keys(b: Binding) -> dict:
    """key -> its `key = value` text, for the keys the binding has (in the normal order)."""
    if len(b.models) == 1:
        models = value(b.models)
    else:
        models = "[\n" + "".join(f"    {value(m)},\n" for m in b.models) + "]"
    keys = {"alias": f"alias = {value(b.alias)}", "models": f"models = {models}"}
    if b.description:
        keys["description"] = f"description = {text_value(b.description)}"
    if b.requires:
        keys["requires"] = f"requires = {value(b.requires)}"
    if b.params:
        keys["params"] = f"params = {value(b.params)}"
    if b.budget is not None:
        keys["budget"] = f"budget = {value(budget_dict(b.budget))}"
    if b.pin is not None:
        keys["pin"] = f"pin = {pin_value(b.pin)}"
    return keys


def pin_value(pin: Pin) -> str:
    """A pin as one inline table whose models list has one model a line: a re-pin that moves
    a price changes that model's line alone, and the pin sits inside its binding's table."""
    head = ", ".join(f"{k} = {value(getattr(pin, k))}" for k in ("hash", "registry", "pinned_at"))
    rows = "".join(f"    {value(model_pin_table(m))},\n" for m in pin.models)
    return f"{{ {head}, models = [\n{rows}] }}"


def model_pin_table(m: ModelPin) -> dict:
    """A model's pin without the facts the registry did not have (TOML has no null)."""
    return {k: getattr(m, k) for k in ("model", "snapshot", "input", "output", "context_window")
            if getattr(m, k) is not None}


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    return name if _BARE.fullmatch(name) else value(name)


def text_value(text: str) -> str:
    """A string as a person writes a long one: a multi-line string when it has line breaks."""
    if "\n" not in text or "\r" in text:
        return value(text)
    body = "\n".join(value(line)[1:-1] for line in text.split("\n"))
    return f'"""\n{body}"""'


def value(v: Any) -> str:
    """One TOML value, inline (tables as { k = v })."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        import json  # here, not at start-up: only writing needs it

        # JSON string escapes are valid TOML basic strings; TOML also wants DEL escaped.
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        import math

        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(str(k))} = {value(x)}" for k, x in v.items()) + " }" if v else "{}"
    from datetime import date, time

    if isinstance(v, (date, time)):  # TOML dates, datetimes and times, as tomllib reads them
        return v.isoformat()
    raise TypeError(f"a lockfile cannot hold {type(v).__name__} values such as {v!r}; TOML has no null")
