"""A mirror's rows: its pages' fetch state, the upstream's files brought in line with the
rows (the policy is core.mirror_sync's), and the bytes and metadata it caches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wheelcave.core.mirror_sync import plan_sync
from wheelcave.core.remote import RemoteFile
from wheelcave.db import tables as t
from wheelcave.db.records import MirrorPageState, aware, utcnow
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
        self, index_id: int, project: str, files: Sequence[RemoteFile], *,
        etag: str | None, last_modified: str | None, status: str, bump: bool = False,
    ) -> bool:
        """Bring the mirror's rows for ``project`` in line with the upstream page, in one
        transaction; returns whether anything visible changed.

        With ``bump`` a change also bumps the index's generation, so every worker and replica
        re-renders its pages of this index at once; without it (the on-demand path) other
        processes see the change when their cached page reaches the mirror's TTL, and the
        caller invalidates this process's pages of the project."""
        now = utcnow()
        async with self.db.write() as conn:
            state = {"etag": etag, "last_modified": last_modified, "fetched_at": now, "status": status}
            await conn.execute(self._insert(t.mirror_pages).values(index_id=index_id, project=project, **state))
            await conn.execute(
                sa.update(t.mirror_pages)
                .where(t.mirror_pages.c.index_id == index_id, t.mirror_pages.c.project == project)
                .values(**state)
            )
            changed = await self._sync_mirror_files(conn, index_id, project, files, now)
            if changed and bump:
                await self._bump(conn, index_id)
            return changed

    async def _sync_mirror_files(
        self, conn: AsyncConnection, index_id: int, project: str, files: Sequence[RemoteFile], now: datetime
    ) -> bool:
        """Insert new rows, update changed ones, mark vanished ones, in a few bulk statements
        (a first fetch of a project with thousands of files is one INSERT)."""
        where = (t.projects.c.index_id == index_id, t.projects.c.name == project)
        project_id = (await conn.execute(sa.select(t.projects.c.id).where(*where))).scalar()
        if project_id is None:
            if not files:
                return False
            await conn.execute(self._insert(t.projects).values(
                index_id=index_id, name=project, display_name=project, created_at=now, updated_at=now))
            project_id = (await conn.execute(sa.select(t.projects.c.id).where(*where))).scalar_one()
        c = t.files.c
        columns = (c.id, c.filename, c.sha256, c.size, c.requires_python, c.yanked, c.yanked_reason,
                   c.upload_time, c.upstream_metadata, c.origin_removed, c.origin_url, c.metadata_sha256)
        existing = {r.filename: r for r in await conn.execute(sa.select(*columns).where(c.project_id == project_id))}
        files = [f for f in files if f.sha256]  # a mirror lists only files whose sha256 it knows
        swapped = [f.sha256 for f in files if f.filename in existing and existing[f.filename].sha256 != f.sha256]
        cached = set()
        if swapped:
            olds = [existing[f.filename].sha256 for f in files if f.filename in existing and f.sha256 in swapped]
            cached = set((await conn.execute(sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256.in_(olds)))).scalars())
        plan = await off_loop(plan_sync, files, existing, cached, size=len(files) + len(existing))
        inserts = [{"index_id": index_id, "project_id": project_id, **row} for row in plan.new]
        updates, seen = plan.changed, plan.listed
        if inserts:
            await bulk_insert(conn, t.files, inserts, ignore_conflicts=True)
        if updates:
            keys = [k for k in updates[0] if k != "_id"]
            statement = sa.update(t.files).where(c.id == sa.bindparam("_id")).values(
                {k: sa.bindparam(k) for k in keys})
            await conn.execute(statement, updates)
        gone = [r.id for name, r in existing.items() if name not in seen and not r.origin_removed]
        if gone:
            await conn.execute(sa.update(t.files).where(c.id.in_(gone)).values(origin_removed=True))
        changed = bool(inserts or updates or gone)
        if changed:
            await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=now))
        return changed

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
