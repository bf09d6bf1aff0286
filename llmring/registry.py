"""The model registry: prices, context windows, capabilities and lifecycle of known models.

A curated snapshot ships in llmring/data/registry.json. `llmring registry update` fetches a
newer one (https, or file:// for offline use) into the user cache; a cache that is corrupt or
missing falls back to the bundled snapshot with a warning.

    python -m llmring.registry build registry-facts.csv > llmring/data/registry.json
re-curates the snapshot from a registry CSV export (llmring/curation.py, with the editorial
data in llmring/data/curation.json).
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, Optional

import attrs

from .exceptions import ConfigurationError

BUNDLED = Path(__file__).parent / "data" / "registry.json"
ENV_URL = "LLMRING_REGISTRY_URL"
ENV_CACHE = "LLMRING_CACHE_DIR"
MAX_BYTES = 5 * 1024 * 1024
CAPABILITIES = ("tools", "vision", "json_mode", "json_schema", "streaming", "caching", "reasoning",
                "thinking", "temperature")

@attrs.define
class ModelInfo:
    provider: str
    name: str
    display_name: str = ""
    aliases: list[str] = attrs.field(factory=list)  # floating names that point at this model
    input_price: Optional[float] = None  # USD per million tokens
    output_price: Optional[float] = None
    cache_read_price: Optional[float] = None
    cache_write_price: Optional[float] = None
    context_window: Optional[int] = None
    max_output: Optional[int] = None
    capabilities: list[str] = attrs.field(factory=list)
    family: Optional[str] = None
    mode: str = "chat"  # chat, embedding, audio, realtime, image, tts
    release_date: Optional[str] = None
    deprecation_date: Optional[str] = None
    active: bool = True
    successor: Optional[str] = None

    @property
    def ref(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def dated(self) -> bool:
        """A dated snapshot (claude-3-5-haiku-20241022, gpt-4o-2024-08-06) rather than a floating name."""
        import re

        return bool(re.search(r"(19|20)\d\d-?[01]\d-?[0-3]\d$", self.name))

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def deprecated(self, today: Optional[date] = None) -> bool:
        if not self.deprecation_date:
            return False
        return date.fromisoformat(self.deprecation_date) <= (today or date.today())


@attrs.define
class Registry:
    version: str
    models: list
    source: str = "bundled"
    _index: dict = attrs.field(factory=dict, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        for m in self.models:
            self._index.setdefault((m.provider, m.name), m)
        for m in self.models:  # floating names last: an exact row wins
            for alias in m.aliases:
                self._index.setdefault((m.provider, alias), m)

    def find(self, ref: str) -> Optional[ModelInfo]:
        provider, _, name = ref.partition(":")
        return self._index.get((provider, name)) or self._index.get((provider, name.lower()))

    def for_provider(self, provider: Optional[str] = None, include_inactive: bool = True) -> list:
        """Models, active ones first, newest generation first within each group (many rows
        have no release date, so the generation a name states leads)."""
        rows = [m for m in self.models if (provider is None or m.provider == provider)
                and (include_inactive or m.active)]
        return sorted(rows, key=lambda m: (not m.active, m.provider, -_version(m.name), -_day(m.release_date),
                                           m.name))

    def closest(self, ref: str, n: int = 3) -> list:
        import difflib

        provider, _, name = ref.partition(":")
        names = [m.name for m in self.models if m.provider == provider]
        names += [a for m in self.models if m.provider == provider for a in m.aliases]
        return [f"{provider}:{c}" for c in difflib.get_close_matches(name, sorted(set(names)), n=n, cutoff=0.5)]

    def providers(self) -> list:
        return sorted({m.provider for m in self.models})

    def to_json(self) -> dict:
        return {"version": self.version, "models": [_converter().unstructure(m) for m in self.models]}


def _version(name: str) -> float:
    """The generation a name states (gpt-5.6 -> 5.6, claude-opus-4-5 -> 4.5, gemini-2.5 -> 2.5),
    to list undated models newest first; 0 when it states none."""
    import re

    m = re.search(r"(?<![\d.])(\d{1,2})(?:[.-](\d)(?!\d))?", name)
    return float(f"{m.group(1)}.{m.group(2) or 0}") if m else 0.0


def _day(value: Optional[str]) -> int:
    try:
        return date.fromisoformat(value).toordinal() if value else 0
    except ValueError:
        return 0


# -- cost -------------------------------------------------------------------------------------

def cost(info: Optional[ModelInfo], usage: Any) -> tuple:
    """(USD or None, why None) for a response's usage at the model's prices."""
    if usage is None:
        return None, "the provider reported no token usage"
    if info is None:
        return None, "the model has no price in the registry"
    if info.input_price is None or info.output_price is None:
        return None, f"{info.ref} has no price in the registry"
    usd = (usage.input_tokens * info.input_price + usage.output_tokens * info.output_price) / 1_000_000
    return round(usd, 10), None


# -- loading ----------------------------------------------------------------------------------

_lock = threading.Lock()
_loaded: Optional[Registry] = None


def _after_fork() -> None:
    # A fork while another thread was loading: that thread does not exist in the child, so
    # the lock it held would never be released there.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def cache_path() -> Path:
    base = os.environ.get(ENV_CACHE) or os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    sub = "" if os.environ.get(ENV_CACHE) else "llmring"
    return Path(base) / sub / "registry.json"


def load(refresh: bool = False) -> Registry:
    """The registry: the user cache when valid, else the bundled snapshot (once per process).
    An unusable cache is one warning on the `llmring.registry` logger (stderr when the
    application configured no logging), never an exception."""
    global _loaded
    with _lock:
        if _loaded is not None and not refresh:
            return _loaded
        cached = cache_path()
        if cached.exists():
            try:
                _loaded = parse(_read(cached), source=str(cached))
                return _loaded
            except (OSError, ValueError) as e:
                import logging  # only on this failure path: start-up does not pay for it

                reason = e.strerror if isinstance(e, OSError) and e.strerror else e
                logging.getLogger(__name__).warning(
                    "The cached registry %s is unusable (%s); using the bundled snapshot. "
                    "Run `llmring registry update` to fetch a fresh one.", cached, reason)
        _loaded = _bundled()
        return _loaded


def _read(path: Path) -> bytes:
    """A regular file's bytes, reading at most one byte past MAX_BYTES (parse refuses those).
    Opened without blocking and checked first: a FIFO or device would never end."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read(MAX_BYTES + 1)


