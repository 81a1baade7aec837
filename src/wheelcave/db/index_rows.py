"""Indexes (their records, configuration and generations), per-project change stamps,
and the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from wheelcave.db import tables as t
from wheelcave.db.records import IndexRecord, aware, utcnow
from wheelcave.db.rows import Rows

__all__ = ["IndexRows"]


class IndexRows(Rows):
    """Indexes (their records, configuration and generations), per-project change stamps,"""

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
            hooks = sa.select(t.webhooks.c.id).where(t.webhooks.c.index_id == index_id)
            await conn.execute(sa.delete(t.webhook_deliveries).where(t.webhook_deliveries.c.webhook_id.in_(hooks)))
            await conn.execute(sa.delete(t.webhooks).where(t.webhooks.c.index_id == index_id))
            for table in (t.files, t.mirror_pages, t.file_tombstones, t.projects, t.acl_entries,
                          t.project_owners, t.trusted_publishers):
                await conn.execute(sa.delete(table).where(table.c.index_id == index_id))
            await conn.execute(sa.update(t.auth_state).values(generation=t.auth_state.c.generation + 1))
            await conn.execute(sa.delete(t.indexes).where(t.indexes.c.id == index_id))
            await self._audit(conn, utcnow(), audit)
            return True

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
            row["at"] = aware(row["at"])
        return rows

    async def table_counts(self, names: Iterable[str] = ("files", "projects", "blobs")) -> dict[str, int]:
        out: dict[str, int] = {}
        async with self.db.read() as conn:
            for name in names:
                table = t.metadata.tables[name]
                out[name] = int(
                    (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
                )
        return out
