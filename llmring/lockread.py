"""Reading a lockfile: TOML text to a validated Lockfile.

Every value a user can get wrong is checked here, at read time, and each problem is a
LockfileError naming the file, the line where it can be found, and the key, so that a bad
value never surfaces later (say, after a paid call).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from .exceptions import LockfileError
from .lockmodel import (
    BUDGET_KEYS,
    FORMAT_VERSION,
    LIMIT_KEYS,
    Binding,
    Bindings,
    Budget,
    Endpoint,
    Lockfile,
    ModelPin,
    PathLike,
    Pin,
    Profile,
    as_str,
)
from .prepare import REQUEST_FIELDS, field_problem
from .refs import ALIAS_NAME, PLAIN_REF, alias_problem, ref_problem
from .state import Limit

BOM = "\ufeff"

_TOP = ("version", "default_profile", "profiles", "providers", "limits", "metadata", "created_at", "updated_at")
_PROFILE = ("name", "extends", "bindings", "registry_versions")
_BINDING = ("alias", "models", "description", "params", "requires", "pin", "budget")
_BINDING_KEYS = frozenset(_BINDING) - {"pin", "budget"}  # the fast path's keys: these take the full checks
_ENDPOINT = ("type", "base_url", "api_key_env")
_PIN = ("hash", "registry", "pinned_at", "models")
_MODEL_PIN = ("model", "snapshot", "input", "output", "context_window")
_INF = float("inf")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PREFIX = re.compile(r"[a-z][a-z0-9_-]*")


def toml_loads(text: str) -> dict:
    """TOML text to data with tomli, the parser the standard library's tomllib was made from:
    its wheels are compiled (mypyc), which reads a big lockfile about 1.8x as fast as tomllib.
    tomllib only when tomli is missing (a dependency on every Python, but packagers drop some)."""
    try:
        import tomli as toml
    except ImportError:
        import tomllib as toml
    return toml.loads(text)


def read(path: PathLike) -> Lockfile:
    """Read and validate a lockfile."""
    return parse(read_text(Path(path)), path)


def read_text(p: Path) -> str:
    """The file's text as written (a byte-order mark and CRLF line ends included)."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise LockfileError("no lockfile here; create one with `llmring lock init`", path=str(p)) from None
    except IsADirectoryError:
        raise LockfileError("is a directory, not a lockfile", path=str(p)) from None
    except OSError as e:
        raise LockfileError(f"cannot be read ({e.strerror}); check its permissions", path=str(p)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError("is not UTF-8 text; a lockfile is TOML", path=str(p)) from None


def parse(text: str, path: Optional[PathLike] = None) -> Lockfile:
    """Parse and validate lockfile TOML text; every problem is a LockfileError."""
    where = as_str(path)
    if text.startswith(BOM):  # editors on Windows add one; TOML parsers refuse it
        text = text[1:]
    try:
        data = toml_loads(text)
    except Exception as e:  # TOMLDecodeError, and ValueErrors from odd input
        msg = str(e)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(m.group(1)) if m else None
        if line is None and "(at end of document)" in msg:  # e.g. an unclosed list
            line = max(len(text.splitlines()), 1)
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg) or "invalid TOML"
        raise LockfileError(f"is not valid TOML: {msg}; fix the syntax there", path=where, line=line) from None
    return _Validator(text, where).lockfile(data)


def validate(data: dict, path: Optional[PathLike] = None) -> Lockfile:
    """Validate plain data (TOML parsed elsewhere) into a Lockfile; no line numbers."""
    return _Validator("", as_str(path)).lockfile(data)


