"""Typed async queries over the schema. Nothing outside ``db/`` writes SQL."""

from __future__ import annotations

import operator
from collections.abc import Callable
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from wheelcave.core.pages import FileEntry, files_url
from wheelcave.core.remote import RemoteFile
from wheelcave.core.versions import same_release
from wheelcave.db import tables as t
from wheelcave.db.engine import Database

__all__ = [
    "FileRecord",
    "IndexGone",
    "IndexRecord",
    "MirrorPageState",
    "NewFile",
    "Repository",
]

_T = TypeVar("_T")


def _summary(meta: Mapping[str, Any] | None) -> str | None:
    value = (meta or {}).get("summary")
    return value[:512] if isinstance(value, str) else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class IndexRecord:
    id: int
    name: str
    kind: str
    config: Mapping[str, Any]
    generation: int


@dataclass(frozen=True)
class FileRecord:
    id: int
    index_id: int
    project: str
    display_name: str
    filename: str
    version: str
    kind: str
    python_tag: str
    sha256: str
    md5: str | None
    blake2b_256: str | None
    size: int | None
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None
    upload_time: datetime | None
    uploader: str | None
    metadata_sha256: str | None
    core_metadata: Mapping[str, Any] | None
    origin_url: str | None = None
    upstream_metadata: bool = False


@dataclass(frozen=True)
class NewFile:
    index_id: int
    project: str
    display_name: str
    filename: str
    version: str
    kind: str
    python_tag: str
    sha256: str
    md5: str
    blake2b_256: str
    size: int
    requires_python: str | None
    uploader: str | None
    metadata_sha256: str | None
    core_metadata: Mapping[str, Any] | None
    metadata_size: int = 0
    #: When the file was first published, if earlier than now (an import keeps the source's).
    upload_time: datetime | None = None


@dataclass(frozen=True)
class MirrorPageState:
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    status: str


def _differs(old: object, new: object) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return _aware(old) != _aware(new)
    if isinstance(old, (bool, int)) and isinstance(new, (bool, int)):
        return int(old) != int(new)
    return old != new


_FILE_COLUMNS = (
    t.files.c.id,
    t.files.c.index_id,
    t.projects.c.name.label("project"),
    t.projects.c.display_name,
    t.files.c.filename,
    t.files.c.version,
    t.files.c.kind,
    t.files.c.python_tag,
    t.files.c.sha256,
    t.files.c.md5,
    t.files.c.blake2b_256,
    t.files.c.size,
    t.files.c.requires_python,
    t.files.c.yanked,
    t.files.c.yanked_reason,
    t.files.c.upload_time,
    t.files.c.uploader,
    t.files.c.metadata_sha256,
    t.files.c.origin_url,
    t.files.c.upstream_metadata,
    t.files.c.core_metadata,
)


def _file(row: sa.Row[Any], *, with_metadata: bool = True) -> FileRecord:
    m = row._mapping  # noqa: SLF001 - the documented way to read a Row by name
    return FileRecord(
        id=m["id"],
        index_id=m["index_id"],
        project=m["project"],
        display_name=m["display_name"],
        filename=m["filename"],
        version=m["version"],
        kind=m["kind"],
        python_tag=m["python_tag"],
        sha256=m["sha256"],
        md5=m["md5"],
        blake2b_256=m["blake2b_256"],
        size=m["size"],
        requires_python=m["requires_python"],
        yanked=bool(m["yanked"]),
        yanked_reason=m["yanked_reason"],
        upload_time=_aware(m["upload_time"]),
        uploader=m["uploader"],
        metadata_sha256=m["metadata_sha256"],
        core_metadata=m["core_metadata"] if with_metadata else None,
        origin_url=m["origin_url"],
        upstream_metadata=bool(m["upstream_metadata"]),
    )


class IndexGone(Exception):
    """The index a write was for was deleted meanwhile."""

    def __init__(self, index_id: int) -> None:
        super().__init__(f"index {index_id} was deleted")
        self.index_id = index_id


def is_unique_violation(exc: IntegrityError, table: str) -> bool:
    """Whether an IntegrityError is a unique constraint of ``table`` (SQLite and PostgreSQL
    word it differently); anything else (a foreign key) is not "exists"."""
    text = str(exc.orig)
    constraint = getattr(exc.orig, "constraint_name", None) or getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    if constraint:
        return str(constraint).startswith(f"uq_{table}_")
    return f"UNIQUE constraint failed: {table}." in text or (f"uq_{table}_" in text and "unique" in text.lower())


