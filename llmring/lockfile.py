"""llmring.lock: finding, reading and editing the file; the names most code needs.

The model is in lockmodel, reading and validation in lockread, the normal-form writer in
lockwrite, and the comment-keeping rewrite in preserve; this module ties them together.
Writing is read-modify-write under an inter-process lock, to a temporary file that
atomically replaces the old one, so concurrent edits never lose a binding and a crash never
leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

import attrs

from . import files
from .exceptions import LockfileError
from .files import atomic_write, read_only, target
from .lockmodel import (
    FORMAT_VERSION,
    Binding,
    Bindings,
    Endpoint,
    Lockfile,
    PathLike,
    Profile,
    as_str,
    converter,
    now_stamp,
)
from .lockread import BOM, parse, read, read_text
from .lockwrite import dumps

__all__ = ["FORMAT_VERSION", "FILENAME", "ENV_PATH", "ENV_PROFILE", "BUNDLED", "PathLike", "Binding", "Bindings",
           "Endpoint", "Lockfile", "Profile", "converter", "parse", "read", "dumps", "write", "edit", "preview",
           "locked", "Located", "locate", "choose_profile"]

FILENAME = "llmring.lock"
ENV_PATH = "LLMRING_LOCKFILE_PATH"
ENV_PROFILE = "LLMRING_PROFILE"
BUNDLED = Path(__file__).parent / "data" / FILENAME


# -- writing ------------------------------------------------------------------------------

def write(lf: Lockfile, path: PathLike) -> None:
    """Write atomically: readers see the old file or the new one, never a half-written one."""
    p = Path(path)
    with _writing(p):
        atomic_write(target(p), lf.to_toml().encode("utf-8"))
    lf.path = p


def edit(path: PathLike, change: Callable[[Lockfile], Any], create: bool = False) -> Any:
    """Read-modify-write `path` under the lock: `change(lockfile)` edits it in place and its
    result is returned. With `create`, a missing file starts as a new lockfile. Tables the
    change did not touch keep their text, comments included, and the file keeps its line
    ends and byte-order mark. A symlink stays a link: the file it points to is edited."""
    p = Path(path)
    real = target(p)
    with locked(p):
        if real.exists() and read_only(real):
            raise LockfileError(f"is read-only, so it was not changed; make it writable (chmod u+w {p}) "
                                "and try again", path=str(p))
        result, data = _edited(p, real, change, create, stamp=True)
        atomic_write(real, data)
    return result


def preview(path: PathLike, change: Callable[[Lockfile], Any], create: bool = False) -> str:
    """The text `edit(path, change, create)` would write now (with updated_at as it is, so a
    diff shows only the change), without writing anything."""
    p = Path(path)
    return _edited(p, target(p), change, create, stamp=False)[1].decode("utf-8")


def _edited(p: Path, real: Path, change: Callable[[Lockfile], Any], create: bool, stamp: bool) -> tuple:
    """(change's result, the new file's bytes)."""
    old_text = read_text(real) if real.exists() or not create else None
    style = _Style.of(old_text or "")
    old_text = style.normalise(old_text) if old_text is not None else None
    lf = parse(old_text, p) if old_text is not None else Lockfile.new(p)
    before = _snapshot(lf)
    result = change(lf)
    if stamp:
        lf.updated_at = now_stamp()
    try:
        text = _render(lf, old_text, before)
    except TypeError as e:  # a value TOML cannot hold, such as None
        raise LockfileError(f"was not changed: {e}", path=str(p)) from None
    lf.path = p
    return result, style.apply(text).encode("utf-8")


@contextmanager
def locked(path: PathLike) -> Iterator[None]:
    """The inter-process lock for edits of the lockfile at `path` (through a symlink, of its
    target); an OSError inside is a LockfileError naming the file."""
    p = Path(path)
    with _writing(p), files.locked(target(p)):
        yield


@contextmanager
def _writing(p: Path) -> Iterator[None]:
    """An OSError while editing or writing (no such folder, a file where a folder should be,
    a full disk) as one sentence that names the file."""
    try:
        yield
    except OSError as e:
        raise LockfileError(f"could not be written ({e.strerror or e}), so it is unchanged; check that its folder "
                            "exists, is writable and has space", path=str(p)) from None


class _Style:
    """What an edit keeps of the file's bytes beyond TOML: a byte-order mark, CRLF line ends."""

    def __init__(self, bom: bool, crlf: bool) -> None:
        self.bom, self.crlf = bom, crlf

    @classmethod
    def of(cls, text: str) -> _Style:
        crlf = text.count("\r\n")
        return cls(text.startswith(BOM), crlf > 0 and crlf * 2 >= text.count("\n"))

    def normalise(self, text: str) -> str:
        return text[len(BOM):].replace("\r\n", "\n") if self.bom else text.replace("\r\n", "\n")

    def apply(self, text: str) -> str:
        return (BOM if self.bom else "") + (text.replace("\n", "\r\n") if self.crlf else text)


