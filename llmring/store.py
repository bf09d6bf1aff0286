"""The lockfile store: the one place that decides which lockfile is read and which is written,
caches the parsed file, re-reads it when it changes on disk, and applies edits.

Reading: the rule in lockfile.locate (explicit path > $LLMRING_LOCKFILE_PATH > the llmring.lock
of `package` when one is named > ./llmring.lock > llmring's bundled lockfile).
Writing (edits, init, the advisor): the file being read, except that the bundled lockfile is
never edited (`write_target`: the --file given, else $LLMRING_LOCKFILE_PATH, else
./llmring.lock, is used instead) and a package's lockfile is refused (it is installed code)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from . import lockfile as lf_mod
from .exceptions import LockfileError
from .lockfile import Lockfile

# How long a stat of the lockfile stays good. Resolving thousands of aliases a second must not
# stat the file for each: an edit by another process is seen up to this late (Linux's file
# times are as coarse as ~4 ms anyway); edits through the store are seen at once.
CHECK_EVERY = 0.005


def write_target(file: Optional[lf_mod.PathLike] = None, env: Optional[Mapping] = None) -> Path:
    """Where a lockfile is created or edited: `file`, else $LLMRING_LOCKFILE_PATH, else
    ./llmring.lock. It need not exist; a directory is refused."""
    environ = os.environ if env is None else env
    path = Path(file or environ.get(lf_mod.ENV_PATH) or Path.cwd() / lf_mod.FILENAME)
    if path.is_dir():
        raise LockfileError("is a directory, not a lockfile; give the path of the lockfile itself", path=str(path))
    return path


class LockfileStore:
    """One lockfile, found by the reading rule, parsed once and re-read when its size, time or
    inode changes (looked at most every `check_every` seconds: 0 looks on every use).
    `on_change()` is called whenever what was read may be out of date, so the owner can drop
    what it derived from it (resolved aliases, providers). Thread-safe."""

    def __init__(self, path: Optional[lf_mod.PathLike] = None, *,
                 on_change: Optional[Callable[[], None]] = None, package: Optional[str] = None,
                 check_every: float = CHECK_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.package = package
        self._located = lf_mod.locate(path, package=package)
        self._on_change = on_change or (lambda: None)
        self._lock = threading.RLock()
        self._lockfile: Optional[Lockfile] = None
        self._stamp: Any = None
        self.check_every, self.clock = check_every, clock
        self._checked = float("-inf")  # when the file was last looked at

    @property
    def path(self) -> Path:
        return self._located.path

    @property
    def source(self) -> str:
        """How the lockfile was found: explicit, env, package, cwd or bundled."""
        return self._located.source

    def own(self) -> Path:
        """The project's lockfile path; LockfileError when only the bundled one was found."""
        if self.source == "bundled":
            raise LockfileError("no lockfile found here; create one with `llmring lock init` or pass --file",
                                path=str(Path.cwd() / lf_mod.FILENAME))
        return self.path

    def current(self) -> Lockfile:
        """The parsed lockfile, re-read when the file changed on disk (at most one stat per
        `check_every` seconds)."""
        now, lf = self.clock(), self._lockfile
        if lf is not None and now - self._checked < self.check_every:
            return lf
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            self._checked = now
            if self._lockfile is None or stamp != self._stamp:
                self._lockfile = self._read()
                self._stamp = stamp
                self._on_change()
            return self._lockfile

    def _read(self) -> Lockfile:
        # A package's zipped lockfile (an importlib.resources Traversable) reads as a Path does.
        return lf_mod.parse(lf_mod.read_text(self._located.resource or self.path), self.path)

    def loaded(self) -> Lockfile:
        """The lockfile as last read, without checking the disk again (within one call)."""
        lf = self._lockfile
        return lf if lf is not None else self.current()

    def forget(self) -> None:
        """Read the file again on next use."""
        with self._lock:
            self._lockfile = None
            self._on_change()

    def forked(self) -> None:
        """In a child process after fork: a new lock (the parent's may be held by a thread
        that does not exist here); the file is read again on first use."""
        self._lock = threading.RLock()
        self._lockfile = self._stamp = None

    def found_as(self, source: str) -> None:
        """Say how the file was found (a Ring rebuilt from a pickle keeps its parent's answer,
        so a bundled lockfile stays one that is never edited)."""
        self._located = lf_mod.Located(self.path, source, self._located.resource)

    def edit_path(self) -> Path:
        """Where edits go: the file being read, or write_target() instead of the bundled one.
        A package's lockfile is installed code: LockfileError, saying what to do instead."""
        if self.source == "package":
            raise LockfileError(f"is the lockfile package {self.package!r} ships, which is not edited; copy it and "
                                "pass the copy as lockfile_path (or --file), or set LLMRING_LOCKFILE_PATH",
                                path=str(self.path))
        return write_target() if self.source == "bundled" else self.path

    def edit(self, change: Callable[[Lockfile], Any], create: bool) -> Any:
        """Apply `change` to the lockfile on disk (read-modify-write under its lock); from then
        on this store reads the file it wrote."""
        path = self.edit_path()
        result = lf_mod.edit(path, change, create=create)
        self._switch(path, "cwd")
        return result

    def init(self, force: bool = False, path: Optional[lf_mod.PathLike] = None) -> Path:
        """Write a new lockfile at `path`, else where edits go; refuses to overwrite unless `force`."""
        from .init import create

        target = write_target(path) if path else self.edit_path()
        create(target, force)
        self._switch(target, "explicit" if path or self.source in ("explicit", "env") else "cwd")
        return target

    def _switch(self, path: Path, source: str) -> None:
        with self._lock:
            if path != self.path:
                self._located = lf_mod.Located(path, source)
            self._lockfile = None
            self._on_change()

