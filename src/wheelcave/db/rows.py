"""The base of the repository's query groups: the database, dialect-specific inserts, the
statements several groups share (generation bumps, audit lines, blob rows), and bulk inserts
that keep large mirror pages off the event loop."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wheelcave.core import webhooks
from wheelcave.db import tables as t
from wheelcave.db.engine import Database
from wheelcave.db.records import utcnow

__all__ = ["OFF_LOOP_ROWS", "Rows", "bulk_insert", "off_loop"]

_T = TypeVar("_T")


class Rows:
    """A group of queries on one :class:`Database`, and the statements they share."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, in the dialect's spelling."""
        if self.db.is_sqlite:
            return sqlite_insert(table).on_conflict_do_nothing()
        return pg_insert(table).on_conflict_do_nothing()

    async def _bump(self, conn: AsyncConnection, index_id: int) -> None:
        await conn.execute(
            sa.update(t.indexes).where(t.indexes.c.id == index_id)
            .values(generation=t.indexes.c.generation + 1)
        )

    async def _audit(self, conn: AsyncConnection, now: datetime, entry: Mapping[str, Any]) -> None:
        """An audit line, and (in the same transaction: an outbox) a delivery for each webhook of
        the index that wants the event it is."""
        await conn.execute(sa.insert(t.audit_log).values(at=now, **entry))
        event = webhooks.ACTIONS.get(str(entry.get("action")))
        if event is None or not entry.get("index_name"):
            return
        hooks = (await conn.execute(
            sa.select(t.webhooks.c.id, t.webhooks.c.events).join(t.indexes, t.indexes.c.id == t.webhooks.c.index_id)
            .where(t.indexes.c.name == entry["index_name"]))).all()
        wanted = [h.id for h in hooks if webhooks.wants(h.events, event)]
        if wanted:
            body = webhooks.body_for(event, entry, now)
            await conn.execute(sa.insert(t.webhook_deliveries), [
                {"webhook_id": i, "event": event, "payload": body, "status": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now} for i in wanted])

    async def _project_id(self, conn: AsyncConnection, index_id: int, name: str, display_name: str, now: datetime) -> int:
        """The id of an index's project row, made if absent. Concurrent first writers of one
        project (uv publishes a wheel and an sdist at once; two requests for a mirror's files)
        must not fail: insert-if-absent, then read whichever row won."""
        await conn.execute(self._insert(t.projects).values(
            index_id=index_id, name=name, display_name=display_name, created_at=now, updated_at=now))
        where = (t.projects.c.index_id == index_id, t.projects.c.name == name)
        return int((await conn.execute(sa.select(t.projects.c.id).where(*where))).scalar_one())

    async def _ensure_blob(self, conn: AsyncConnection, sha256: str, size: int, now: datetime) -> None:
        await conn.execute(self._insert(t.blobs).values(sha256=sha256, size=size, created_at=now))

    async def _touch_project(self, conn: AsyncConnection, index_id: int, project: str) -> None:
        """A project's listing changed: its ``updated_at`` moves (an export rewrites it)."""
        await conn.execute(sa.update(t.projects).where(t.projects.c.index_id == index_id, t.projects.c.name == project)
                           .values(updated_at=utcnow()))

    async def _touch_file_project(self, conn: AsyncConnection, file_id: int) -> None:
        project_id = sa.select(t.files.c.project_id).where(t.files.c.id == file_id).scalar_subquery()
        await conn.execute(sa.update(t.projects).where(t.projects.c.id == project_id).values(updated_at=utcnow()))

    async def _index_gone(self, index_id: int) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(sa.select(t.indexes.c.id).where(t.indexes.c.id == index_id))).first() is None


#: Row work over more items than this runs on a worker thread (see :func:`off_loop`).
OFF_LOOP_ROWS = 2000


async def off_loop(work: Callable[..., _T], *args: Any, size: int) -> _T:
    """``work(*args)``: inline for a few rows, on a worker thread for many, so that one mirror
    page of 100,000 files does not stop the event loop (and every other request) while its
    rows are built."""
    if size < OFF_LOOP_ROWS:
        return work(*args)
    return await anyio.to_thread.run_sync(lambda: work(*args))


async def bulk_insert(
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
