"""Pages fetched ahead: when a mirror makes a wheel's metadata file for a client, the pages of
the dependencies it names without a condition are fetched from the upstream at once.

pip resolves one request at a time: it reads a candidate's metadata, then asks for the page of
each dependency in turn, and through a cold mirror each of those pages waits for the upstream
(~0.1 s here) while the server idles between pip's requests. A resolver asks for the page of every
unconditional dependency of a candidate it picks, so fetching them while the client is still
reading the metadata costs the upstream no request it would not have made (a rejected candidate's
dependencies aside), and the client finds them in memory (an early answer) or on the way.

Only dependencies without a marker: one with a marker (an extra, another platform or Python) may
never be asked for. At most :data:`MAX_NAMES` names a metadata file and :data:`MAX_IN_FLIGHT`
fetches at once; a name the mirror has a page of, or is fetching, is left alone. A failure costs
nothing but the head start (the client's own request fetches the page as it would have).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName

from wheelcave.core.names import is_valid_project_name, normalize

__all__ = ["AheadPages", "unconditional_dependencies"]

log = logging.getLogger("wheelcave.mirror")

#: Dependencies fetched ahead for one metadata file.
MAX_NAMES = 50
#: Pages fetched ahead at once, per mirror.
MAX_IN_FLIGHT = 8


def unconditional_dependencies(metadata: bytes, limit: int = MAX_NAMES) -> list[NormalizedName]:
    """The projects a core metadata file requires without a marker, normalized, in order, at most
    ``limit``. Lines that do not parse are skipped (the client will judge them)."""
    raw, _ = parse_email(metadata)
    names: dict[NormalizedName, None] = {}
    for line in raw.get("requires_dist", []):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None and is_valid_project_name(requirement.name):
            names[normalize(requirement.name)] = None
            if len(names) >= limit:
                break
    return list(names)


class AheadPages:
    """Fetch the pages of a metadata file's unconditional dependencies, a few at a time.

    ``unseen(name)``: whether the mirror has no page of ``name`` and is not fetching it;
    ``fetch(name)``: fetch (and store) the page as a client's request would."""

    def __init__(self, unseen: Callable[[NormalizedName], Awaitable[bool]],
                 fetch: Callable[[NormalizedName], Awaitable[object]], *, index_name: str) -> None:
        self.unseen = unseen
        self.fetch = fetch
        self.index_name = index_name
        self._running: set[asyncio.Task[None]] = set()
        self._queued: list[NormalizedName] = []
        #: Names fetched ahead so far (counted for /metrics and tests).
        self.fetched = 0

    def after_metadata(self, metadata: bytes) -> None:
        """A client got this metadata file: queue its unconditional dependencies."""
        try:
            names = unconditional_dependencies(metadata)
        except Exception as exc:  # noqa: BLE001 - a metadata file nobody could parse: no head start
            log.debug("mirror.ahead_unparsed index=%s: %s", self.index_name, exc)
            return
        queued = set(self._queued)
        self._queued.extend(n for n in names if n not in queued)
        self._start()

    def _start(self) -> None:
        while self._queued and len(self._running) < MAX_IN_FLIGHT:
            task = asyncio.create_task(self._one(self._queued.pop(0)))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start()

    async def _one(self, name: NormalizedName) -> None:
        try:
            if await self.unseen(name):
                self.fetched += 1
                await self.fetch(name)
        except Exception as exc:  # noqa: BLE001 - the client's own request fetches it again
            log.debug("mirror.ahead_failed index=%s project=%s: %s", self.index_name, name, exc)

    async def drain(self, timeout: float) -> None:
        """Let the fetches under way finish (queued ones are dropped), up to ``timeout`` seconds."""
        self._queued.clear()
        if self._running:
            await asyncio.wait(list(self._running), timeout=timeout)
