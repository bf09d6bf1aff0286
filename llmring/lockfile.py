"""llmring.lock: the model, reading and validating TOML, writing atomically, finding the file.

Reading validates everything a user can get wrong and raises LockfileError naming the file,
the line where it can be found, and the key. Writing is read-modify-write under an
inter-process lock, to a temporary file that atomically replaces the old one, so concurrent
edits never lose a binding and a crash never leaves half a file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional, Union

import attrs

from .exceptions import LockfileError
from .files import atomic_write
from .refs import alias_problem, ref_problem

FILENAME = "llmring.lock"
ENV_PATH = "LLMRING_LOCKFILE_PATH"
ENV_PROFILE = "LLMRING_PROFILE"
BUNDLED = Path(__file__).parent / "data" / FILENAME
FORMAT_VERSION = "1.0"

PathLike = Union[str, "os.PathLike[str]"]


@attrs.define
class Binding:
    alias: str
    models: list
    description: Optional[str] = None
    params: dict = attrs.field(factory=dict)
    requires: list = attrs.field(factory=list)


@attrs.define
class Profile:
    name: str
    bindings: list = attrs.field(factory=list)
    registry_versions: dict = attrs.field(factory=dict)

    _positions: dict = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def _position(self, alias: str) -> Optional[int]:
        """Where the alias's binding is: an index checked on use and rebuilt when the list was
        changed behind it, so lookups stay O(1) on lockfiles with thousands of aliases."""
        i = self._positions.get(alias)
        if i is not None and i < len(self.bindings) and self.bindings[i].alias == alias:
            return i
        if i is None and len(self._positions) == len(self.bindings):
            return None
        self._positions = {b.alias: n for n, b in enumerate(self.bindings)}
        return self._positions.get(alias)

    def get(self, alias: str) -> Optional[Binding]:
        i = self._position(alias)
        return None if i is None else self.bindings[i]

    def bind(self, binding: Binding) -> None:
        """Replace the alias's binding in place (keeping its position) or append it."""
        i = self._position(binding.alias)
        if i is None:
            self.bindings.append(binding)
        else:
            self.bindings[i] = binding

    def rebind(self, alias: str, models: list, description: Optional[str] = None,
               params: Optional[dict] = None, requires: Optional[list] = None) -> Binding:
        """Bind `alias` to `models`; a description, params or requires not given are kept
        from the alias's old binding."""
        old = self.get(alias)
        binding = Binding(alias, list(models),
                          description if description is not None else (old.description if old else None),
                          params if params is not None else (dict(old.params) if old else {}),
                          requires if requires is not None else (list(old.requires) if old else []))
        self.bind(binding)
        return binding

    def unbind(self, alias: str) -> bool:
        before = len(self.bindings)
        self.bindings = [b for b in self.bindings if b.alias != alias]
        return len(self.bindings) != before


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
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    path: Optional[Path] = attrs.field(default=None, eq=False)

    @classmethod
    def new(cls, path: Optional[Path] = None) -> Lockfile:
        now = _now()
        return cls(profiles={"default": Profile("default")}, created_at=now, updated_at=now, path=path)

    def profile(self, name: str, create: bool = False) -> Profile:
        if name not in self.profiles:
            if not create:
                raise LockfileError(
                    f"profile {name!r} is not in the lockfile; its profiles are "
                    f"{', '.join(sorted(self.profiles)) or 'none'} (check --profile or LLMRING_PROFILE)",
                    path=_str(self.path))
            self.profiles[name] = Profile(name)
        return self.profiles[name]

    def find(self, alias: str, profile: str) -> Optional[tuple]:
        """(binding, profile name it came from): the profile first, then the default profile."""
        for name in dict.fromkeys((profile, self.default_profile)):
            p = self.profiles.get(name)
            b = p.get(alias) if p else None
            if b is not None:
                return b, name
        return None

    def to_toml(self) -> str:
        return dumps(self)

    def to_dict(self) -> dict:
        """The lockfile as plain data (for --json output and tools), via cattrs."""
        return converter().unstructure(self)

    @classmethod
    def from_toml(cls, text: str, path: Optional[PathLike] = None) -> Lockfile:
        return parse(text, path)

    @classmethod
    def from_dict(cls, data: dict, path: Optional[PathLike] = None) -> Lockfile:
        """Validate plain data (as to_dict gives, or TOML parsed elsewhere) into a Lockfile."""
        return _Validator("", _str(path)).lockfile(data)


