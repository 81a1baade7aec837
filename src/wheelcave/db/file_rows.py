"""Projects and their files: pages, lookups by name and content, uploads, replacements,
deletes, copies (promotion) and yanks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from wheelcave.core.pages import FileEntry
from wheelcave.core.versions import same_release
from wheelcave.db import tables as t
from wheelcave.db.records import (
    FILE_COLUMNS,
    PAGE_COLUMNS,
    FileRecord,
    IndexGone,
    NewFile,
    file_record,
    file_record_no_meta,
    is_unique_violation,
    page_entries_of,
    summary_of,
    utcnow,
)
from wheelcave.db.rows import Rows, off_loop

__all__ = ["FileRows"]


class FileRows(Rows):
    """Projects and their files: pages, lookups by name and content, uploads, replacements,"""

    async def project_files(
        self, index_id: int, project: str, *, with_metadata: bool = False
    ) -> list[FileRecord]:
        columns = FILE_COLUMNS if with_metadata else FILE_COLUMNS[:-1]
        query = (
            sa.select(*columns)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.projects.c.index_id == index_id, t.projects.c.name == project)
            .order_by(t.files.c.id)
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            if with_metadata:
                return [file_record(r) for r in rows]
            return [file_record_no_meta(r) for r in rows]

    async def page_entries(
        self, index_id: int, project: str, *, keep_removed: bool = True
    ) -> tuple[str, list[FileEntry]] | None:
        """(display name, files) of a project page, or None: the hot query behind simple pages.

        Rows are read by position into :class:`FileEntry` directly (a 5,000-file project
        renders its first page in well under 150 ms). Files an upstream stopped listing are
        included only with ``keep_removed`` and only while their bytes are cached.
        """
        query = (
            sa.select(*PAGE_COLUMNS)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.projects.c.index_id == index_id, t.projects.c.name == project)
            .order_by(t.files.c.id)
        )
        cached = sa.exists().where(t.blobs.c.sha256 == t.files.c.sha256)
        query = query.where(sa.or_(t.files.c.origin_removed == sa.false(), cached if keep_removed else sa.false()))
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return None
        return rows[0][0], await off_loop(page_entries_of, rows, size=len(rows))

    async def list_projects(self, index_id: int) -> list[tuple[str, str]]:
        query = (
            sa.select(t.projects.c.name, t.projects.c.display_name)
            .where(
                t.projects.c.index_id == index_id,
                t.project_lists_files(),
            )
            .order_by(t.projects.c.name)
        )
        async with self.db.read() as conn:
            return [(r.name, r.display_name) for r in await conn.execute(query)]

    async def project_names(self, index_id: int, limit: int) -> set[str] | None:
        """The names of every project of an index (with files or not), or None if there are more
        than ``limit``."""
        query = sa.select(t.projects.c.name).where(t.projects.c.index_id == index_id).limit(limit + 1)
        async with self.db.read() as conn:
            names = set((await conn.execute(query)).scalars())
        return names if len(names) <= limit else None

    async def find_file(self, index_id: int, filename: str) -> FileRecord | None:
        query = (
            sa.select(*FILE_COLUMNS)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.files.c.index_id == index_id, t.files.c.filename == filename)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
            return file_record(row) if row else None

    async def indexes_listing(self, sha256: str, filename: str) -> list[int]:
        """Ids of the stored indexes that list these bytes under this name."""
        query = sa.select(t.files.c.index_id).where(t.files.c.sha256 == sha256, t.files.c.filename == filename)
        async with self.db.read() as conn:
            return sorted({r.index_id for r in await conn.execute(query)})

    async def find_file_by_content(self, sha256: str, filename: str, prefer: Sequence[int] = ()) -> FileRecord | None:
        """Any listed file with these bytes under this name (in whichever index): one of the
        indexes ``prefer`` names if they have one (those its reader may read), a hosted one
        before a mirror's."""
        order = [sa.case((t.files.c.origin_url.is_(None), 0), else_=1)]
        if prefer:
            order.insert(0, sa.case((t.files.c.index_id.in_(list(prefer)), 0), else_=1))
        query = (
            sa.select(*FILE_COLUMNS[:-1])
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.files.c.sha256 == sha256, t.files.c.filename == filename)
            .order_by(*order)
            .limit(1)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
            return file_record_no_meta(row) if row else None

    async def add_file(self, new: NewFile, audit: Mapping[str, Any]) -> FileRecord | None:
        """Insert a file row (and its project, blob and audit rows) in one transaction.

        Returns None when ``(index, filename)`` exists already: the unique constraint decides,
        so of two concurrent uploads of one filename exactly one is inserted. Any other
        integrity failure is not "exists": a project row deleted under us (a concurrent delete
        of the project's last file) is made again and the insert retried; an index deleted
        under us raises :class:`IndexGone`.
        """
        for attempt in range(3):
            now = utcnow()
            try:
                async with self.db.write() as conn:
                    await self._insert_file(conn, new, now, audit)
            except IntegrityError as exc:
                if is_unique_violation(exc, "files"):
                    return None
                if await self._index_gone(new.index_id):
                    raise IndexGone(new.index_id) from None
                if attempt == 2:
                    raise
                continue
            return await self.find_file(new.index_id, new.filename)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _insert_file(self, conn: AsyncConnection, new: NewFile, now: datetime, audit: Mapping[str, Any]) -> None:
        project_id = await self._ensure_project(conn, new, now)
        await self._ensure_blob(conn, new.sha256, new.size, now)
        if new.metadata_sha256:
            await self._ensure_blob(conn, new.metadata_sha256, new.metadata_size, now)
        await conn.execute(
            sa.insert(t.files).values(
                index_id=new.index_id, project_id=project_id, filename=new.filename,
                version=new.version, kind=new.kind, python_tag=new.python_tag,
                sha256=new.sha256, md5=new.md5, blake2b_256=new.blake2b_256,
                size=new.size, requires_python=new.requires_python, yanked=False,
                upload_time=new.upload_time or now, uploader=new.uploader,
                metadata_sha256=new.metadata_sha256,
                core_metadata=dict(new.core_metadata) if new.core_metadata else None,
                summary=summary_of(new.core_metadata),
            )
        )
        await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=now))
        await self._bump(conn, new.index_id)
        await self._audit(conn, now, audit)

    async def _ensure_project(self, conn: AsyncConnection, new: NewFile, now: datetime) -> int:
        return await self._project_id(conn, new.index_id, new.project, new.display_name, now)

    async def find_tombstone(self, index_id: int, filename: str) -> str | None:
        query = sa.select(t.file_tombstones.c.sha256).where(
            t.file_tombstones.c.index_id == index_id, t.file_tombstones.c.filename == filename
        )
        async with self.db.read() as conn:
            return (await conn.execute(query)).scalar()

    async def replace_file(self, file_id: int, new: NewFile, audit: Mapping[str, Any]) -> FileRecord | None:
        """Overwrite a file row in place (``allow_overwrite`` indexes)."""
        now = utcnow()
        async with self.db.write() as conn:
            await self._ensure_blob(conn, new.sha256, new.size, now)
            if new.metadata_sha256:
                await self._ensure_blob(conn, new.metadata_sha256, new.metadata_size, now)
            await conn.execute(sa.update(t.files).where(t.files.c.id == file_id).values(
                sha256=new.sha256, md5=new.md5, blake2b_256=new.blake2b_256, size=new.size,
                requires_python=new.requires_python, upload_time=new.upload_time or now, uploader=new.uploader,
                metadata_sha256=new.metadata_sha256,
                core_metadata=dict(new.core_metadata) if new.core_metadata else None,
                summary=summary_of(new.core_metadata), yanked=False, yanked_reason=None,
            ))
            await self._touch_file_project(conn, file_id)
            await self._bump(conn, new.index_id)
            await self._audit(conn, now, audit)
        return await self.find_file(new.index_id, new.filename)

    async def delete_files(
        self, index_id: int, project: str, version: str | None, filename: str | None, audit: Mapping[str, Any]
    ) -> list[str]:
        """Delete a project, a release or one file; tombstones remember the filenames."""
        query = (
            sa.select(t.files.c.id, t.files.c.filename, t.files.c.version, t.files.c.sha256)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.projects.c.index_id == index_id, t.projects.c.name == project)
        )
        if filename is not None:
            query = query.where(t.files.c.filename == filename)
        now = utcnow()
        async with self.db.write() as conn:
            rows = [r for r in await conn.execute(query) if version is None or same_release(r.version, version)]
            if not rows:
                return []
            await conn.execute(self._insert(t.file_tombstones), [
                {"index_id": index_id, "filename": r.filename, "sha256": r.sha256, "deleted_at": now,
                 "deleted_by": audit.get("actor")} for r in rows
            ])
            await conn.execute(sa.delete(t.files).where(t.files.c.id.in_([r.id for r in rows])))
            await self._touch_project(conn, index_id, project)
            await self._bump(conn, index_id)
            await self._audit(conn, now, {**audit, "detail": {"files": [r.filename for r in rows]}})
            return [r.filename for r in rows]

    async def copy_files(self, records: Sequence[FileRecord], dst_index_id: int, audit: Mapping[str, Any]) -> list[str]:
        """Promotion: the same bytes listed in another index (no blob is copied). Filenames
        the index lists already (a concurrent promotion of the same release) are left as they
        are; returns the filenames this call listed."""
        now = utcnow()
        done: list[str] = []
        async with self.db.write() as conn:
            for r in records:
                new = NewFile(
                    index_id=dst_index_id, project=r.project, display_name=r.display_name,
                    filename=r.filename, version=r.version, kind=r.kind, python_tag=r.python_tag,
                    sha256=r.sha256, md5=r.md5 or "", blake2b_256=r.blake2b_256 or "", size=r.size or 0,
                    requires_python=r.requires_python, uploader=r.uploader,
                    metadata_sha256=r.metadata_sha256, core_metadata=r.core_metadata,
                )
                project_id = await self._ensure_project(conn, new, now)
                result = await conn.execute(self._insert(t.files).values(
                    index_id=dst_index_id, project_id=project_id, filename=r.filename, version=r.version,
                    kind=r.kind, python_tag=r.python_tag, sha256=r.sha256, md5=r.md5,
                    blake2b_256=r.blake2b_256, size=r.size, requires_python=r.requires_python,
                    yanked=r.yanked, yanked_reason=r.yanked_reason, upload_time=r.upload_time or now,
                    uploader=r.uploader, metadata_sha256=r.metadata_sha256,
                    core_metadata=dict(r.core_metadata) if r.core_metadata else None,
                    summary=summary_of(r.core_metadata),
                ))
                if result.rowcount:
                    done.append(r.filename)
                    await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=now))
            if done:
                await self._bump(conn, dst_index_id)
                await self._audit(conn, now, {**audit, "detail": {**(audit.get("detail") or {}), "files": done}})
        return done

    async def set_yanked(
        self, index_id: int, project: str, version: str | None, filename: str | None,
        *, yanked: bool, reason: str | None, audit: Mapping[str, Any],
    ) -> list[str]:
        """Yank or unyank the files of one release (or one file); returns their filenames."""
        query = (
            sa.select(t.files.c.id, t.files.c.filename, t.files.c.version)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.projects.c.index_id == index_id, t.projects.c.name == project)
        )
        if filename is not None:
            query = query.where(t.files.c.filename == filename)
        async with self.db.write() as conn:
            rows = [r for r in await conn.execute(query) if version is None or same_release(r.version, version)]
            if not rows:
                return []
            await conn.execute(
                sa.update(t.files).where(t.files.c.id.in_([r.id for r in rows]))
                .values(yanked=yanked, yanked_reason=reason if yanked else None)
            )
            await self._touch_project(conn, index_id, project)
            await self._bump(conn, index_id)
            await self._audit(conn, utcnow(), {**audit, "detail": {"files": [r.filename for r in rows], "reason": reason}})
            return [r.filename for r in rows]
