"""Writing files so that a reader sees the old content or the new, never half of either,
and locking a file against concurrent edits by other processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def target(path: Path) -> Path:
    """The file an edit of `path` must change: through any symlinks, so that a linked
    lockfile stays a link and its real file is updated."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it over
    `path` (keeping the old file's permissions). On any failure the old file is untouched
    and the temporary file is removed."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_only(path: Path) -> bool:
    """Whether an editor would refuse to overwrite `path` without force: no write bit at all
    (which root ignores, but an editor does not), or no write access."""
    try:
        return not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK)
    except OSError:
        return False


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An inter-process lock for edits of `path`. On POSIX it is a lock on the folder that
    holds the file: that folder stays the same inode while the file is replaced, and every
    process that can see the file (other containers too) sees it, with no clutter beside it.
    Where a folder cannot be locked (some network file systems), a lock file in the temp
    folder, named after the path, serves this machine's processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.name == "nt":  # pragma: no cover
        with open(_temp_lock_path(path), "a+b") as f, _windows_lock(f):
            yield
        return
    import fcntl

    fd = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            fd = os.open(_temp_lock_path(path), os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _temp_lock_path(path: Path) -> Path:
    import hashlib
    import tempfile

    digest = hashlib.sha1(os.fspath(path.resolve()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"llmring-{digest}-{getattr(os, 'getuid', lambda: 0)()}.lck"


@contextmanager
def _windows_lock(f: Any) -> Iterator[None]:  # pragma: no cover
    """Windows cannot lock a folder: byte 0 of a lock file in the temp folder."""
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