def converter() -> Any:
    """A cattrs converter for the lockfile model. Reading does not use it: the validator
    reports problems by line and key, which structuring errors cannot."""
    import cattrs
    from cattrs.gen import make_dict_unstructure_fn, override

    conv = cattrs.Converter()
    conv.register_unstructure_hook(Lockfile, make_dict_unstructure_fn(
        Lockfile, conv, path=override(omit=True), _cattrs_omit_if_default=False))
    conv.register_unstructure_hook(Profile, make_dict_unstructure_fn(
        Profile, conv, _positions=override(omit=True)))
    return conv


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _str(path: Optional[PathLike]) -> Optional[str]:
    return os.fspath(path) if path is not None else None


# -- reading ------------------------------------------------------------------------------

_TOP = ("version", "default_profile", "profiles", "providers", "metadata", "created_at", "updated_at")
_PROFILE = ("name", "bindings", "registry_versions")
_BINDING = ("alias", "models", "description", "params", "requires")
_ENDPOINT = ("type", "base_url", "api_key_env")


def _toml_loads(text: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    return tomllib.loads(text)


def read(path: PathLike) -> Lockfile:
    """Read and validate a lockfile."""
    return parse(_read_text(Path(path)), path)


def _read_text(p: Path) -> str:
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
    where = _str(path)
    try:
        data = _toml_loads(text)
    except Exception as e:  # tomllib.TOMLDecodeError, and ValueErrors from odd input
        msg = str(e)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(m.group(1)) if m else None
        if line is None and "(at end of document)" in msg:  # e.g. an unclosed list
            line = max(len(text.splitlines()), 1)
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg) or "invalid TOML"
        raise LockfileError(f"is not valid TOML: {msg}; fix the syntax there", path=where, line=line) from None
    return _Validator(text, where).lockfile(data)


class _Validator:
    def __init__(self, text: str, path: Optional[str]) -> None:
        self.lines = text.splitlines()
        self.path = path

    def fail(self, message: str, key: str, *hints: str) -> LockfileError:
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

    def keys(self, table: dict, allowed: tuple, where: str, *hints: str) -> None:
        for key in table:
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; allowed keys: {', '.join(allowed)}"
                raise self.fail(f"unknown key {key!r} in {where}{hint}", key, *hints,
                                rf"^\s*{re.escape(key)}\s*=|^\s*\[+[^\]]*\b{re.escape(key)}\b")

    def typed(self, value: Any, kind: type, key: str, what: str, *hints: str) -> Any:
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
        default = self.typed(data.get("default_profile", "default"), str, "default_profile", "",
                             r"^\s*default_profile\s*=")
        # Only a default_profile the file names must exist: without one, profiles such as the
        # seed's us-west / eu-central are chosen by --profile or LLMRING_PROFILE.
        if "default_profile" in data and profiles and default not in profiles:
            raise self.fail(f"default_profile {default!r} names no profile; the profiles are "
                            f"{', '.join(sorted(profiles))}", "default_profile", r"^\s*default_profile\s*=")
        providers = {n: self.endpoint(n, raw) for n, raw in
                     self.typed(data.get("providers", {}), dict, "providers", "", r"^\s*\[providers").items()}
        meta = self.typed(data.get("metadata", {}), dict, "metadata", "", r"^\s*\[metadata")
        stamps = {k: _stamp(data.get(k)) for k in ("created_at", "updated_at")}
        return Lockfile(version=version, default_profile=default, profiles=profiles, providers=providers,
                        metadata=meta, path=Path(self.path) if self.path else None, **stamps)

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
        bindings: list = []
        seen: dict = {}
        for i, b in enumerate(bindings_raw):
            binding = self.binding(name, i, b)
            if binding.alias in seen:
                raise self.fail(f"alias {binding.alias!r} is bound twice in profile {name!r}; "
                                "keep one binding and list its fallbacks in its models",
                                f"profiles.{name}.bindings", hdr,
                                *[rf"^\s*alias\s*=\s*[\"']{re.escape(binding.alias)}[\"']"] * 2)
            seen[binding.alias] = i
            bindings.append(binding)
        versions = self.typed(raw.get("registry_versions", {}), dict, f"profiles.{name}.registry_versions",
                              where, hdr, _key_line("registry_versions"))
        return Profile(name, bindings, versions)

    def binding(self, profile: str, index: int, raw: Any) -> Binding:
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
        if "models" not in raw:
            raise self.fail(f"alias {alias!r} in profile {profile!r} has no models; "
                            "add models = [\"provider:model\"]", f"{key}.models", *hints)
        models = self.typed(raw["models"], list, "models", where + ', e.g. models = ["openai:gpt-4o-mini"]',
                            *hints, r"^\s*models\s*=")
        if not models:
            raise self.fail(f"models is empty{where}; list at least one provider:model",
                            f"{key}.models", *hints, r"^\s*models\s*=")
        for ref in models:
            problem = ref_problem(ref)
            if problem:
                raise self.fail(f"{problem} ({where.strip()})", f"{key}.models", *hints,
                                re.escape(str(ref)) if isinstance(ref, str) and ref else r"^\s*models\s*=")
        models = [m.strip() for m in models]
        dupes = sorted({m for m in models if models.count(m) > 1})
        if dupes:
            raise self.fail(f"models lists {', '.join(dupes)} twice{where}", f"{key}.models", *hints,
                            _key_line("models"))
        description = raw.get("description")
        if description is not None:
            self.typed(description, str, "description", where, *hints, _key_line("description"))
        params = self.typed(raw.get("params", {}), dict, "params", where, *hints, _key_line("params"))
        requires = self.typed(raw.get("requires", []), list, "requires", where, *hints, _key_line("requires"))
        for cap in requires:
            self.typed(cap, str, "each entry of requires", where, *hints, _key_line("requires"))
        return Binding(alias, models, description, params, requires)

    def endpoint(self, name: str, raw: Any) -> Endpoint:
        hdr = rf"^\s*\[providers\.\"?{re.escape(name)}\"?\]"
        key = f"providers.{name}"
        raw = self.typed(raw, dict, key, "", hdr)
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise self.fail(f"provider name {name!r} must be lower-case letters, digits, '-' or '_'", key, hdr)
        if "type" not in raw:
            raise self.fail(f"[{key}] needs type = \"openai\" (the API it speaks)", f"{key}.type", hdr)
        fields = {k: self.typed(raw[k], str, f"{key}.{k}", "", hdr) for k in _ENDPOINT if k in raw}
        base = fields.get("base_url")
        if base is not None and not re.match(r"^https?://[^\s/]+", base):
            raise self.fail(f"{key}.base_url must be an http(s) URL, not {base!r}", f"{key}.base_url", hdr,
                            r"^\s*base_url\s*=")
        options = {k: v for k, v in raw.items() if k not in _ENDPOINT}
        return Endpoint(options=options, **fields)


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