class Repository:
    """Every query the services need, on one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ indexes

    async def list_indexes(self) -> list[IndexRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(t.indexes).order_by(t.indexes.c.name))
            return [self._index(r) for r in rows]

    async def find_index(self, name: str) -> IndexRecord | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(t.indexes).where(t.indexes.c.name == name))
            ).first()
            return self._index(row) if row else None

    async def create_index(
        self, name: str, kind: str, config: Mapping[str, Any], *, exist_ok: bool = False,
        grants: Sequence[tuple[str, str]] = (),
    ) -> IndexRecord | None:
        """Create an index with its first grants ((principal, permission) pairs); None if the
        name is taken (and ``exist_ok``)."""
        try:
            async with self.db.write() as conn:
                result = await conn.execute(
                    sa.insert(t.indexes).values(
                        name=name, kind=kind, config=dict(config), generation=0,
                        created_at=utcnow(),
                    )
                )
                index_id = result.inserted_primary_key[0]  # type: ignore[index]
                if grants:
                    await conn.execute(sa.insert(t.acl_entries), [
                        {"index_id": index_id, "principal": who, "permission": what} for who, what in grants])
                    await conn.execute(sa.update(t.auth_state).values(generation=t.auth_state.c.generation + 1))
        except IntegrityError:
            if exist_ok:
                return None
            raise
        return await self.find_index(name)

    async def update_index_config(self, name: str, config: Mapping[str, Any]) -> IndexRecord:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(t.indexes).where(t.indexes.c.name == name)
                .values(config=dict(config), generation=t.indexes.c.generation + 1)
            )
        record = await self.find_index(name)
        assert record is not None
        return record

    async def delete_index(self, name: str, audit: Mapping[str, Any]) -> bool:
        async with self.db.write() as conn:
            index_id = (await conn.execute(sa.select(t.indexes.c.id).where(t.indexes.c.name == name))).scalar()
            if index_id is None:
                return False
            publishers = sa.select(t.trusted_publishers.c.id).where(t.trusted_publishers.c.index_id == index_id)
            await conn.execute(sa.delete(t.tokens).where(t.tokens.c.publisher_id.in_(publishers)))
            for table in (t.files, t.mirror_pages, t.file_tombstones, t.projects, t.acl_entries,
                          t.project_owners, t.trusted_publishers):
                await conn.execute(sa.delete(table).where(table.c.index_id == index_id))
            await conn.execute(sa.update(t.auth_state).values(generation=t.auth_state.c.generation + 1))
            await conn.execute(sa.delete(t.indexes).where(t.indexes.c.id == index_id))
            await self._audit(conn, utcnow(), audit)
            return True

    async def unreferenced_blobs(self) -> list[str]:
        """Blob rows that no file row lists (as bytes or as metadata)."""
        referenced = sa.union(
            sa.select(t.files.c.sha256.label("sha")),
            sa.select(t.files.c.metadata_sha256.label("sha")).where(t.files.c.metadata_sha256.is_not(None)),
        ).subquery()
        query = sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256.not_in(sa.select(referenced.c.sha)))
        async with self.db.read() as conn:
            return list((await conn.execute(query)).scalars())

    async def referenced_hashes(self) -> set[str]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(t.files.c.sha256, t.files.c.metadata_sha256))
            out: set[str] = set()
            for r in rows:
                out.add(r.sha256)
                if r.metadata_sha256:
                    out.add(r.metadata_sha256)
            return out

    async def forget_blobs(self, hashes: Sequence[str]) -> None:
        if hashes:
            async with self.db.write() as conn:
                await conn.execute(sa.delete(t.blobs).where(t.blobs.c.sha256.in_(list(hashes))))

    async def generations(self) -> dict[int, int]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(t.indexes.c.id, t.indexes.c.generation))
            return {r.id: r.generation for r in rows}

    @staticmethod
    def _index(row: sa.Row[Any]) -> IndexRecord:
        return IndexRecord(
            id=row.id, name=row.name, kind=row.kind, config=row.config or {},
            generation=row.generation,
        )

    # ------------------------------------------------------------ projects and files

    async def project_files(
        self, index_id: int, project: str, *, with_metadata: bool = False
    ) -> list[FileRecord]:
        columns = _FILE_COLUMNS if with_metadata else _FILE_COLUMNS[:-1]
        query = (
            sa.select(*columns)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.projects.c.index_id == index_id, t.projects.c.name == project)
            .order_by(t.files.c.id)
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            if with_metadata:
                return [_file(r) for r in rows]
            return [_file_no_meta(r) for r in rows]

    async def page_entries(
        self, index_id: int, project: str, *, keep_removed: bool = True
    ) -> tuple[str, list[FileEntry]] | None:
        """(display name, files) of a project page, or None: the hot query behind simple pages.

        Rows are read by position into :class:`FileEntry` directly (a 5,000-file project
        renders its first page in well under 150 ms). Files an upstream stopped listing are
        included only with ``keep_removed`` and only while their bytes are cached.
        """
        query = (
            sa.select(
                t.projects.c.display_name, t.files.c.filename, t.files.c.sha256, t.files.c.size,
                t.files.c.version, t.files.c.requires_python, t.files.c.yanked,
                t.files.c.yanked_reason, t.files.c.upload_time, t.files.c.metadata_sha256,
                t.files.c.upstream_metadata,
            )
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
        return rows[0][0], await off_loop(_page_entries, rows, size=len(rows))

    # ------------------------------------------------------------ mirror pages

    async def mirror_page_state(self, index_id: int, project: str) -> MirrorPageState | None:
        query = sa.select(t.mirror_pages).where(
            t.mirror_pages.c.index_id == index_id, t.mirror_pages.c.project == project
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return MirrorPageState(row.etag, row.last_modified, _aware(row.fetched_at) or utcnow(), row.status)

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
        inserts, updates, seen = await off_loop(
            _plan_mirror_sync, files, existing, cached, index_id, project_id, size=len(files) + len(existing))
        if inserts:
            await _bulk_insert(conn, t.files, inserts, ignore_conflicts=True)
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

    async def blob_known(self, sha256: str) -> bool:
        async with self.db.read() as conn:
            query = sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256 == sha256)
            return (await conn.execute(query)).first() is not None

    async def list_projects(self, index_id: int) -> list[tuple[str, str]]:
        query = (
            sa.select(t.projects.c.name, t.projects.c.display_name)
            .where(
                t.projects.c.index_id == index_id,
                sa.exists().where(t.files.c.project_id == t.projects.c.id),
            )
            .order_by(t.projects.c.name)
        )
        async with self.db.read() as conn:
            return [(r.name, r.display_name) for r in await conn.execute(query)]

    async def find_file(self, index_id: int, filename: str) -> FileRecord | None:
        query = (
            sa.select(*_FILE_COLUMNS)
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.files.c.index_id == index_id, t.files.c.filename == filename)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
            return _file(row) if row else None

    async def indexes_listing(self, sha256: str, filename: str) -> list[int]:
        """Ids of the stored indexes that list these bytes under this name."""
        query = sa.select(t.files.c.index_id).where(t.files.c.sha256 == sha256, t.files.c.filename == filename)
        async with self.db.read() as conn:
            return sorted({r.index_id for r in await conn.execute(query)})

    async def find_file_by_content(self, sha256: str, filename: str) -> FileRecord | None:
        """Any listed file with these bytes under this name (in whichever index)."""
        query = (
            sa.select(*_FILE_COLUMNS[:-1])
            .join(t.projects, t.projects.c.id == t.files.c.project_id)
            .where(t.files.c.sha256 == sha256, t.files.c.filename == filename)
            .order_by(sa.case((t.files.c.origin_url.is_(None), 0), else_=1))
            .limit(1)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
            return _file_no_meta(row) if row else None

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
                summary=_summary(new.core_metadata),
            )
        )
        await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=now))
        await self._bump(conn, new.index_id)
        await self._audit(conn, now, audit)

    async def _index_gone(self, index_id: int) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(t.indexes.c.id).where(t.indexes.c.id == index_id))).first() is None

    def _insert(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, in the dialect's spelling."""
        if self.db.is_sqlite:
            return sqlite_insert(table).on_conflict_do_nothing()
        return pg_insert(table).on_conflict_do_nothing()

    async def _ensure_project(self, conn: AsyncConnection, new: NewFile, now: datetime) -> int:
        # Concurrent first uploads of one project (uv publishes a wheel and an sdist at
        # once) must not fail: insert-if-absent, then read whichever row won.
        await conn.execute(
            self._insert(t.projects).values(
                index_id=new.index_id, name=new.project, display_name=new.display_name,
                created_at=now, updated_at=now,
            )
        )
        where = (t.projects.c.index_id == new.index_id, t.projects.c.name == new.project)
        return int((await conn.execute(sa.select(t.projects.c.id).where(*where))).scalar_one())

    async def _ensure_blob(self, conn: AsyncConnection, sha256: str, size: int, now: datetime) -> None:
        await conn.execute(self._insert(t.blobs).values(sha256=sha256, size=size, created_at=now))

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
                summary=_summary(new.core_metadata), yanked=False, yanked_reason=None,
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
                    summary=_summary(r.core_metadata),
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

    async def _touch_project(self, conn: AsyncConnection, index_id: int, project: str) -> None:
        """A project's listing changed: its ``updated_at`` moves (an export rewrites it)."""
        await conn.execute(sa.update(t.projects).where(t.projects.c.index_id == index_id, t.projects.c.name == project)
                           .values(updated_at=utcnow()))

    async def _touch_file_project(self, conn: AsyncConnection, file_id: int) -> None:
        project_id = sa.select(t.files.c.project_id).where(t.files.c.id == file_id).scalar_subquery()
        await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=utcnow()))

    async def project_stamps(self, index_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """Per index, each project's last change (``updated_at``) as text: what an export
        compares to find the projects to rewrite without reading their files."""
        query = sa.select(t.projects.c.index_id, t.projects.c.name, t.projects.c.updated_at).where(
            t.projects.c.index_id.in_(list(index_ids)))
        stamps: dict[int, dict[str, str]] = {i: {} for i in index_ids}
        async with self.db.read() as conn:
            for r in await conn.execute(query):
                stamps[r.index_id][r.name] = str(r.updated_at)
        return stamps

    async def _bump(self, conn: AsyncConnection, index_id: int) -> None:
        await conn.execute(
            sa.update(t.indexes).where(t.indexes.c.id == index_id)
            .values(generation=t.indexes.c.generation + 1)
        )

    async def _audit(self, conn: AsyncConnection, now: datetime, entry: Mapping[str, Any]) -> None:
        await conn.execute(sa.insert(t.audit_log).values(at=now, **entry))

    async def audit(self, entry: Mapping[str, Any]) -> None:
        async with self.db.write() as conn:
            await self._audit(conn, utcnow(), entry)

    async def audit_entries(
        self, limit: int = 100, *, index: str | None = None, actor: str | None = None,
        action: str | None = None, project: str | None = None, before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        query = sa.select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        for column, value in ((t.audit_log.c.index_name, index), (t.audit_log.c.actor, actor),
                              (t.audit_log.c.action, action), (t.audit_log.c.project, project)):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(t.audit_log.c.id < before_id)
        async with self.db.read() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(query)]  # noqa: SLF001
        for row in rows:
            row["at"] = _aware(row["at"])
        return rows

    async def blob_referenced(self, sha256: str) -> bool:
        query = sa.select(t.files.c.id).where(
            sa.or_(t.files.c.sha256 == sha256, t.files.c.metadata_sha256 == sha256)
        ).limit(1)
        async with self.db.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def file_blobs(self) -> list[tuple[str, str, int | None, str | None, bool]]:
        """(filename, sha256, size, metadata_sha256, mirrored) of every file row, for checks."""
        query = sa.select(t.files.c.filename, t.files.c.sha256, t.files.c.size, t.files.c.metadata_sha256,
                          t.files.c.origin_url)
        async with self.db.read() as conn:
            return [(r.filename, r.sha256, r.size, r.metadata_sha256, r.origin_url is not None)
                    for r in await conn.execute(query)]

    # ------------------------------------------------------------ maintenance helpers for tests

    async def table_counts(self, names: Iterable[str] = ("files", "projects", "blobs")) -> dict[str, int]:
        out: dict[str, int] = {}
        async with self.db.read() as conn:
            for name in names:
                table = t.metadata.tables[name]
                out[name] = int(
                    (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
                )
        return out


def _plan_mirror_sync(
    files: Sequence[RemoteFile], existing: Mapping[str, Any], cached: set[str], index_id: int, project_id: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    """The rows to insert and update to bring a mirror project's rows (``existing``, by
    filename) in line with the upstream's ``files``, and the filenames the upstream lists.
    ``cached``: the old sha256s of swapped files whose bytes are cached (those keep theirs)."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    seen: set[str] = set()
    for f in files:
        if f.filename in seen:
            continue
        seen.add(f.filename)
        values = {
            "origin_url": f.url, "size": f.size, "requires_python": f.requires_python,
            "yanked": f.yanked, "yanked_reason": f.yanked_reason if f.yanked else None,
            "upload_time": f.upload_time, "upstream_metadata": f.metadata_available,
            "origin_removed": False,
        }
        old = existing.get(f.filename)
        if old is None:
            inserts.append({
                "index_id": index_id, "project_id": project_id, "filename": f.filename,
                "version": f.version, "kind": f.kind, "python_tag": f.python_tag, "sha256": f.sha256,
                "metadata_sha256": f.metadata_sha256, **values,
            })
            continue
        values["sha256"], values["metadata_sha256"] = old.sha256, old.metadata_sha256
        if old.sha256 != f.sha256 and old.sha256 not in cached:
            values["sha256"], values["metadata_sha256"] = f.sha256, f.metadata_sha256  # follow the upstream
        elif f.metadata_sha256 and not old.metadata_sha256:
            values["metadata_sha256"] = f.metadata_sha256
        if old.size is not None and f.size is None:
            values["size"] = old.size  # learned from a download; an HTML page does not say
        if old.upload_time is not None and f.upload_time is None:
            values["upload_time"] = old.upload_time
        if any(_differs(getattr(old, k), v) for k, v in values.items()):
            updates.append({"_id": old.id, **values})
    return inserts, updates, seen


def _page_entries(rows: Sequence[sa.Row[Any]]) -> list[FileEntry]:
    return [
        FileEntry(
            filename=r[1], url=files_url(r[2], r[1]), sha256=r[2], size=r[3],
            version=r[4], requires_python=r[5], yanked=bool(r[6]), yanked_reason=r[7],
            upload_time=r[8] if r[8] is None or r[8].tzinfo else r[8].replace(tzinfo=UTC),
            # Every wheel offers its metadata: the mirror reads it from the upstream's wheel
            # with Range requests when the upstream has no metadata file (MirrorIndex.metadata).
            metadata_sha256=r[9], metadata_available=bool(r[10]) or r[1].endswith(".whl"),
        )
        for r in rows
    ]


#: Row work over more items than this runs on a worker thread (see :func:`off_loop`).
OFF_LOOP_ROWS = 2000


async def off_loop(work: Callable[..., _T], *args: Any, size: int) -> _T:
    """``work(*args)``: inline for a few rows, on a worker thread for many, so that one mirror
    page of 100,000 files does not stop the event loop (and every other request) while its
    rows are built."""
    if size < OFF_LOOP_ROWS:
        return work(*args)
    return await anyio.to_thread.run_sync(lambda: work(*args))


async def _bulk_insert(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, ignore_conflicts: bool = False,
) -> None:
    """Insert rows that share their keys with one driver-level executemany.

    The statement is compiled once and each row becomes a tuple with its columns' bind
    processing applied; SQLAlchemy's own executemany builds every row's parameters through
    the compiler, which costs more than SQLite's inserts themselves for a mirror page of
    thousands of files.
    """
    dialect = conn.dialect
    statement: Any = sa.insert(table)
    if ignore_conflicts:  # rows another process wrote meanwhile (two replicas filling one page) win
        statement = (sqlite_insert if dialect.name == "sqlite" else pg_insert)(table).on_conflict_do_nothing()
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    if order is None:  # a dialect with named parameters: let SQLAlchemy do it
        await conn.execute(statement, list(rows))
        return
    getter = operator.itemgetter(*order)
    processed = [(i, p) for i, key in enumerate(order)
                 if (p := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))]

    def driver_params() -> list[tuple[Any, ...]]:
        params = []
        for row in rows:
            values = list(getter(row))
            for i, process in processed:
                values[i] = process(values[i])
            params.append(tuple(values))
        return params

    await conn.exec_driver_sql(str(compiled), await off_loop(driver_params, size=len(rows)))


def _file_no_meta(row: sa.Row[Any]) -> FileRecord:
    return _file(row, with_metadata=False)

