"""What the repository's queries return and take: index, file and mirror-page records, and the
row-to-record conversions they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from wheelcave.core.pages import FileEntry, files_url
from wheelcave.db import tables as t

__all__ = [
    "FILE_COLUMNS", "PAGE_COLUMNS", "FileRecord", "IndexGone", "IndexRecord", "MirrorPageState", "NewFile", "aware",
    "file_record", "file_record_no_meta", "is_unique_violation", "page_entries_of", "summary_of", "utcnow",
]


def summary_of(meta: Mapping[str, Any] | None) -> str | None:
    value = (meta or {}).get("summary")
    return value[:512] if isinstance(value, str) else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
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


FILE_COLUMNS = (
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


def file_record(row: sa.Row[Any], *, with_metadata: bool = True) -> FileRecord:
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
        upload_time=aware(m["upload_time"]),
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


def file_record_no_meta(row: sa.Row[Any]) -> FileRecord:
    return file_record(row, with_metadata=False)


#: What a page lists of a file, in the order :func:`page_entries_of` reads (after the project's
#: display name): the hot query behind simple pages, hosted and mirrored.
PAGE_COLUMNS = (
    t.projects.c.display_name, t.files.c.filename, t.files.c.sha256, t.files.c.size, t.files.c.version,
    t.files.c.requires_python, t.files.c.yanked, t.files.c.yanked_reason, t.files.c.upload_time,
    t.files.c.metadata_sha256, t.files.c.upstream_metadata,
)


def page_entries_of(rows: Sequence[sa.Row[Any]]) -> list[FileEntry]:
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
