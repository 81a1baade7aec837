"""When this process's mirrors are not fetching: bookkeeping that can wait, waits for it.

A cold resolution keeps a mirror busy fetching pages and metadata from its upstream, one request
after another, while the client waits for each. Writing the rows of the pages already answered
(thousands of files each) competes with that work for the one core the event loop has; done in
the pause after the resolution, it costs the client nothing. Writes wait until no upstream fetch
has run for ``gap`` seconds, and never longer than ``longest`` seconds: a server that is never
quiet still writes, a little later. Cached answers (the page cache, cached files) are not upstream
fetches: a stream of them does not hold the writes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

__all__ = ["Quiet"]


class Quiet:
    def __init__(self, gap: float = 0.25, longest: float = 5.0) -> None:
        self.gap = gap
        self.longest = longest
        self._fetching = 0
        self._last = -1e9  # time.monotonic() when the last fetch ended

    def begin(self) -> None:
        """An upstream fetch starts (each ends with :meth:`end`)."""
        self._fetching += 1

    def end(self) -> None:
        self._fetching -= 1
        self._last = time.monotonic()

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        """Around one upstream fetch."""
        self.begin()
        try:
            yield
        finally:
            self.end()

    def _left(self, since: float) -> float | None:
        """Seconds to wait before looking again; None: go."""
        now = time.monotonic()
        bound = self.longest - (now - since)
        if bound <= 0:
            return None
        if self._fetching:
            return min(max(self.gap, 0.01), bound)
        idle = now - self._last
        return None if idle >= self.gap else min(self.gap - idle, bound)

    async def wait(self, since: float, hurry: asyncio.Event) -> None:
        """Until the mirrors have been quiet for ``gap`` seconds, ``longest`` seconds have passed
        since ``since`` (a ``time.monotonic()``), or ``hurry`` is set."""
        while not hurry.is_set() and (left := self._left(since)) is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hurry.wait(), left)
