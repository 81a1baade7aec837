"""Read queries behind the web pages (counts, recent uploads), apart from the hot paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from wheelcave.db import tables as t
from wheelcave.db.engine import Database

__all__ = ["Browse", "RecentUpload"]


@dataclass(frozen=True)
class RecentUpload:
    index_id: int
    project: str
    display_name: str
    version: str
    upload_time: datetime


class Browse:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def project_counts(self, index_ids: Sequence[int]) -> dict[int, int]:
        """Projects that list at least one file, per index."""
        if not index_ids:
            return {}
        listed = t.project_lists_files()
        query = (sa.select(t.projects.c.index_id, sa.func.count()).where(t.projects.c.index_id.in_(list(index_ids)), listed)
                 .group_by(t.projects.c.index_id))
        async with self.db.read() as conn:
            return {int(r[0]): int(r[1]) for r in await conn.execute(query)}

    async def recent_uploads(self, index_ids: Sequence[int], limit: int = 15) -> list[RecentUpload]:
        """The newest releases uploaded (not mirrored) into these indexes, one line per release
        (read newest first along ``ix_files_index_upload_time``, not by grouping every file)."""
        found: dict[tuple[int, str, str], RecentUpload] = {}
        async with self.db.read() as conn:
            for index_id in index_ids:
                query = (
                    sa.select(t.files.c.index_id, t.projects.c.name, t.projects.c.display_name, t.files.c.version,
                              t.files.c.upload_time)
                    .join(t.projects, t.projects.c.id == t.files.c.project_id)
                    .where(t.files.c.index_id == index_id, t.files.c.origin_url.is_(None), t.files.c.upload_time.is_not(None))
                    .order_by(t.files.c.upload_time.desc()).limit(limit * 4)
                )
                for r in await conn.execute(query):
                    at = r[4] if r[4].tzinfo else r[4].replace(tzinfo=UTC)
                    key = (r[0], r[1], r[3])
                    if key not in found:
                        found[key] = RecentUpload(r[0], r[1], r[2], r[3], at)
        return sorted(found.values(), key=lambda u: u.upload_time, reverse=True)[:limit]