class _Validator:
    def __init__(self, text: str, path: Optional[str]) -> None:
        self.text = text
        self.path = path
        self._lines: Optional[list] = None

    @property
    def lines(self) -> list:
        if self._lines is None:  # only an error needs them
            self._lines = self.text.splitlines()
        return self._lines

    def fail(self, message: str, key: str, *hints: Any) -> LockfileError:
        return LockfileError(message, path=self.path, line=self.line_of(*hints), key=key)

    def line_of(self, *hints: Any) -> Optional[int]:
        """The line matching each hint in turn (a table header, then a key inside it). A hint
        is a pattern, or (pattern, n) for its n-th match, e.g. the n-th [[...bindings]]."""
        start = 0
        found = None
        for hint in hints:
            pattern, count = hint if isinstance(hint, tuple) else (hint, 1)
            rx = re.compile(pattern)
            for i in range(start, len(self.lines)):
                if rx.search(self.lines[i]):
                    found, start = i + 1, i + 1
                    count -= 1
                    if not count:
                        break
            else:
                return found
        return found

    def keys(self, table: dict, allowed: tuple, where: str, *hints: Any) -> None:
        for key in table:
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; allowed keys: {', '.join(allowed)}"
                raise self.fail(f"unknown key {key!r} in {where}{hint}", key, *hints,
                                rf"^\s*{re.escape(key)}\s*=|^\s*\[+[^\]]*\b{re.escape(key)}\b")

    def typed(self, value: Any, kind: type, key: str, what: str, *hints: Any) -> Any:
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            names = {str: "a non-empty string", dict: "a table", list: "a list", int: "a number"}
            raise self.fail(f"{key} must be {names.get(kind, kind.__name__)}, not {_show(value)}{what}",
                            key, *hints)
        return value

    def lockfile(self, data: dict) -> Lockfile:
        self.keys(data, _TOP, "the lockfile")
        version = str(data.get("version", FORMAT_VERSION))
        if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
            raise self.fail(f"version {version!r} is not supported (this llmring reads {FORMAT_VERSION}); "
                            "upgrade llmring", "version", r"^\s*version\s*=")
        profiles_raw = self.typed(data.get("profiles", {}), dict, "profiles", "", r"^\s*\[+\s*profiles")
        profiles = {name: self.profile(name, raw) for name, raw in profiles_raw.items()}
        self.extensions(profiles)
        default = self.typed(data.get("default_profile", "default"), str, "default_profile", "",
                             r"^\s*default_profile\s*=")
        # Only a default_profile the file names must exist: without one, profiles such as the
        # seed's us-west / eu-central are chosen by --profile or LLMRING_PROFILE (and
        # `lock validate` says so).
        if "default_profile" in data and profiles and default not in profiles:
            raise self.fail(f"default_profile {default!r} names no profile; the profiles are "
                            f"{', '.join(sorted(profiles))}", "default_profile", r"^\s*default_profile\s*=")
        providers = {n: self.endpoint(n, raw) for n, raw in
                     self.typed(data.get("providers", {}), dict, "providers", "", r"^\s*\[providers").items()}
        meta = self.typed(data.get("metadata", {}), dict, "metadata", "", r"^\s*\[metadata")
        limits = {k: self.limit(k, raw) for k, raw in
                  self.typed(data.get("limits", {}), dict, "limits", "", r"^\s*\[limits").items()}
        stamps = {k: _stamp(data.get(k)) for k in ("created_at", "updated_at")}
        return Lockfile(version=version, default_profile=default, profiles=profiles, providers=providers,
                        metadata=meta, limits=limits, path=Path(self.path) if self.path else None, **stamps)

    def profile(self, name: str, raw: Any) -> Profile:
        hdr = rf"^\s*\[+\s*profiles\.\"?{re.escape(name)}\"?[\].]"
        where = f" in profile {name!r}"
        raw = self.typed(raw, dict, f"profiles.{name}", "", hdr)
        self.keys(raw, _PROFILE, f"profile {name!r}", hdr)
        if "name" in raw and raw["name"] != name:
            raise self.fail(f"profile [profiles.{name}] has name = {raw['name']!r}; make them the same",
                            f"profiles.{name}.name", hdr, r"^\s*name\s*=")
        bindings_raw = self.typed(raw.get("bindings", []), list, f"profiles.{name}.bindings", where, hdr,
                                  _key_line("bindings"))
        bindings = self.bindings(name, bindings_raw)
        try:
            indexed = Bindings(bindings)
        except ValueError:  # an alias bound twice: find it, to name its line
            seen: set = set()
            alias = next(b.alias for b in bindings if b.alias in seen or seen.add(b.alias))
            raise self.fail(f"alias {alias!r} is bound twice in profile {name!r}; "
                            "keep one binding and list its fallbacks in its models",
                            f"profiles.{name}.bindings", hdr,
                            *[rf"^\s*alias\s*=\s*[\"']{re.escape(alias)}[\"']"] * 2) from None
        versions = self.typed(raw.get("registry_versions", {}), dict, f"profiles.{name}.registry_versions",
                              where, hdr, _key_line("registry_versions"))
        extends = raw.get("extends")
        if extends is not None:
            self.typed(extends, str, f"profiles.{name}.extends", where, hdr, _key_line("extends"))
        return Profile(name, indexed, versions, extends)

    def extensions(self, profiles: dict) -> None:
        """Every `extends` names a profile, and no chain comes back to where it started."""
        for name, p in profiles.items():
            if p.extends is None:
                continue
            hints = (rf"^\s*\[\s*profiles\.\"?{re.escape(name)}\"?\s*\]", _key_line("extends"))
            if p.extends not in profiles:
                raise self.fail(f"profile {name!r} extends {p.extends!r}, which is not a profile; the profiles "
                                f"are {', '.join(sorted(profiles))}", f"profiles.{name}.extends", *hints)
            seen = [name]
            while p is not None and p.extends is not None:
                if p.extends in seen:
                    loop = " -> ".join(seen[seen.index(p.extends):] + [p.extends])
                    raise self.fail(f"profiles extend each other in a cycle ({loop}); remove one of "
                                    "their extends", f"profiles.{name}.extends", *hints)
                seen.append(p.extends)
                p = profiles.get(p.extends)

    def bindings(self, profile: str, raws: list) -> list:
        """A profile's bindings. The plainly valid ones (the common case) are checked together,
        one regex over all their aliases and one over all their models, which keeps files of
        thousands fast; the others go through checked_binding, which says what is wrong and
        where. When the joint check finds a name that is not plain, every binding goes through
        checked_binding, and what it reads is what is kept (" openai:gpt-4o " is stripped)."""
        out, aliases, refs = [], [], []
        for index, raw in enumerate(raws):
            if type(raw) is dict and raw.keys() <= _BINDING_KEYS:
                alias, models, description = raw.get("alias"), raw.get("models"), raw.get("description")
                params, requires = raw.get("params"), raw.get("requires")
                if (type(alias) is str and type(models) is list and models and not params and not requires
                        and (description is None or (type(description) is str and description.strip()))
                        and (len(models) == 1 or _distinct(models))):
                    aliases.append(alias)
                    refs += models
                    out.append(Binding(alias, models, description, {} if params is None else params, []))
                    continue
            out.append(self.checked_binding(profile, index, raw))
        if aliases and not (_all_match(_ALIASES, aliases) and _all_match(_PLAIN_REFS, refs)):
            return [self.checked_binding(profile, index, raw) for index, raw in enumerate(raws)]
        return out

    def checked_binding(self, profile: str, index: int, raw: Any) -> Binding:
        key = f"profiles.{profile}.bindings[{index}]"
        hdr = rf"^\s*\[\[\s*profiles\.\"?{re.escape(profile)}\"?\.bindings"
        hints: list = [(hdr, index + 1)]
        raw = self.typed(raw, dict, key, "", *hints)
        alias = raw.get("alias")
        if "alias" in raw:  # after the binding's header, the next alias line is its own
            hints.append(_key_line("alias"))
        self.keys(raw, _BINDING, f"binding {key}", *hints)
        if "alias" not in raw:
            raise self.fail(f"{key} has no alias; add alias = \"name\"", f"{key}.alias", *hints)
        problem = alias_problem(alias)
        if problem:
            raise self.fail(problem, f"{key}.alias", *hints)
        where = f" for alias {alias!r} in profile {profile!r}"
        models = self.models(raw, key, where, hints)
        description = raw.get("description")
        if description is not None:
            self.typed(description, str, "description", where, *hints, _key_line("description"))
        params = self.typed(raw.get("params", {}), dict, "params", where, *hints, _key_line("params"))
        for name, value in params.items():
            problem = param_problem(name, value)
            if problem:
                raise self.fail(f"params.{problem}{where}", f"{key}.params.{name}", *hints, _key_line("params"))
        requires = self.typed(raw.get("requires", []), list, "requires", where, *hints, _key_line("requires"))
        if requires:
            self.capabilities(requires, key, where, hints)
        pin = self.pin(raw["pin"], key, where, hints) if raw.get("pin") is not None else None
        budget = raw.get("budget")
        return Binding(alias, models, description, params, requires, pin,
                       None if budget is None else self.budget(budget, key, where, hints))

    def pin(self, raw: Any, key: str, where: str, hints: list) -> Pin:
        """pin = { hash, registry, pinned_at, models = [{ model, snapshot, input, output,
        context_window }] }, as `llmring lock pin` writes it."""
        hints = [*hints, _key_line("pin")]
        again = "; run `llmring lock pin` to write it again"
        raw = self.typed(raw, dict, "pin", where + again, *hints)
        self.keys(raw, _PIN, f"the pin{where}", *hints)
        for k in ("hash", "registry", "pinned_at"):
            if k not in raw:
                raise self.fail(f"the pin{where} has no {k}{again}", f"{key}.pin.{k}", *hints)
        if not hasattr(raw["pinned_at"], "isoformat"):  # else a TOML date-time, taken as written
            self.typed(raw["pinned_at"], str, "pin.pinned_at", where, *hints)
        fields = {k: _stamp(raw[k]) if k == "pinned_at" else self.typed(raw[k], str, f"pin.{k}", where, *hints)
                  for k in ("hash", "registry", "pinned_at")}
        entries = self.typed(raw.get("models", []), list, "pin.models", where + again, *hints)
        return Pin(models=[self.model_pin(e, f"{key}.pin.models[{i}]", where, hints)
                           for i, e in enumerate(entries)], **fields)

    def model_pin(self, raw: Any, key: str, where: str, hints: list) -> ModelPin:
        raw = self.typed(raw, dict, "each entry of pin.models", where, *hints)
        self.keys(raw, _MODEL_PIN, f"an entry of pin.models{where}", *hints)
        if raw.get("model") is None:
            raise self.fail(f"an entry of pin.models{where} has no model; run `llmring lock pin` to write it again",
                            f"{key}.model", *hints)
        for k in ("model", "snapshot"):
            problem = ref_problem(raw[k]) if raw.get(k) is not None else ""
            if problem:
                raise self.fail(f"pin.models: {problem} ({where.strip()})", f"{key}.{k}", *hints)
        for k in ("input", "output"):
            price = raw.get(k)
            if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))
                                      or not 0 <= price < _INF):
                raise self.fail(f"pin.models {k} must be a price in USD per million tokens, not {_show(price)}"
                                f"{where}", f"{key}.{k}", *hints)
        window = raw.get("context_window")
        if window is not None and (type(window) is not int or window <= 0):
            raise self.fail(f"pin.models context_window must be a whole number of tokens, not {_show(window)}"
                            f"{where}", f"{key}.context_window", *hints)
        snapshot = raw.get("snapshot")
        if snapshot is not None and snapshot.partition(":")[0] != raw["model"].partition(":")[0]:
            raise self.fail(f"pin.models: the snapshot {snapshot} of {raw['model']} is another provider's{where}; "
                            "a pin may only name a dated version of the same model", f"{key}.snapshot", *hints)
        return ModelPin(raw["model"].strip(), snapshot.strip() if snapshot is not None else None,
                        raw.get("input"), raw.get("output"), window)

    def models(self, raw: dict, key: str, where: str, hints: list) -> list:
        if "models" not in raw:
            raise self.fail(f"{where.strip()[4:]} has no models; add models = [\"provider:model\"]",
                            f"{key}.models", *hints)
        models = self.typed(raw["models"], list, "models", where + ', e.g. models = ["openai:gpt-4o-mini"]',
                            *hints, r"^\s*models\s*=")
        if not models:
            raise self.fail(f"models is empty{where}; list at least one provider:model",
                            f"{key}.models", *hints, r"^\s*models\s*=")
        for ref in models:
            problem = ref_problem(ref)
            if problem:  # its own line when it is on one, else the models line
                on_a_line = isinstance(ref, str) and ref and "\n" not in ref
                raise self.fail(f"{problem} ({where.strip()})", f"{key}.models", *hints,
                                re.escape(ref) if on_a_line else r"^\s*models\s*=")
        models = [m.strip() for m in models]
        if len(set(models)) != len(models):
            dupes = sorted({m for m in models if models.count(m) > 1})
            raise self.fail(f"models lists {', '.join(dupes)} twice{where}", f"{key}.models", *hints,
                            _key_line("models"))
        return models

    def budget(self, raw: Any, key: str, where: str, hints: list) -> Budget:
        """budget = { usd_per_day = 5.0, usd_per_month = 100.0 } (inline, or a sub-table)."""
        hints = [*hints, _key_line("budget")]
        raw = self.typed(raw, dict, "budget", f"{where}; e.g. budget = {{ usd_per_day = 5.0 }}", *hints)
        self.keys(raw, BUDGET_KEYS, f"the budget{where}", *hints)
        usd = {k: v for k, v in raw.items() if v is not None}  # None only in data from to_dict
        if not usd:
            raise self.fail(f"budget is empty{where}; set usd_per_day or usd_per_month (US dollars)",
                            f"{key}.budget", *hints)
        for k, v in usd.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < _INF:
                raise self.fail(f"budget.{k} must be a number of US dollars, 0 or more, not {_show(v)}{where}",
                                f"{key}.budget.{k}", *hints, _key_line(k))
        return Budget(**{k: float(v) for k, v in usd.items()})

    def capabilities(self, requires: list, key: str, where: str, hints: list) -> None:
        from .registry import CAPABILITIES

        for cap in requires:
            self.typed(cap, str, "each entry of requires", where, *hints, _key_line("requires"))
            if cap not in CAPABILITIES:
                raise self.fail(f"requires {cap!r}, which is not a capability{where}; use one of "
                                f"{', '.join(CAPABILITIES)}", f"{key}.requires", *hints, _key_line("requires"))

    def endpoint(self, name: str, raw: Any) -> Endpoint:
        hdr = rf"^\s*\[providers\.\"?{re.escape(name)}\"?\]"
        key = f"providers.{name}"
        raw = self.typed(raw, dict, key, "", hdr)
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise self.fail(f"provider name {name!r} must be lower-case letters, digits, '-' or '_'", key, hdr)
        if "type" not in raw:
            raise self.fail(f"[{key}] needs type = \"openai\" (the API it speaks)", f"{key}.type", hdr)
        fields = {k: self.typed(raw[k], str, f"{key}.{k}", "", hdr, _key_line(k)) for k in _ENDPOINT if k in raw}
        env = fields.get("api_key_env")
        if env is not None and not _ENV_NAME.fullmatch(env):
            raise self.fail(f"{key}.api_key_env must name an environment variable (letters, digits, '_'), "
                            f"not {env!r}", f"{key}.api_key_env", hdr, _key_line("api_key_env"))
        allow_http = raw.get("allow_http", False)
        if not isinstance(allow_http, bool):
            raise self.fail(f"{key}.allow_http must be true or false, not {_show(allow_http)}",
                            f"{key}.allow_http", hdr, _key_line("allow_http"))
        base = fields.get("base_url")
        if base is not None:
            from .trust import base_url_problem

            problem = base_url_problem(base, allow_http, env)
            if problem:
                raise self.fail(f"{key}.base_url {problem}", f"{key}.base_url", hdr, _key_line("base_url"))
        if "prices" in raw:
            self.prices(raw["prices"], key, hdr)
        options = {k: v for k, v in raw.items() if k not in _ENDPOINT}
        return Endpoint(options=options, **fields)

    def limit(self, name: str, raw: Any) -> Limit:
        """[limits.openai] (every openai: model together) or [limits."openai:gpt-4o"]."""
        hdr = rf"^\s*\[\s*limits\s*\.\s*[\"']?{re.escape(name)}[\"']?\s*\]|^\s*\[limits\]"
        key = f"limits.{name}"
        if not (_PREFIX.fullmatch(name) or PLAIN_REF.fullmatch(name)):
            raise self.fail(f"[limits.{name}] must name a provider (e.g. [limits.openai]) or a model "
                            '(e.g. [limits."openai:gpt-4o-mini"], quoted)', key, hdr)
        raw = self.typed(raw, dict, key, ", e.g. rpm = 500", hdr)
        self.keys(raw, LIMIT_KEYS, f"[{key}]", hdr)
        for k, v in raw.items():
            if type(v) is not int or v <= 0:
                what = {"rpm": "requests per minute", "tpm": "tokens per minute",
                        "concurrency": "calls in flight at once"}[k]
                raise self.fail(f"{key}.{k} must be a whole number more than 0 ({what}), not {_show(v)}",
                                f"{key}.{k}", hdr, _key_line(k))
        return Limit(**raw)

    def prices(self, prices: Any, key: str, hdr: str) -> None:
        """prices = { "model" = { input = 0.5, output = 2.0 } }: USD per million tokens."""
        hints = (hdr, r"^\s*prices\b|^\s*\[[^\]]*\.prices\b")
        example = 'e.g. prices = { "my-model" = { input = 0.5, output = 2.0 } }'
        self.typed(prices, dict, f"{key}.prices", f"; {example}", *hints)
        for model, entry in prices.items():
            where = f"{key}.prices.{model}"
            self.typed(entry, dict, where, f"; {example}", *hints)
            self.keys(entry, ("input", "output"), where, *hints)
            for side, price in entry.items():
                if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price < _INF:
                    raise self.fail(f"{where}.{side} must be a price in USD per million tokens (a number, "
                                    f"0 or more), not {_show(price)}", f"{where}.{side}", *hints)


