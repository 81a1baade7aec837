"""The read interface every index kind answers, so the HTTP layer never branches on kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from packaging.utils import NormalizedName

from wheelcave.core.pages import ProjectPage, files_url

__all__ = ["Index", "files_url"]


class Index(Protocol):
    name: str
    kind: str
    #: Private indexes (hosted) hide later mirror members of a virtual index for their names.
    private: bool

    def dependencies(self) -> Sequence[int]:
        """Ids of the stored indexes whose writes change this index's pages (cache keys)."""
        ...

    def cache_ttl(self) -> float | None:
        """Seconds a rendered page may be reused without asking again (None: until a write)."""
        ...

    async def project(
        self, name: NormalizedName, *, with_metadata: bool = False, cooldown: bool = True
    ) -> ProjectPage | None:
        """The project's page, or None if the index does not know the project.

        ``cooldown=False`` is the per-request override that shows files still in cooldown.
        """
        ...

    async def list_projects(self) -> list[tuple[str, str]]:
        """(normalized name, display name) of every project."""
        ...