def _bundled() -> Registry:
    # The snapshot ships with llmring and a test checks it against the strict parser, so the
    # first call need not import cattrs (46 ms) to read it.
    doc = json.loads(BUNDLED.read_bytes())
    return Registry(doc["version"], [ModelInfo(**raw) for raw in doc["models"]], "bundled")


def parse(data: bytes, source: str = "") -> Registry:
    """Validate a registry document; ValueError says what is wrong."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"it is larger than {MAX_BYTES // 1024 // 1024} MiB")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ValueError(f"it is not JSON ({e})") from None
    except RecursionError:
        raise ValueError("it is JSON nested too deeply to be a registry") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list) or not doc.get("version"):
        raise ValueError('it needs "version" and a "models" list')
    import cattrs

    converter = _converter()
    models = []
    for i, raw in enumerate(doc["models"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("provider"), str) or not isinstance(
                raw.get("name"), str):
            raise ValueError(f"model #{i} needs a provider and a name")
        try:
            info = converter.structure(raw, ModelInfo)
        except Exception as e:  # noqa: BLE001 - cattrs' validation errors, told plainly
            where = "; ".join(cattrs.transform_error(e, path=f"{raw['provider']}:{raw['name']}",
                                                     format_exception=_say)) \
                if isinstance(e, cattrs.BaseValidationError) else str(e)
            raise ValueError(where) from None
        problem = _impossible(info)
        if problem:
            raise ValueError(f"{info.ref}: {problem}")
        models.append(info)
    if not models:
        raise ValueError("it lists no models")
    return Registry(str(doc["version"]), models, source)


def _converter() -> Any:
    """cattrs, strict about types: a list is not a string, a count is a whole number."""
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=False)

    def strict(kind: type) -> Any:
        def structure(value: Any, _: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"expected {kind.__name__ if isinstance(kind, type) else 'a number'}, "
                                 f"not {value!r}")
            return value
        return structure

    converter.register_structure_hook(str, strict(str))
    converter.register_structure_hook(int, strict(int))
    converter.register_structure_hook(float, lambda v, _: float(strict((int, float))(v, _)))
    converter.register_structure_hook(bool, lambda v, _: v if isinstance(v, bool) else strict(bool)(v, _))
    converter.register_structure_hook_func(lambda t: t == list[str],
                                           lambda v, _: [strict(str)(x, _) for x in strict(list)(v, _)])
    return converter


def _say(exc: BaseException, _type: Any) -> str:
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _impossible(m: ModelInfo) -> str:
    for label, price in (("input price", m.input_price), ("output price", m.output_price)):
        if price is not None and (not isinstance(price, (int, float)) or price < 0 or price > 10_000):
            return f"{label} {price!r} is not a plausible USD per million tokens"
    for label, n in (("context window", m.context_window), ("max output", m.max_output)):
        if n is not None and (not isinstance(n, int) or n <= 0 or n > 100_000_000):
            return f"{label} {n!r} is not a plausible token count"
    if m.context_window and m.max_output and m.mode == "chat" and m.max_output > m.context_window:
        return f"max output {m.max_output} exceeds the context window {m.context_window}"
    for label, d in (("release date", m.release_date), ("deprecation date", m.deprecation_date)):
        if d is not None:
            try:
                date.fromisoformat(d)
            except (TypeError, ValueError):
                return f"{label} {d!r} is not YYYY-MM-DD"
    return ""


def update(url: Optional[str] = None, timeout: float = 30.0) -> Registry:
    """Fetch a registry document, validate it, and atomically replace the user cache."""
    url = url or os.environ.get(ENV_URL)
    if not url:
        raise ConfigurationError(f"No registry URL: pass one or set {ENV_URL}.")
    data = _fetch(url, timeout)
    try:
        registry = parse(data, source=url)
    except ValueError as e:
        raise ConfigurationError(f"The registry at {url} is not usable: {e}. The cache was left as it was.") from None
    from .files import atomic_write

    try:
        atomic_write(cache_path(), data)
    except OSError as e:
        raise ConfigurationError(f"Cannot save the registry to {cache_path()} ({e.strerror or e}); set "
                                 f"{ENV_CACHE} to a folder you can write to.") from None
    load(refresh=True)
    return registry


MAX_REDIRECTS = 5


def _fetch(url: str, timeout: float) -> bytes:
    """The document at an https:// or local file:// URL, at most MAX_BYTES, within `timeout` s."""
    from urllib.parse import unquote, urlparse

    if url.startswith("file://"):
        parts = urlparse(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError(f"The registry URL {url!r} names the host {parts.netloc!r}; a file:// URL "
                                     "must be a local path (file:///path/to/registry.json).")
        path = Path(unquote(parts.path))
        try:
            return _read(path)
        except OSError as e:
            raise ConfigurationError(f"Cannot read the registry file {path}: {e.strerror}.") from None
    if not url.startswith("https://"):
        raise ConfigurationError(f"Registry URLs must be https:// (or file:// for a local copy), not {url!r}.")
    return _download(url, timeout)


def _download(url: str, timeout: float) -> bytes:
    """GET `url` within `timeout` seconds in all, whatever the server does: the request runs in
    a worker thread the caller stops waiting for (a server dripping its headers one byte at a
    time never trips a socket timeout). A late worker's bytes are dropped, never written."""
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["data"] = _get(url, timeout, time.monotonic() + timeout)
        except Exception as e:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = e

    worker = threading.Thread(target=work, name="llmring-registry-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" in outcome:
        raise outcome["error"]
    if "data" not in outcome:
        raise ConfigurationError(f"The registry at {url} did not arrive within {timeout:g} s; "
                                 "the bundled snapshot stays in use. Try again later.")
    return outcome["data"]


def _get(url: str, timeout: float, deadline: float) -> bytes:
    import requests

    try:
        with requests.Session() as session:
            for _ in range(MAX_REDIRECTS + 1):
                with session.get(url, timeout=(min(10.0, timeout), timeout), stream=True,
                                 allow_redirects=False) as r:
                    if r.is_redirect:
                        url = redirect_target(url, r.headers["location"])
                        continue
                    if r.status_code != 200:
                        raise ConfigurationError(f"The registry at {url} answered HTTP {r.status_code}; "
                                                 "try again later.")
                    return _body(r, url, deadline)
    except requests.RequestException as e:
        raise ConfigurationError(f"Could not fetch the registry from {url} ({type(e).__name__}); "
                                 "the bundled snapshot stays in use.") from None
    raise ConfigurationError(f"The registry at {url} redirects more than {MAX_REDIRECTS} times; refusing it.")


def redirect_target(url: str, location: str) -> str:
    """Where a redirect from `url` leads; refused unless it stays on https, so a redirect cannot
    downgrade "https only" to plain http (or to another scheme)."""
    from urllib.parse import urljoin

    target = urljoin(url, location)
    if not target.startswith("https://"):
        raise ConfigurationError(f"The registry at {url} redirects to {target}, which is not https; refusing it.")
    return target


def _body(r: Any, url: str, deadline: float) -> bytes:
    # read1 (urllib3 2) returns what has arrived, so the deadline is checked between pieces
    # even when the server sends one byte at a time.
    read = getattr(r.raw, "read1", None) or r.raw.read
    data = bytearray()
    while time.monotonic() < deadline:
        chunk = read(65536, decode_content=True)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > MAX_BYTES:
            raise ConfigurationError(f"The registry at {url} is larger than {MAX_BYTES // 2**20} MiB; refusing it.")
    raise ConfigurationError(f"The registry at {url} did not arrive in time; the bundled snapshot stays in use.")


if __name__ == "__main__":  # python -m llmring.registry build FILE.csv [VERSION]
    from .curation import main

    main(sys.argv[1:])
