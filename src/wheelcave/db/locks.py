"""Locks across replicas: PostgreSQL session advisory locks.

A lock is held on a connection of its own for as long as the work runs (an upstream download),
so it is released when the work ends, and also when the holder dies: PostgreSQL drops a session's
locks with its connection, so a killed replica holds nothing. A waiter asks again every
``poll`` seconds instead of blocking a server backend in ``pg_advisory_lock`` (a waiter that is
cancelled, a client gone, just closes its connection).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from wheelcave.db.engine import async_url

__all__ = ["AdvisoryLocks", "lock_key"]

# Keys of this family: the migration lock is a constant of its own, far from this space.
_NAMESPACE = b"wheelcave.download:"


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (what pg_advisory_lock takes)."""
    return int.from_bytes(hashlib.blake2b(_NAMESPACE + name.encode(), digest_size=8).digest(), "big", signed=True)


class AdvisoryLocks:
    def __init__(self, database_url: str, *, poll: float = 0.05) -> None:
        self.poll = poll
        # Not the pool of queries: a download may hold its lock for minutes.
        self._engine = create_async_engine(async_url(database_url), poolclass=NullPool)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        key = lock_key(name)
        async with self._engine.connect() as conn:
            while not (await conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar():
                await conn.rollback()  # no transaction kept open while waiting
                await asyncio.sleep(self.poll)
            await conn.commit()
            try:
                yield
            finally:
                # Closing the connection releases it too; unlocking says so at once.
                try:
                    await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()
                except sa.exc.SQLAlchemyError:
                    pass  # the connection is gone, and its lock with it

    async def close(self) -> None:
        await self._engine.dispose()
