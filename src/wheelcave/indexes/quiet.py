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

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        """Around one upstream fetch."""
        self._fetching += 1
        try:
            yield
        finally:
            self._fetching -= 1
            self._last = time.monotonic()

    def _left(self, since: float) -> float:
        """Seconds to wait still (0: go)."""
        now = time.monotonic()
        if now - since >= self.longest:
            return 0.0
        if not self._fetching and now - self._last >= self.gap:
            return 0.0
        wait = self.gap if self._fetching else self.gap - (now - self._last)
        return min(wait, self.longest - (now - since))

    async def wait(self, since: float, hurry: asyncio.Event) -> None:
        """Until the mirrors have been quiet for ``gap`` seconds, ``longest`` seconds have passed
        since ``since`` (a ``time.monotonic()``), or ``hurry`` is set."""
        while not hurry.is_set() and (left := self._left(since)) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hurry.wait(), left)
