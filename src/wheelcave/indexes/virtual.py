"""Virtual indexes: an ordered list of members merged per project.

The merge rule (architecture §1, the dependency-confusion guard): walking the members in
order, once a *private* member has the project, later non-private (mirror) members are not
consulted for that name unless it is in ``allow_upstream``. For one filename, the first
member wins.

A view for one reader hides the members that reader may not read (``hidden``, by name): a
hidden member shows nothing, but a hidden *private* member that has the project still stops
later mirrors from being asked for it, so hiding never leaks a private name upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from packaging.utils import NormalizedName

from wheelcave.core.pages import ProjectPage, apply_cooldown, merge_pages
from wheelcave.indexes.base import Index

__all__ = ["VirtualIndex"]


class VirtualIndex:
    kind = "virtual"
    private = False

    def __init__(
        self, name: str, index_id: int, members: Sequence[Index], allow_upstream: Sequence[str] = (),
        *, cooldown: float = 0, cooldown_exempt: Sequence[str] = (), hidden: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.id = index_id
        self.members = list(members)
        self.allow_upstream = frozenset(allow_upstream)
        self.cooldown = cooldown
        self.cooldown_exempt = frozenset(cooldown_exempt)
        self.hidden = hidden
        self._dependencies: tuple[int, ...] | None = None

    def dependencies(self) -> Sequence[int]:
        if self._dependencies is None:  # the members are fixed: walk them once (a hot page asks often)
            deps: list[int] = [self.id]
            for member in self.members:
                deps.extend(d for d in member.dependencies() if d not in deps)
            self._dependencies = tuple(deps)
        return self._dependencies

    def cache_ttl(self) -> float | None:
        ttls = [t for t in (m.cache_ttl() for m in self.members) if t is not None]
        return min(ttls) if ttls else None

    async def project(
        self, name: NormalizedName, *, with_metadata: bool = False, cooldown: bool = True
    ) -> ProjectPage | None:
        pages: list[ProjectPage] = []
        private_hit = False
        cutoff = None
        if cooldown and self.cooldown and name not in self.cooldown_exempt:
            cutoff = datetime.now(UTC) - timedelta(seconds=self.cooldown)
        for member in self.members:
            if private_hit and not member.private and name not in self.allow_upstream:
                continue
            if member.name in self.hidden and member.kind == "mirror":
                continue
            page = await member.project(name, with_metadata=with_metadata, cooldown=cooldown)
            if page is None:
                continue
            if member.name in self.hidden:  # shows nothing, but guards the name as a private hit would
                private_hit = True
                continue
            if cutoff is not None and not member.private:
                page = apply_cooldown(page, cutoff)
            pages.append(page)
            private_hit = private_hit or member.private
        if not pages:
            return None
        return merge_pages(name, pages)

    async def list_projects(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for member in self.members:
            if member.name in self.hidden:
                continue
            for normalized, display in await member.list_projects():
                seen.setdefault(normalized, display)
        return sorted(seen.items())
