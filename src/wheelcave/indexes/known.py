"""The project names an index has rows for, as this process knows them: a name not among them
needs no database query to be found absent.

A cold resolution through a virtual index asks each member about every project it meets, nearly
all of them new: without this, each new name cost a query of the hosted member (its files) and
one of the mirror (its page state) before the upstream fetch could start, and a burst of
requests queued for the read pool while the upstream waited.

The names are read in one query when first needed and again whenever ``token`` changes (a hosted
index passes its generation, so any write to it, here or seen from another process, reloads
them: as fresh as a cached page). A mirror passes no token and tells of each page it stores
itself (:meth:`add`); it may trust the names only where no other process writes its page rows.
An index with more than ``limit`` names answers "maybe" for every name: its callers query as
before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["KnownNames"]

#: Past this many names an index keeps none in memory (about 100 bytes a name).
LIMIT = 50_000


class KnownNames:
    def __init__(self, load: Callable[[int], Awaitable[set[str] | None]], limit: int = LIMIT) -> None:
        #: Reads every name (or None when there are more than the limit it is given).
        self._load = load
        self.limit = limit
        self._names: set[str] | None = None
        self._token: Hashable = None
        self._loaded = False
        self._lock = asyncio.Lock()
        #: Names added while a read was under way (it may have missed them).
        self._added: set[str] = set()

    async def may_have(self, name: str, token: Hashable = None) -> bool:
        """False only if the index has no row for ``name`` (as of ``token``)."""
        if not self._loaded or self._token != token:
            async with self._lock:
                if not self._loaded or self._token != token:
                    # Read after the token: a write in between only adds names (a "maybe").
                    self._added.clear()
                    names = await self._load(self.limit)
                    self._names = None if names is None else names | self._added
                    self._token, self._loaded = token, True
                    self._added.clear()
        return self._names is None or name in self._names

    def add(self, name: str) -> None:
        """This process wrote a row for ``name``."""
        if self._lock.locked():
            self._added.add(name)
        if self._names is not None:
            if len(self._names) >= self.limit:
                self._names = None  # too many now: "maybe" for all, until the next load
            else:
                self._names.add(name)
