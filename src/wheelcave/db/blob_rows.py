"""Blob rows against file rows: which blobs are referenced, for gc and check."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from wheelcave.db import tables as t
from wheelcave.db.rows import Rows

__all__ = ["BlobRows"]


class BlobRows(Rows):
    """Blob rows against file rows: which blobs are referenced, for gc and check."""

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

    async def blob_known(self, sha256: str) -> bool:
        async with self.db.read() as conn:
            query = sa.select(t.blobs.c.sha256).where(t.blobs.c.sha256 == sha256)
            return (await conn.execute(query)).first() is not None

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