# -- writing ------------------------------------------------------------------------------

def dumps(lf: Lockfile) -> str:
    """The file as a person would write it: a stable order, one table per binding, a
    one-model list on one line and a list of fallbacks one model per line."""
    parts = [head_toml(lf)]
    if lf.metadata:
        parts.append(table_toml({"metadata": lf.metadata}))
    parts += [endpoint_toml(name, e) for name, e in lf.providers.items()]
    for name, p in lf.profiles.items():
        parts.append(profile_toml(name, p))
        parts += [_binding_toml(_key(name), b) for b in p.bindings]
    return "\n".join(parts)


def head_toml(lf: Lockfile) -> str:
    head: dict = {"version": lf.version}
    if lf.default_profile != "default" or "default" in lf.profiles or not lf.profiles:
        head["default_profile"] = lf.default_profile  # else it is implicit, as it was read
    head.update({k: getattr(lf, k) for k in ("created_at", "updated_at") if getattr(lf, k) is not None})
    return table_toml(head)


def table_toml(data: dict) -> str:
    import tomli_w

    return tomli_w.dumps(data)


def endpoint_toml(name: str, e: Endpoint) -> str:
    fields = {k: v for k, v in (("type", e.type), ("base_url", e.base_url), ("api_key_env", e.api_key_env))
              if v is not None}
    return table_toml({"providers": {name: {**fields, **e.options}}})


def profile_toml(name: str, p: Profile) -> str:
    lines = [f"[profiles.{_key(name)}]", f"name = {_value(name)}"]
    if p.registry_versions:
        lines.append(f"registry_versions = {_value(p.registry_versions)}")
    return "\n".join(lines) + "\n"


def _binding_toml(profile_key: str, b: Binding) -> str:
    if len(b.models) == 1:
        models = _value(b.models)
    else:
        models = "[\n" + "".join(f"    {_value(m)},\n" for m in b.models) + "]"
    lines = [f"[[profiles.{profile_key}.bindings]]", f"alias = {_value(b.alias)}", f"models = {models}"]
    if b.description:
        lines.append(f"description = {_value(b.description)}")
    if b.requires:
        lines.append(f"requires = {_value(b.requires)}")
    if b.params:
        lines.append(f"params = {_value(b.params)}")
    return "\n".join(lines) + "\n"


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE.fullmatch(name) else _value(name)


def _value(v: Any) -> str:
    """One TOML value, inline (tables as { k = v })."""
    import json
    import math
    from datetime import date, time

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        # JSON string escapes are valid TOML basic strings; TOML also wants DEL escaped.
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, (date, time)):  # TOML dates, datetimes and times, as tomllib reads them
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"a lockfile cannot hold {type(v).__name__} values such as {v!r}; TOML has no null")


