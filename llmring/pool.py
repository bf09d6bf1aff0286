"""The providers a Ring talks to: one per prefix, made on first use from an installed plugin or
a `[providers.NAME]` endpoint of the lockfile, all sharing one keep-alive HTTP session."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lockfile import Lockfile


class ProviderPool:
    """Providers by prefix. `drop()` (when the lockfile changes) closes them; the next call
    makes them again from the new file."""

    def __init__(self, pool_size: int = 64) -> None:
        self.pool_size = pool_size
        self._lock = threading.RLock()
        self._providers: dict = {}
        self._session: Any = None

    @property
    def session(self) -> Any:
        """The keep-alive HTTP session every provider shares (requests is imported here, on first use)."""
        with self._lock:
            if self._session is None:
                from . import __version__
                from .transport import new_session

                s = new_session(self.pool_size)  # its connections obey each try's deadline
                s.headers["User-Agent"] = f"llmring/{__version__}"
                self._session = s
            return self._session

    def get(self, prefix: str, lf: Lockfile) -> Any:
        """The provider for `prefix`; ProviderNotFoundError naming what is installed if none."""
        existing = self._providers.get(prefix)
        if existing is not None:
            return existing
        with self._lock:
            existing = self._providers.get(prefix)
            if existing is not None:
                return existing
            from .plugins import registry

            info, endpoint = registry.serving(prefix, lf.providers)
            if info is None:
                raise registry.not_found(prefix, endpoint, lf.path)
            made = self._providers[prefix] = info.make(prefix, endpoint, session=self.session)
            return made

    def forked(self) -> None:
        """In a child process after fork: new providers on a new session, made on first use.
        The inherited ones are dropped, not closed: their connections are the parent's too,
        and two processes on one keep-alive socket garble each other's HTTP."""
        self._lock = threading.RLock()
        self._providers = {}
        self._session = None

    def drop(self) -> None:
        with self._lock:
            for p in self._providers.values():
                p.close()
            self._providers.clear()

    def close(self) -> None:
        with self._lock:
            self.drop()
            if self._session is not None:
                self._session.close()
                self._session = None