def param_problem(name: str, value: Any) -> str:
    """Why `value` cannot be a binding's params.NAME (a sentence starting with NAME), or "".
    A request field takes the check every call makes (prepare.field_problem); any other key is
    passed to the provider as an extra parameter, so it must be something JSON can carry."""
    if name in ("model", "messages"):
        return f"{name} cannot be set in a binding (the alias and the call give it)"
    if name in REQUEST_FIELDS:
        problem = field_problem(name, value)
        if problem:
            return problem if problem.startswith(name) else f"{name}: {problem}"
    bad = _unsendable(value)
    return f"{name} holds {bad}, which cannot be sent to an API as JSON" if bad else ""


def _unsendable(value: Any) -> str:
    """The first value in `value` that JSON cannot carry (nan, inf, a TOML date), or ""."""
    if isinstance(value, float) and not -_INF < value < _INF:  # nan and inf
        return repr(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return next((bad for bad in map(_unsendable, value) if bad), "")
    if not isinstance(value, (str, int, float)):
        return f"a {type(value).__name__}"
    return ""


def _joined(rx: re.Pattern) -> re.Pattern:
    """rx, then any number of newline + rx: many names checked in one match (the hot path)."""
    return re.compile(rf"{rx.pattern}(?:\n{rx.pattern})*")


_ALIASES, _PLAIN_REFS = _joined(ALIAS_NAME), _joined(PLAIN_REF)


def _all_match(joined: re.Pattern, items: list) -> bool:
    """Whether every item is a string that the pattern _joined() was made from matches whole.
    An item with a newline in it fails: it would read as two."""
    try:
        text = "\n".join(items)
    except TypeError:  # not all strings
        return False
    return text.count("\n") == len(items) - 1 and joined.fullmatch(text) is not None


def _distinct(models: list) -> bool:
    try:
        return len(set(models)) == len(models)
    except TypeError:  # a table or list among them: checked_binding says so
        return False


def _key_line(key: str) -> str:
    """A hint for line_of: `key = ...`, or a `[...key]` table header."""
    return rf"^\s*{re.escape(key)}\s*=|^\s*\[+[^\]]*\.{re.escape(key)}\s*\]"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value.strip() else "an empty string"
    return f"{type(value).__name__} {value!r}"[:60]


def _stamp(value: Any) -> Optional[str]:
    if value is None:
        return None
    if hasattr(value, "isoformat"):  # TOML dates and times written by other tools
        return value.isoformat()
    return str(value)