def write(lf: Lockfile, path: PathLike) -> None:
    """Write atomically: readers see the old file or the new one, never a half-written one."""
    p = Path(path)
    atomic_write(p, lf.to_toml().encode("utf-8"))
    lf.path = p


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An inter-process lock for edits of `path`, kept in the temp dir (no clutter beside it)."""
    import hashlib
    import tempfile

    digest = hashlib.sha1(os.fspath(path.resolve()).encode()).hexdigest()[:20]
    lock_path = Path(tempfile.gettempdir()) / f"llmring-{digest}.lck"
    if lock_path.exists() and not os.access(lock_path, os.W_OK):
        # Another user's lock file for the same path: lock among this user's runs instead.
        lock_path = lock_path.with_name(f"llmring-{digest}-{getattr(os, 'getuid', lambda: 0)()}.lck")
    with open(lock_path, "a+b") as f:
        if os.name == "nt":  # pragma: no cover
            import msvcrt

            f.seek(0)
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def edit(path: PathLike, change: Callable[[Lockfile], Any], create: bool = False) -> Any:
    """Read-modify-write `path` under the lock: `change(lockfile)` edits it in place and its
    result is returned. With `create`, a missing file starts as a new lockfile. Tables the
    change did not touch keep their text, comments included."""
    p = Path(path)
    with locked(p):
        old_text = _read_text(p) if p.exists() or not create else None
        lf = parse(old_text, p) if old_text is not None else Lockfile.new(p)
        before = _snapshot(lf)
        result = change(lf)
        lf.updated_at = _now()
        try:
            text = _render(lf, old_text, before)
        except TypeError as e:  # a value TOML cannot hold, such as None
            raise LockfileError(f"was not changed: {e}", path=str(p)) from None
        atomic_write(p, text.encode("utf-8"))
        lf.path = p
    return result


def _render(lf: Lockfile, old_text: Optional[str], before: Lockfile) -> str:
    """The new text, checked by parsing it back: a bad edit never lands, and a kept block
    that would not read back as intended falls back to the normal form."""
    from .preserve import rewrite

    text = rewrite(old_text, before, lf) if old_text is not None else None
    if text is not None:
        try:
            if parse(text) == lf:
                return text
        except LockfileError:
            pass
    text = dumps(lf)
    try:
        parse(text)
    except LockfileError as e:  # its line numbers are the new text's: leave them out
        raise LockfileError(f"was not changed, because the edit would make it invalid: {e}",
                            path=_str(lf.path), key=e.key) from None
    return text


def _snapshot(lf: Lockfile) -> Lockfile:
    """What `lf` holds now, cheaply: edits replace bindings and lists rather than mutate them."""
    import copy

    profiles = {n: Profile(p.name, list(p.bindings), dict(p.registry_versions)) for n, p in lf.profiles.items()}
    return attrs.evolve(lf, profiles=profiles, providers=dict(lf.providers), metadata=copy.deepcopy(lf.metadata))


# -- finding ------------------------------------------------------------------------------

@attrs.define
class Located:
    path: Path
    source: str  # "explicit", "env", "cwd" or "bundled"


def locate(explicit: Optional[PathLike] = None, env: Optional[dict] = None) -> Located:
    """Resolution order: explicit path (must exist) > LLMRING_LOCKFILE_PATH (must exist) >
    ./llmring.lock > the bundled lockfile (for llmring's own tools)."""
    environ = os.environ if env is None else env
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise LockfileError(_missing(p, "check lockfile_path / --file, or create it with "
                                            f"`llmring lock init --file {p}`"), path=str(p))
        return Located(p, "explicit")
    if environ.get(ENV_PATH):
        p = Path(environ[ENV_PATH])
        if not p.is_file():
            raise LockfileError(f"named by {ENV_PATH} {_missing(p, 'fix the variable or unset it')}",
                                path=str(p))
        return Located(p, "env")
    here = Path.cwd() / FILENAME
    if here.is_file():
        return Located(here, "cwd")
    return Located(BUNDLED, "bundled")


def _missing(p: Path, remedy: str) -> str:
    if p.is_dir():
        return "is a directory, not a lockfile; give the path of the lockfile itself"
    return f"does not exist; {remedy}"


def choose_profile(lf: Lockfile, profile: Optional[str] = None, env: Optional[dict] = None) -> str:
    """explicit > LLMRING_PROFILE > the file's default_profile."""
    environ = os.environ if env is None else env
    return profile or environ.get(ENV_PROFILE) or lf.default_profile