def _render(lf: Lockfile, old_text: Optional[str], before: Lockfile) -> str:
    """The new text, checked by parsing it back: a bad edit never lands, and a kept block
    that would not read back as intended falls back to the normal form."""
    from .preserve import rewrite

    text = rewrite(old_text, before, lf) if old_text is not None else None
    if text is not None:
        try:
            if _same(parse(text), lf):
                return text
        except LockfileError:
            pass
    text = dumps(lf)
    try:
        parse(text)
    except LockfileError as e:  # its line numbers are the new text's: leave them out
        raise LockfileError(f"was not changed, because the edit would make it invalid: {e}",
                            path=as_str(lf.path), key=e.key) from None
    return text


def _same(a: Lockfile, b: Lockfile) -> bool:
    """Equal, counting a nan as equal to a nan (which == does not)."""
    return a == b or (_has_nan(a.metadata, a.providers) and dumps(a) == dumps(b))


def _has_nan(*values: Any) -> bool:
    for v in values:
        if isinstance(v, float) and v != v:  # nan
            return True
        if isinstance(v, Endpoint) and _has_nan(v.options):
            return True
        if isinstance(v, dict) and _has_nan(*v.values()) or isinstance(v, list) and _has_nan(*v):
            return True
    return False


def _snapshot(lf: Lockfile) -> Lockfile:
    """What `lf` holds now, cheaply: edits replace bindings and lists rather than mutate them."""
    import copy

    profiles = {n: attrs.evolve(p, bindings=Bindings(p.bindings), registry_versions=dict(p.registry_versions))
                for n, p in lf.profiles.items()}
    return attrs.evolve(lf, profiles=profiles, providers=dict(lf.providers), limits=dict(lf.limits),
                        metadata=copy.deepcopy(lf.metadata))


# -- finding ------------------------------------------------------------------------------

@attrs.define
class Located:
    path: Path
    source: str  # "explicit", "env", "package", "cwd" or "bundled"
    resource: Any = None  # a package's lockfile inside a zip (importlib.resources): read this, not path


def locate(explicit: Optional[PathLike] = None, env: Optional[dict] = None,
           package: Optional[str] = None) -> Located:
    """The one reading rule: explicit path (must exist) > LLMRING_LOCKFILE_PATH (must exist) >
    the llmring.lock of `package` when one is named (a library's own, found with
    importlib.resources, so it works from a wheel or a zip) > ./llmring.lock > the bundled
    lockfile (for llmring's own tools)."""
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
    if package is not None:
        return _package_lockfile(package)
    here = Path.cwd() / FILENAME
    if here.is_file():
        return Located(here, "cwd")
    if os.path.lexists(here):  # a folder, a broken link: never fall back to the bundled file silently
        raise LockfileError(_missing(here, "fix or remove it, or pass --file"), path=str(here))
    return Located(BUNDLED, "bundled")


def _package_lockfile(package: str) -> Located:
    """The llmring.lock inside an installed package; LockfileError when the package is not
    importable or ships none."""
    import importlib.resources

    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise LockfileError(f"package {package!r} is not installed, so it has no lockfile to use; check the "
                            "name given as package= (the import name, e.g. \"mypackage\")") from None
    except TypeError:  # a plain module, not a package (Python 3.9 and 3.10)
        raise LockfileError(f"{package!r} is a module, not a package; ship llmring.lock inside a package "
                            "and name that") from None
    found = root / FILENAME
    shown = Path(str(found))
    if not found.is_file():
        raise LockfileError(f"package {package!r} ships no {FILENAME} (looked for {shown}); add one to the "
                            "package's data files, or pass lockfile_path")
    return Located(found, "package") if isinstance(found, Path) else Located(shown, "package", found)


def _missing(p: Path, remedy: str) -> str:
    if p.is_dir():
        return "is a directory, not a lockfile; give the path of the lockfile itself"
    if p.is_symlink():
        return f"is a link to {os.readlink(p)}, which does not exist; {remedy}"
    return f"does not exist; {remedy}"


def choose_profile(lf: Lockfile, profile: Optional[str] = None, env: Optional[dict] = None) -> str:
    """explicit > LLMRING_PROFILE > the file's default_profile."""
    environ = os.environ if env is None else env
    return profile or environ.get(ENV_PROFILE) or lf.default_profile
