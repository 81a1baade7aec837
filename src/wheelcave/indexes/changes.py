"""This process's own mirror changes, as part of the page cache tokens.

A mirror that stores a page or corrects a metadata file changes what pages show without a
generation bump (those are for writes every process must see at once); it counts the change
here, per project and for the project lists, so that this process re-renders at once. Other
processes re-read when their cached pages reach the mirror's TTL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["LocalChanges"]

_OWN: ContextVar[dict[str, int] | None] = ContextVar("wheelcave_own_changes", default=None)


class LocalChanges:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def count(self, project: str | None) -> int:
        """Changes to ``project`` so far (None: to any project, for the project lists)."""
        return self._counts.get(project or "", 0)

    def changed(self, project: str) -> None:
        """A mirror changed what ``project``'s page shows: its pages (in every index, virtual
        ones included) and the project lists re-render here on the next request."""
        own = _OWN.get()
        for key in (project, ""):
            self._counts[key] = self._counts.get(key, 0) + 1
            if own is not None:
                own[key] = own.get(key, 0) + 1

    @contextlib.contextmanager
    def own(self) -> Iterator[dict[str, int]]:
        """Count the :meth:`changed` calls made by the current task inside the block.

        A page computed in the block may be cached under the token read after it when the only
        changes in between were its own (made before it read the rows: a mirror stores a page,
        then reads it), instead of being rendered twice."""
        counts: dict[str, int] = {}
        reset = _OWN.set(counts)
        try:
            yield counts
        finally:
            _OWN.reset(reset)

    @staticmethod
    def settle(project: str | None, before: tuple[int, ...], after: tuple[int, ...], own: dict[str, int]) -> tuple[int, ...]:
        """The token to cache a page computed between tokens ``before`` and ``after`` under:
        ``after`` when nothing but the block's own changes happened in between, else ``before``
        (a page cached under an older token is re-rendered at the next request, never wrong)."""
        if after[:-1] == before[:-1] and after[-1] - before[-1] == own.get(project or "", 0):
            return after
        return before
