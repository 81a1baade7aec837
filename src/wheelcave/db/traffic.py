"""The traffic table (migration 0007): counts added per bucket, read per index."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wheelcave.core.traffic import COUNTS, Bucket
from wheelcave.db import tables as t
from wheelcave.db.engine import Database

__all__ = ["TrafficTable"]


class TrafficTable:
    """:class:`wheelcave.core.traffic.TrafficStore` on the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_traffic(self, buckets: Sequence[Bucket]) -> None:
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        async with self.db.write() as conn:
            for b in sorted(buckets, key=lambda b: (b.index, b.start)):  # one lock order across replicas
                values = {name: int(b.counts.get(name, 0)) for name in COUNTS}
                statement = insert(t.traffic).values(index_name=b.index, bucket=b.start, **values)
                statement = statement.on_conflict_do_update(
                    index_elements=["index_name", "bucket"],
                    set_={name: t.traffic.c[name] + statement.excluded[name] for name in COUNTS},
                )
                await conn.execute(statement)

    async def traffic(self, index: str, since: int) -> list[Bucket]:
        query = (sa.select(t.traffic).where(t.traffic.c.index_name == index, t.traffic.c.bucket >= since)
                 .order_by(t.traffic.c.bucket))
        async with self.db.read() as conn:
            return [Bucket(r.index_name, int(r.bucket), {name: int(getattr(r, name)) for name in COUNTS})
                    for r in await conn.execute(query)]

    async def prune_traffic(self, before: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(sa.delete(t.traffic).where(t.traffic.c.bucket < before))
