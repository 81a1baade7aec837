"""A mirror's stored page listings (:mod:`wheelcave.core.mirror_listing`), decoded once per fetch
of a page and kept in memory, bounded by the files they list.

The process that stores a page keeps its listing as it stored it (no read back); another process
(a worker, a replica) reads the record once and then only asks whether the page was fetched
again since (the record stays in the database unless it was).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime

from wheelcave.core.errors import CoreError
from wheelcave.core.mirror_listing import Listing, decode, filename_projects
from wheelcave.core.remote import RemoteFile
from wheelcave.db.repository import Repository, off_loop

__all__ = ["MirrorListings"]

log = logging.getLogger("wheelcave.mirror")

#: Files the kept listings may list in all (a big page lists ~10,000: ~20-40 MB in all).
MAX_LISTED = 200_000


class MirrorListings:
    def __init__(self, index_name: str, index_id: int, repo: Repository, *, max_listed: int = MAX_LISTED) -> None:
        self.index_name = index_name
        self.index_id = index_id
        self.repo = repo
        self.max_listed = max_listed
        self._kept: OrderedDict[str, tuple[datetime, Listing]] = OrderedDict()
        self._total = 0

    async def of(self, project: str) -> Listing | None:
        """The files the upstream listed on the stored page of ``project`` (empty without a page);
        None for a page stored before listings existed (its rows are all of it), or one whose
        record cannot be read (logged; the page is fetched again when its TTL runs out)."""
        known = self._kept.get(project)
        found = await self.repo.mirror_listing(self.index_id, project, known[0] if known else None)
        if found is None:
            return Listing({})
        fetched_at, has, record = found
        if not has:
            return None
        if record is None and known is not None:
            self._kept.move_to_end(project)
            return known[1]
        try:
            listing = await off_loop(decode, record or b"", size=len(record or b"") // 8)
        except CoreError as exc:
            log.error("mirror.bad_listing index=%s project=%s: %s", self.index_name, project, exc)
            return None
        self.keep(project, fetched_at, listing)
        return listing

    def keep(self, project: str, fetched_at: datetime, listing: Listing) -> None:
        """Remember the listing of the page of ``project`` fetched at ``fetched_at``."""
        known = self._kept.pop(project, None)
        self._total += len(listing) - (len(known[1]) if known else 0)
        self._kept[project] = (fetched_at, listing)
        while self._total > self.max_listed and len(self._kept) > 1:
            self._total -= len(self._kept.popitem(last=False)[1][1])

    async def find(self, filename: str, sha256: str | None = None) -> tuple[str, RemoteFile] | None:
        """(its project, its entry) of a file a stored page lists under ``filename``: looked for on
        the pages of the projects its name can belong to.

        ``sha256``: the content asked for. A listing kept here that lists the file with it answers
        without asking the database whether the page was fetched again since: a newer page
        changes nothing for a file an earlier one listed (its bytes are the same; one the upstream
        dropped is served as a cached one would be). Anything else is looked up afresh."""
        readings = filename_projects(filename)
        if sha256 is not None:
            for project in readings:
                kept = self._kept.get(project)
                found = kept[1].get(filename) if kept is not None else None
                if found is not None and found.sha256 == sha256:
                    self._kept.move_to_end(project)
                    return project, found
        for project in readings:
            listing = await self.of(project)
            found = listing.get(filename) if listing else None
            if found is not None:
                return project, found
        return None
