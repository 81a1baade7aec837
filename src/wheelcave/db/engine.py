"""Connections: one async engine per role, SQLite (WAL) or PostgreSQL, and migrations.

On SQLite, reads run in deferred transactions on a small pool, and every write goes through
one connection under an in-process lock with ``BEGIN IMMEDIATE`` (datasette's single-writer
pattern): a write never has to upgrade a read lock, so concurrent writers from several
processes wait on ``busy_timeout`` instead of failing. On PostgreSQL both roles share one
engine and migrations take an advisory lock, so replicas can start together.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["Database", "async_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x77686C63  # "whlc"


def async_url(url: str) -> str:
    """Map a plain URL to its async driver: ``postgresql://`` → asyncpg, ``sqlite://`` → aiosqlite."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
              "sqlite": "sqlite+aiosqlite"}.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _sqlite_engine(url: str, begin: str, pool_size: int, synchronous: str = "FULL") -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed write (an acknowledged upload's row) survives a power loss, not only
        # a crash of the process (NORMAL, in WAL mode, may lose the last commits after a power
        # loss, never consistency).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


SYNCHRONOUS = ("full", "normal")


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "full") -> None:
        if sqlite_synchronous not in SYNCHRONOUS:
            msg = f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS)}"
            raise ValueError(msg)
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            sync = sqlite_synchronous.upper()
            self._read = _sqlite_engine(self.url, "BEGIN", pool_size=4, synchronous=sync)
            self._write = _sqlite_engine(self.url, "BEGIN IMMEDIATE", pool_size=1, synchronous=sync)
        else:
            self._read = create_async_engine(self.url, pool_size=10, max_overflow=10)
            self._write = self._read
        self._write_lock = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._read.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on success, rolled back on any error."""
        if self.is_sqlite:
            async with self._write_lock, self._write.begin() as conn:
                yield conn
        else:
            async with self._write.begin() as conn:
                yield conn

    async def schema_revision(self) -> str | None:
        """The schema revision the database is at (None before the first migration)."""
        async with self._read.connect() as conn:
            try:
                found = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars().all()
            except sa.exc.DBAPIError:
                return None
        return max(found) if found else None

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent, safe for concurrent starts).
        A database already at the newest revision costs one query, not alembic (whose import
        and script loading were a third of every CLI command's start)."""
        async with self._read.connect() as conn:
            try:
                current = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars().all()
            except sa.exc.DBAPIError:
                current = []
        if current == [head_revision()]:
            return
        async with self._write.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self._read.dispose()
        if self._write is not self._read:
            await self._write.dispose()


@functools.cache
def head_revision() -> str:
    """The newest migration's revision: the migrations are one line, each file named after its
    revision (``0007_traffic.py`` is revision ``0007``), checked by tests/test_db.py."""
    return max(p.name.split("_", 1)[0] for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
