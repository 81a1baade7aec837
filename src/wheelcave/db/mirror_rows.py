"""A mirror's rows: its pages' fetch state, the upstream's files brought in line with the
rows (the policy is core.mirror_sync's), and the bytes and metadata it caches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wheelcave.core.mirror_listing import (
    Listing,
    encode,
    entry_of,
    findable_under,
    highest_version,
    listed_files,
)
from wheelcave.core.mirror_sync import plan_sync
from wheelcave.core.pages import FileEntry
from wheelcave.core.remote import RemoteFile
from wheelcave.db import tables as t
from wheelcave.db.records import (
    FILE_COLUMNS,
    PAGE_COLUMNS,
    FileRecord,
    MirrorPageState,
    aware,
    file_record,
    page_entries_of,
    utcnow,
)
from wheelcave.db.rows import Rows, bulk_insert, off_loop

__all__ = ["MirrorRows"]


class MirrorRows(Rows):
    """A mirror's rows: its pages' fetch state, the upstream's files brought in line with the"""

    async def mirror_page_state(self, index_id: int, project: str) -> MirrorPageState | None:
        query = sa.select(t.mirror_pages).where(
            t.mirror_pages.c.index_id == index_id, t.mirror_pages.c.project == project
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return MirrorPageState(row.etag, row.last_modified, aware(row.fetched_at) or utcnow(), row.status)

    async def mirror_page_names(self, index_id: int, limit: int) -> set[str] | None:
        """The projects a mirror has a page state for, or None if there are more than ``limit``."""
        query = sa.select(t.mirror_pages.c.project).where(t.mirror_pages.c.index_id == index_id).limit(limit + 1)
        async with self.db.read() as conn:
            names = set((await conn.execute(query)).scalars())
        return names if len(names) <= limit else None

    async def touch_mirror_page(self, index_id: int, project: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(t.mirror_pages)
                .where(t.mirror_pages.c.index_id == index_id, t.mirror_pages.c.project == project)
                .values(fetched_at=utcnow())
            )

    async def store_mirror_page(
        self, index_id: int, project: str, files: Sequence[RemoteFile] | Mapping[str, RemoteFile], *,
        etag: str | None, last_modified: str | None, status: str, bump: bool = False,
        fetched_at: datetime | None = None,
    ) -> bool:
        """Store the upstream's page of ``project``: its listing as one record, and the rows of
        the files clients asked for brought in line, in one transaction; returns whether anything
        visible changed.

        With ``bump`` a change also bumps the index's generation, so every worker and replica
        re-renders its pages of this index at once; without it (the on-demand path) other
        processes see the change when their cached page reaches the mirror's TTL, and the
        caller invalidates this process's pages of the project. ``fetched_at``: the time to
        store (default now), which :meth:`mirror_listing` takes to tell the listing unchanged.
        ``files``: the upstream's page, or what :func:`listed_files` kept of it."""
        now = fetched_at or utcnow()
        kept = files if isinstance(files, Mapping) else await off_loop(listed_files, files, size=len(files))
        listing, listed, latest = await off_loop(_record_of, kept, size=len(kept))
        async with self.db.write() as conn:
            where = (t.mirror_pages.c.index_id == index_id, t.mirror_pages.c.project == project)
            before = (await conn.execute(sa.select(t.mirror_pages.c.listing).where(*where))).first()
            state = {"etag": etag, "last_modified": last_modified, "fetched_at": now, "status": status,
                     "listing": listing, "listed": listed, "latest": latest}
            if before is None:
                await conn.execute(self._insert(t.mirror_pages).values(index_id=index_id, project=project, **state))
            await conn.execute(sa.update(t.mirror_pages).where(*where).values(**state))
            changed = await self._sync_mirror_files(conn, index_id, project, kept, now)
            changed = changed or before is None or before.listing != listing
            if changed and bump:
                await self._bump(conn, index_id)
            return changed

    async def _sync_mirror_files(
        self, conn: AsyncConnection, index_id: int, project: str, listing: Mapping[str, RemoteFile], now: datetime,
    ) -> bool:
        """Bring the rows of a page's files in line with the upstream (core.mirror_sync's policy):
        the rows that exist (files clients asked for) follow it, rows of files it no longer lists
        are marked, and the files a lookup by name would not find under ``project`` get rows now
        (see :mod:`wheelcave.core.mirror_listing`). Returns whether a row changed."""
        where = (t.projects.c.index_id == index_id, t.projects.c.name == project)
        project_id = (await conn.execute(sa.select(t.projects.c.id).where(*where))).scalar()
        if project_id is None:
            if not listing:
                return False
            project_id = await self._project_id(conn, index_id, project, project, now)
        c = t.files.c
        columns = (c.id, c.filename, c.sha256, c.size, c.requires_python, c.yanked, c.yanked_reason,
                   c.upload_time, c.upstream_metadata, c.origin_removed, c.origin_url, c.metadata_sha256)
        existing = {r.filename: r for r in await conn.execute(sa.select(*columns).where(c.project_id == project_id))}
        rowed = await off_loop(_rowed, listing, existing, project, size=len(listing))
        swapped = [f.sha256 for f in rowed if f.filename in existing and existing[f.filename].sha256 != f.sha256]
        cached = set()
        if swapped:
            olds = [existing[f.filename].sha256 for f in rowed if f.filename in existing and f.sha256 in swapped]
            cached = set((await conn.execute(sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256.in_(olds)))).scalars())
        plan = await off_loop(plan_sync, rowed, existing, cached, size=len(rowed) + len(existing))
        inserts = [{"index_id": index_id, "project_id": project_id, **row} for row in plan.new]
        if inserts:
            await bulk_insert(conn, t.files, inserts, ignore_conflicts=True)
        if plan.changed:
            keys = [k for k in plan.changed[0] if k != "_id"]
            statement = sa.update(t.files).where(c.id == sa.bindparam("_id")).values(
                {k: sa.bindparam(k) for k in keys})
            await conn.execute(statement, plan.changed)
        gone = [r.id for name, r in existing.items() if name not in listing and not r.origin_removed]
        if gone:
            await conn.execute(sa.update(t.files).where(c.id.in_(gone)).values(origin_removed=True))
        changed = bool(inserts or plan.changed or gone)
        if changed:
            await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=now))
        return changed

    async def mirror_listing(
        self, index_id: int, project: str, known: datetime | None = None,
    ) -> tuple[datetime, bool, bytes | None] | None:
        """(when it was fetched, whether it has a listing, the listing record) of a mirror page,
        or None if it has no page state. The record is left out (None) when the page was fetched
        at ``known``: the caller has it already."""
        c = t.mirror_pages.c
        unless_known = c.listing if known is None else sa.case((c.fetched_at == known, sa.null()), else_=c.listing)
        query = sa.select(c.fetched_at, c.listing.is_not(None), unless_known).where(
            c.index_id == index_id, c.project == project)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (aware(row[0]) or utcnow(), bool(row[1]), row[2])

    async def mirror_files_without_rows(self) -> int:
        """How many files the mirrors' stored pages list without a row of their own (nobody asked
        for them yet): every listed file, less the rows of listed files."""
        pages, f, p = t.mirror_pages.c, t.files.c, t.projects.c
        listed = sa.select(sa.func.coalesce(sa.func.sum(pages.listed), 0)).where(pages.listed.is_not(None))
        rowed = (sa.select(sa.func.count()).select_from(t.files.join(t.projects, p.id == f.project_id).join(
                     t.mirror_pages, sa.and_(pages.index_id == p.index_id, pages.project == p.name)))
                 .where(pages.listed.is_not(None), f.origin_removed == sa.false()))
        async with self.db.read() as conn:
            return int((await conn.execute(listed)).scalar_one()) - int((await conn.execute(rowed)).scalar_one())

    async def mirror_page_entries(
        self, index_id: int, project: str, listing: Listing, *, keep_removed: bool = True,
    ) -> tuple[str, list[FileEntry]] | None:
        """(display name, files) of a mirror page: its ``listing`` (:meth:`mirror_listing`'s record,
        decoded), each file as its row says where it has one, then the files the upstream stopped
        listing whose bytes are cached (``keep_removed``). A page stored before listings existed
        has its rows for a listing: ``FileRows.page_entries``."""
        f = t.files.c
        cached = sa.exists().where(t.blobs.c.sha256 == f.sha256)
        query = (
            sa.select(*PAGE_COLUMNS, f.origin_removed, cached.label("cached"))
            .join(t.projects, t.projects.c.id == f.project_id)
            .where(t.projects.c.index_id == index_id, t.projects.c.name == project)
            .order_by(f.id)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
            display = rows[0][0] if rows else (await conn.execute(
                sa.select(t.projects.c.display_name).where(t.projects.c.index_id == index_id,
                                                            t.projects.c.name == project))).scalar()
        entries = await off_loop(_merged, listing, rows, keep_removed, size=len(listing) + len(rows))
        return (display or project, entries) if entries else None

    async def mirror_file_row(self, index_id: int, project: str, listed: RemoteFile) -> FileRecord:
        """The row of a listed file, made from its listing entry if it has none yet (a client asks
        for the file). Two requests at once make one row; a row that exists is left as it is."""
        now = utcnow()
        async with self.db.write() as conn:
            project_id = await self._project_id(conn, index_id, project, project, now)
            (row,) = plan_sync([listed], {}, set()).new
            await conn.execute(self._insert(t.files).values(index_id=index_id, project_id=project_id, **row))
            query = (sa.select(*FILE_COLUMNS).join(t.projects, t.projects.c.id == t.files.c.project_id)
                     .where(t.files.c.index_id == index_id, t.files.c.filename == listed.filename))
            return file_record((await conn.execute(query)).one())

    async def record_mirror_blob(
        self, file_id: int, sha256: str, size: int,
        metadata: tuple[str, int] | None = None, bump_index: int | None = None,
    ) -> None:
        """A mirrored file's bytes are now cached (and maybe its extracted metadata). The index's
        generation is left alone (the page changes only in what it advertises, see
        :meth:`store_mirror_page`) unless ``bump_index``: the metadata replaced another."""
        now = utcnow()
        async with self.db.write() as conn:
            await self._ensure_blob(conn, sha256, size, now)
            values: dict[str, Any] = {"size": size}
            if metadata is not None:
                await self._ensure_blob(conn, metadata[0], metadata[1], now)
                values["metadata_sha256"] = metadata[0]
            await conn.execute(sa.update(t.files).where(t.files.c.id == file_id).values(**values))
            await self._touch_file_project(conn, file_id)
            if bump_index is not None:
                await self._bump(conn, bump_index)

    async def record_metadata_blob(self, file_id: int, sha256: str, size: int) -> bool:
        """A mirrored wheel's metadata file is cached; returns whether the row changed."""
        now = utcnow()
        async with self.db.write() as conn:
            await self._ensure_blob(conn, sha256, size, now)
            result = await conn.execute(
                sa.update(t.files).where(t.files.c.id == file_id, t.files.c.metadata_sha256.is_(None))
                .values(metadata_sha256=sha256)
            )
            if result.rowcount:
                await self._touch_file_project(conn, file_id)
            return bool(result.rowcount)


def _record_of(kept: Mapping[str, RemoteFile]) -> tuple[bytes, int, str | None]:
    """A page's listing record, how many files it lists, and the highest version it names."""
    return *encode(kept), highest_version(kept)


def _rowed(listing: Mapping[str, RemoteFile], existing: Mapping[str, Any], project: str) -> list[RemoteFile]:
    """The listed files that have rows or must: those clients asked for, and those a lookup by
    their name would not find under ``project``."""
    return [f for name, f in listing.items() if name in existing or not findable_under(name, project)]


def _merged(listing: Listing, rows: Sequence[Any], keep_removed: bool) -> list[FileEntry]:
    """A mirror page's entries: the listing in its order, each file as its row says where it has
    one; then rows the upstream stopped listing, while their bytes are cached (``keep_removed``).
    ``rows``: PAGE_COLUMNS, then whether the upstream dropped the file and whether it is cached."""
    rowed = {r[1]: (r, e) for r, e in zip(rows, page_entries_of(rows), strict=True)}
    entries = []
    for f in listing.files():
        found = rowed.pop(f.filename, None)
        entries.append(entry_of(f) if found is None else found[1])
    entries.extend(e for r, e in rowed.values() if not r[11] or (keep_removed and r[12]))
    return entries
